// Starts `tern serve` as a real process on loopback port 0 and reads back its ports.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/wire/address.hpp"
#include "support/process.hpp"

namespace tern::test {

class NetworkNamespace;

class TernServer {
 public:
  // `extra` is appended to `tern serve --workers 2 --log-level debug --drain-timeout 0`
  // (each default only when `extra` does not set it; a --config sets the level); without a
  // --listen in it, the server listens on 127.0.0.1:0. With `ns`, it runs inside that network
  // namespace, and listen addresses and relay ports come from `extra` or its --config alone.
  // `binary`: the executable to run instead of ternBinary() (an upgrade test's own copy).
  explicit TernServer(std::vector<std::string> extra = {}, const NetworkNamespace* ns = nullptr,
                      std::string binary = {});

  // The address a listener reported, e.g. udp(0) for the first UDP listener.
  wire::SocketAddress udp(std::size_t i = 0) const { return udp_.at(i); }
  wire::SocketAddress tcp(std::size_t i = 0) const { return tcp_.at(i); }
  wire::SocketAddress tls(std::size_t i = 0) const { return tls_.at(i); }
  wire::SocketAddress dtls(std::size_t i = 0) const { return dtls_.at(i); }
  // The --metrics-listen address (port 0 resolved); unset without it.
  std::optional<wire::SocketAddress> http() const { return http_; }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::vector<wire::SocketAddress> udp_, tcp_, tls_, dtls_;
  std::optional<wire::SocketAddress> http_;
};

// The value of one series in the server's /metrics (it needs --metrics-listen), named as
// Prometheus prints it, e.g. `tern_dropped_packets_total{reason="no_permission"}`. Throws if
// the scrape fails or the series is missing.
std::uint64_t metricValue(const TernServer& server, const std::string& series);

}  // namespace tern::test
