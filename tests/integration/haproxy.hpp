// A real HAProxy for the PROXY protocol tests (proxy_protocol_test.cpp and
// proxy_protocol_upgrade_test.cpp): Debian's haproxy in the foreground, with its own
// configuration, stopped by PID.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/turn_tools.hpp"

namespace tern::test {

// HAProxy in the foreground (-db) with its own configuration: one TCP frontend on 127.0.0.1
// forwarding every connection to `backend` with `send_proxy` (send-proxy-v2 or send-proxy).
class Haproxy {
 public:
  Haproxy(const wire::SocketAddress& backend, const std::string& send_proxy)
      : port_(freeTcpPort("127.0.0.1")) {
    const std::string config =
        "global\n  maxconn 200\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n"
        "  timeout client 60s\n  timeout server 60s\n"
        "frontend turn\n  bind 127.0.0.1:" +
        std::to_string(port_) +
        "\n"
        "  default_backend tern\n"
        "backend tern\n  server tern " +
        backend.toString() + " " + send_proxy + "\n";
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/sbin/haproxy", "-db", "-f", temporaryFile(config)});
    // Ready when its frontend accepts.
    for (int i = 0; i < 100; ++i) {
      try {
        connectedSocket(true, socketAddress("127.0.0.1", 0), address());
        return;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    FAIL("haproxy did not start: " << process_->output());
  }
  ~Haproxy() { process_->stop(SIGTERM); }

  wire::SocketAddress address() const { return socketAddress("127.0.0.1", port_); }

 private:
  std::uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace tern::test
