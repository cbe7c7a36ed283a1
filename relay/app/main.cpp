// tern's command line (CLI11): `tern serve`, `tern probe`, `tern token`, `tern drain`, `tern admin`, `tern revoke`,
// `--version`, `--help`.
// Each subcommand is parsed by its own top-level CLI::App: CLI11 2.1 reads a --config file
// only for a top-level app, and `tern serve --config FILE` must take the flags' own names.
#include <CLI/CLI.hpp>
#include <malloc.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "relay/app/http_request.hpp"
#include "relay/app/probe.hpp"
#include "relay/app/server.hpp"
#include "relay/app/token.hpp"
#include "relay/app/revoke_command.hpp"
#include "relay/config/cli_options.hpp"
#include "relay/config/secret_file.hpp"
#include "relay/io/log.hpp"
#include "relay/wire/stream_framer.hpp"

#ifndef TERN_VERSION
#define TERN_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kServeSummary = "Run the relay";
constexpr const char* kProbeSummary = "Send one STUN Binding request and print the mapped address";
constexpr const char* kDrainSummary =
    "Drain a running relay through its --metrics-listen port: no new allocations, calls finish, then it exits";
constexpr const char* kUpgradeSummary =
    "Upgrade a running relay in place through its --metrics-listen port: the binary now on disk takes over "
    "every socket and allocation, and no call drops (same as SIGUSR2)";
constexpr const char* kAdminSummary =
    "Call a running relay's admin API through its --metrics-listen port: list or end allocations, revoke a user "
    "(docs/admin-api.md)";
constexpr const char* kRevokeSummary =
    "Revoke a user on every node of a fleet sharing --redis: its calls end and its Allocates get 403 (docs/fleet.md)";
constexpr const char* kTokenSummary =
    "Mint a time-limited TURN REST credential and print it with a WebRTC iceServers entry, or "
    "with --oauth an RFC 7635 access token";

// The serve command line; `config` and `print_config` receive what it parses.
void addServeCommand(CLI::App& app, tern::config::Config& config, bool& print_config) {
  tern::config::addServeOptions(app, config);
  app.add_flag("--print-config", print_config,
               "Print the effective configuration (defaults, file and flags merged) in the "
               "--config format, and exit")
      ->configurable(false);
  app.footer(
      "Signals: SIGHUP reloads the configuration (secrets, users, certificate, peer policy, limits, log "
      "level) without dropping calls; SIGUSR2 upgrades in place (the binary now on disk takes over every "
      "socket and allocation; see tern upgrade); SIGTERM drains (see --drain-timeout; a second SIGTERM "
      "exits at once); SIGINT stops at once.");
}

// SIGHUP: the same command line parsed again, so the --config file and secret files are read
// anew and flags still win over the file.
tern::app::SettingsLoader reloader(int argc, char** argv) {
  return [argc, argv]() -> tern::Expected<tern::config::Settings, std::vector<std::string>> {
    tern::config::Config config;
    bool print_config = false;
    CLI::App app{kServeSummary, "tern serve"};
    addServeCommand(app, config, print_config);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return tern::Unexpected{std::vector<std::string>{e.what()}};
    }
    return tern::config::validate(config, std::thread::hardware_concurrency());
  };
}

// A TCP or TLS connection's framing buffer (64 KiB) lives as long as the connection. Once
// glibc's dynamic mmap threshold has risen past that size (it does at the first free of a
// larger mapping), such buffers come from an arena, and the pages of closed connections'
// buffers stay resident wherever a younger allocation sits above them: after a burst of TCP
// clients RSS kept megabytes the heap no longer used (the soak test saw it wander by 3 MiB
// while the heap in use stayed flat). A fixed threshold gives each buffer a mapping of its
// own, returned to the kernel when its connection closes, for an mmap and a munmap per
// connection. Beyond M_MMAP_MAX mappings glibc falls back to its arenas by itself.
constexpr int kMmapThreshold = 64 * 1024;
static_assert(kMmapThreshold <= static_cast<int>(tern::wire::kMaxStreamFrameSize));

