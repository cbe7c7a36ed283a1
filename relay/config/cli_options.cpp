// CLI11 wiring for the serve options; see cli_options.hpp.
#include "relay/config/cli_options.hpp"

namespace tern::config {

void addServeOptions(CLI::App& app, Config& config) {
  // The file's keys are the long option names: `listen = ["127.0.0.1:3478"]`, `workers = 2`.
  app.set_config("--config", "", "Read options from FILE (TOML; keys are the long option names)")
      ->type_name("FILE");
  // A misspelt key must stop start-up, not be silently ignored.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--listen", config.listen,
                 "Address to serve STUN/TURN on, UDP and TCP (repeatable): ADDR:PORT, "
                 "IPv6 as [ADDR]:PORT; port 0 picks a free port")
      ->type_name("ADDR:PORT")
      ->default_str(config.listen.empty() ? "" : config.listen.front())
      ->delimiter(',');
  app.add_option("--workers", config.workers, "Worker threads, each with its own event loop (0: one per core)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn or error")->type_name("LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", config.log_format, "plain or json (one object per line)")
      ->type_name("FORMAT")
      ->capture_default_str();
  app.add_option("--software", config.software,
                 "SOFTWARE attribute in responses (RFC 8489 §14.14); empty to leave it out")
      ->type_name("TEXT")
      ->capture_default_str();
  app.add_option("--udp-receive-buffer", config.udp_receive_buffer,
                 "SO_RCVBUF of UDP sockets in bytes, K/M suffix allowed (0: system default)")
      ->type_name("BYTES")
      ->capture_default_str();
  app.add_option("--udp-send-buffer", config.udp_send_buffer,
                 "SO_SNDBUF of UDP sockets in bytes, K/M suffix allowed (0: system default)")
      ->type_name("BYTES")
      ->capture_default_str();
  app.add_option("--tcp-idle-timeout", config.tcp_idle_timeout,
                 "Seconds a TCP connection may stay silent before it is closed")
      ->type_name("SECONDS")
      ->capture_default_str();
}

}  // namespace tern::config