void returnConnectionBuffersToTheKernel() noexcept {
#if defined(__GLIBC__)
  (void)mallopt(M_MMAP_THRESHOLD, kMmapThreshold);  // a sanitizer's allocator ignores it
#endif
}

// A std::bad_alloc (or any exception) escaping a noexcept function ends the process, as the
// out-of-memory policy says (relay/wire/checks.hpp): one line for the operator first.
[[noreturn]] void terminateWithLogLine() noexcept {
  const char* what = "no exception";
  try {
    if (auto current = std::current_exception()) std::rethrow_exception(current);
  } catch (const std::bad_alloc&) {
    what = "out of memory outside a path that can refuse";
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an unknown exception";
  }
  std::fprintf(stderr, "tern: terminating: %s\n", what);
  std::abort();
}

int serveMain(int argc, char** argv) {
  tern::config::Config config;
  CLI::App app{std::string(kServeSummary) + " (every option may also be set in --config FILE)",
               "tern serve"};
  bool print_config = false;
  addServeCommand(app, config, print_config);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto settings = tern::config::validate(config, std::thread::hardware_concurrency());
  if (!settings) {
    const auto& problems = settings.error();
    std::cerr << "tern serve: the configuration has " << problems.size()
              << (problems.size() == 1 ? " problem" : " problems") << ":\n";
    for (const auto& problem : problems) std::cerr << "  " << problem << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << "# tern " TERN_VERSION " effective configuration\n"
              << tern::config::printableConfig(app);
    return 0;
  }
  tern::io::log::configure(settings->log_level, settings->log_format);
  tern::checks::setReporter(&tern::io::log::reportFailure);
  std::set_terminate(&terminateWithLogLine);
  returnConnectionBuffersToTheKernel();
  try {
    return tern::app::runServer(*settings, reloader(argc, argv), tern::app::CommandLine::current(argc, argv));
  } catch (const std::exception& e) {
    tern::io::log::error("start-up failed", {{"error", e.what()}});
    return 1;
  }
}

int probeMain(int argc, char** argv) {
  CLI::App app{kProbeSummary, "tern probe"};
  std::string server;
  tern::app::ProbeOptions options;
  bool no_fingerprint = false;
  double timeout_seconds = 5;
  app.add_option("--server", server, "Server to ask, ADDR:PORT (IPv6 as [ADDR]:PORT)")
      ->type_name("ADDR:PORT")
      ->required();
  app.add_flag("--tcp", options.tcp, "Use TCP instead of UDP");
  app.add_flag("--no-fingerprint", no_fingerprint, "Leave FINGERPRINT out of the request");
  app.add_option("--timeout", timeout_seconds, "Seconds to wait for an answer")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto address = tern::wire::SocketAddress::parse(server);
  if (!address) {
    std::cerr << "tern probe: --server: '" << server << "' is not ADDR:PORT\n";
    return 2;
  }
  options.server = *address;
  options.fingerprint = !no_fingerprint;
  options.timeout = std::chrono::milliseconds(static_cast<long>(timeout_seconds * 1000));
  return tern::app::runProbe(options);
}

// The relay an admin command talks to (`tern drain`, `tern upgrade`): its HTTP port and the
// admin token, as options and then resolved.
struct AdminTarget {
  std::string metrics = "127.0.0.1:9641";
  std::string token_file;
};
struct AdminCall {
  tern::wire::SocketAddress address;
  std::string token;
};

void addAdminOptions(CLI::App& app, AdminTarget& target, const std::string& call) {
  app.add_option("--metrics", target.metrics,
                 "The relay's --metrics-listen address (it accepts " + call + " from loopback only)")
      ->type_name("ADDR:PORT")
      ->capture_default_str();
  app.add_option("--admin-token-file", target.token_file,
                 "The relay's --admin-token-file: its token authorises the " + call)
      ->type_name("FILE")
      ->required();
}

// Nothing, with the reason printed, when the address or the token file is unusable.
std::optional<AdminCall> resolveAdmin(const char* command, const AdminTarget& target) {
  auto address = tern::wire::SocketAddress::parse(target.metrics);
  if (!address) {
    std::cerr << command << ": --metrics: '" << target.metrics << "' is not ADDR:PORT\n";
    return std::nullopt;
  }
  try {
    return AdminCall{*address, tern::config::readAdminTokenFile(target.token_file)};
  } catch (const std::runtime_error& e) {
    std::cerr << command << ": --admin-token-file: " << e.what() << "\n";
    return std::nullopt;
  }
}

int drainMain(int argc, char** argv) {
  CLI::App app{kDrainSummary, "tern drain"};
  AdminTarget target;
  bool wait = false;
  double timeout_seconds = 3600;
  addAdminOptions(app, target, "drain");
  app.add_flag("--wait", wait, "Wait until the relay has exited (its HTTP port refuses connections)");
  app.add_option("--timeout", timeout_seconds, "Seconds --wait waits at most")
      ->type_name("SECONDS")
      ->check(CLI::Range(1.0, 7 * 24 * 3600.0))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const auto call = resolveAdmin("tern drain", target);
  if (!call) return 2;
  const auto answer = tern::app::httpRequest(call->address, "POST", "/drain", std::chrono::seconds(5),
                                             {{"Authorization", "Bearer " + call->token}});
  if (!answer.ok() || answer.status != 202) {
    std::cerr << "tern drain: " << (answer.ok() ? "HTTP " + std::to_string(answer.status) + ": " + answer.body : answer.error)
              << "\n";
    return 1;
  }
  std::cout << "draining " << target.metrics << "\n";
  if (!wait) return 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(timeout_seconds * 1000));
  while (std::chrono::steady_clock::now() < give_up) {
    // Gone only when nothing listens any more; a slow answer from a busy relay is not that.
    if (tern::app::httpRequest(call->address, "GET", "/readyz", std::chrono::seconds(2)).refused) {
      std::cout << "stopped\n";
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::cerr << "tern drain: still running after " << timeout_seconds << " s\n";
  return 1;
}

// `tern admin`: one admin API call, its JSON answer on stdout (docs/admin-api.md).
int adminMain(int argc, char** argv) {
  CLI::App app{kAdminSummary, "tern admin"};
  AdminTarget target;
  addAdminOptions(app, target, "admin API");
  std::string user, client, relayed, revoked;
  std::int64_t seconds = 0;
  auto criteria = [&](CLI::App* command) {
    command->add_option("--user", user, "A username, or a TURN REST username's user part");
    command->add_option("--client", client, "The client's IP or IP:PORT")->type_name("ADDR");
    command->add_option("--relayed", relayed, "A relayed IP or IP:PORT")->type_name("ADDR");
  };
  criteria(app.add_subcommand("list", "List allocations (all, or those the options name)"));
  criteria(app.add_subcommand("end", "End the allocations the options name (at least one)"));
  auto* revoke = app.add_subcommand("revoke", "End a user's allocations and refuse new ones for a while");
  revoke->add_option("USER", revoked, "A username, or a TURN REST username's user part")->required();
  revoke->add_option("--for", seconds, "Seconds the revocation lasts (default: a day)")->check(CLI::PositiveNumber);
  app.add_subcommand("lift", "End a revocation early")
      ->add_option("USER", revoked, "The revoked user")
      ->required();
  app.add_subcommand("revocations", "List the revocations in force");
  app.require_subcommand(1, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const auto call = resolveAdmin("tern admin", target);
  if (!call) return 2;
  const std::string command = app.get_subcommands().front()->get_name();
  std::string path = "/admin/allocations", method = command == "list" || command == "revocations" ? "GET" : "POST";
  if (command == "end") path = "/admin/allocations/end";
  if (command == "revoke") path = "/admin/revoke";
  if (command == "lift") path = "/admin/revocations/lift";
  if (command == "revocations") path = "/admin/revocations";
  std::string query;
  auto arg = [&](const char* name, const std::string& value) {
    if (!value.empty()) query += (query.empty() ? "?" : "&") + std::string(name) + "=" + tern::app::urlEncode(value);
  };
  arg("user", command == "revoke" || command == "lift" ? revoked : user);
  arg("client", client);
  arg("relayed", relayed);
  if (seconds > 0) arg("for", std::to_string(seconds));
  const auto answer = tern::app::httpRequest(call->address, method, path + query, std::chrono::seconds(10),
                                             {{"Authorization", "Bearer " + call->token}});
  if (!answer.ok() || answer.status != 200) {
    std::cerr << "tern admin: " << (answer.ok() ? "HTTP " + std::to_string(answer.status) + ": " + answer.body : answer.error);
    if (!answer.ok()) std::cerr << "\n";
    return 1;
  }
  std::cout << answer.body;
  return 0;
}

int revokeMain(int argc, char** argv) {
  CLI::App app{kRevokeSummary, "tern revoke"};
  tern::app::RevokeOptions options;
  app.add_option("--redis", options.redis, "The fleet's Redis, as the nodes' --redis")
      ->type_name("redis://HOST[:PORT][/DB]")
      ->required();
  app.add_option("--redis-password-file", options.password_file, "File whose first line is the Redis AUTH password")
      ->type_name("FILE");
  app.add_option("--for", options.seconds, "Seconds the revocation lasts")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("USER", options.user, "A username, or a TURN REST username's user part")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return tern::app::runRevoke(options);
}

int upgradeMain(int argc, char** argv) {
  CLI::App app{kUpgradeSummary, "tern upgrade"};
  AdminTarget target;
  double timeout_seconds = 120;
  addAdminOptions(app, target, "upgrade");
  app.add_option("--timeout", timeout_seconds, "Seconds to wait for the upgrade's outcome")
      ->type_name("SECONDS")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const auto call = resolveAdmin("tern upgrade", target);
  if (!call) return 2;
  // The relay answers once the new process serves everything, or once it has given up.
  const auto answer = tern::app::httpRequest(call->address, "POST", "/upgrade",
                                             std::chrono::milliseconds(static_cast<long>(timeout_seconds * 1000)),
                                             {{"Authorization", "Bearer " + call->token}});
  if (!answer.ok() || answer.status != 200) {
    std::cerr << "tern upgrade: "
              << (answer.ok() ? "HTTP " + std::to_string(answer.status) + ": " + answer.body : answer.error);
    if (!answer.ok()) std::cerr << "\n";
    return 1;
  }
  std::cout << answer.body;
  return 0;
}

// The --oauth options of `tern token`; each needs --oauth, which rules out the REST ones.
void addOAuthTokenOptions(CLI::App& app, tern::app::OAuthTokenOptions& options, std::vector<CLI::Option*> rest_only) {
  CLI::Option* oauth = app.add_flag("--oauth")->description(
      "Mint an RFC 7635 OAuth access token (third-party authorization) instead");
  for (CLI::Option* option : rest_only) oauth->excludes(option);
  app.add_option("--oauth-key-file", options.key_file,
                 "With --oauth: file of AS-RS keys in the 'tern serve --oauth-key-file' format")
      ->type_name("FILE")
      ->needs(oauth);
  app.add_option("--kid", options.kid, "With --oauth: the key to seal with (default: the file's first)")
      ->type_name("KID")
      ->needs(oauth);
  app.add_option("--server-name", options.server_name,
                 "With --oauth: the relay's --oauth-server-name (which defaults to its --realm)")
      ->type_name("NAME")
      ->capture_default_str()
      ->needs(oauth);
  app.add_option("--lifetime", options.lifetime, "With --oauth: seconds the access token stays valid")
      ->type_name("SECONDS")
      ->check(CLI::Range(1U, 366U * 24 * 3600))
      ->capture_default_str()
      ->needs(oauth);
  app.add_option("--mac-key-algorithm", options.mac_key_algorithm,
                 "With --oauth: HMAC-SHA-1 (a 20-byte MAC key, MESSAGE-INTEGRITY) or HMAC-SHA-256 "
                 "(32 bytes, MESSAGE-INTEGRITY-SHA256)")
      ->type_name("ALG")
      ->check(CLI::IsMember({"HMAC-SHA-1", "HMAC-SHA-256"}))
      ->capture_default_str()
      ->needs(oauth);
}

int tokenMain(int argc, char** argv) {
  CLI::App app{kTokenSummary, "tern token"};
  std::string secret_file;
  tern::app::TokenOptions options;
  tern::app::OAuthTokenOptions oauth_options;
  std::vector<CLI::Option*> rest_only;
  rest_only.push_back(app.add_option("--secret-file", secret_file, "File of shared secrets; the first one is used")
                          ->type_name("FILE"));
  // Not excluded by --oauth: a TERN_AUTH_SECRET in the environment must not break --oauth.
  app.add_option("--secret", options.secret, "The shared secret; prefer TERN_AUTH_SECRET or --secret-file")
      ->type_name("SECRET")
      ->envname("TERN_AUTH_SECRET");
  rest_only.push_back(app.add_option("--user", options.user,
                                     "The application's user id (the part after the colon); required "
                                     "without --oauth")
                          ->type_name("NAME"));
  rest_only.push_back(app.add_option("--ttl", options.ttl_seconds, "Seconds until the credential expires")
                          ->type_name("SECONDS")
                          ->check(CLI::Range(1L, 366L * 24 * 3600))
                          ->capture_default_str());
  rest_only.push_back(app.add_option("--url", options.urls, "turn: or turns: URL for the iceServers entry (repeatable)")
                          ->type_name("URL")
                          ->default_str("turn:127.0.0.1:3478"));
  addOAuthTokenOptions(app, oauth_options, rest_only);
  try {
    app.parse(argc, argv);
    if (app.count("--oauth") > 0) {
      if (oauth_options.key_file.empty()) {
        std::cerr << "tern token: --oauth needs --oauth-key-file FILE\n";
        return 2;
      }
      return tern::app::runOAuthToken(oauth_options);
    }
    if (!secret_file.empty()) options.secret = tern::app::firstSecret(secret_file);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "tern token: " << e.what() << "\n";
    return 2;
  }
  if (app.count("--user") == 0) {
    std::cerr << "tern token: --user NAME is required (or --oauth for an access token)\n";
    return 2;
  }
  if (options.secret.empty()) {
    std::cerr << "tern token: no secret: give --secret-file FILE or set TERN_AUTH_SECRET\n";
    return 2;
  }
  if (options.urls.empty()) options.urls = {"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"};
  return tern::app::runToken(options);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "serve") return serveMain(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "probe") return probeMain(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "token") return tokenMain(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "drain") return drainMain(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "upgrade") return upgradeMain(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "admin") return adminMain(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "revoke") return revokeMain(argc - 1, argv + 1);

  CLI::App app{"tern " TERN_VERSION ": a TURN/STUN media relay (RFC 8489, RFC 8656)", "tern"};
  app.set_version_flag("--version", "tern " TERN_VERSION);
  app.add_subcommand("serve", kServeSummary);
  app.add_subcommand("probe", kProbeSummary);
  app.add_subcommand("token", kTokenSummary);
  app.add_subcommand("drain", kDrainSummary);
  app.add_subcommand("upgrade", kUpgradeSummary);
  app.add_subcommand("admin", kAdminSummary);
  app.add_subcommand("revoke", kRevokeSummary);
  app.require_subcommand(1);
  app.footer("Run 'tern SUBCOMMAND --help' for the options of each subcommand.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
