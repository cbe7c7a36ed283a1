// Client connections from a load balancer that speaks the PROXY protocol (--proxy-protocol-from,
// HAProxy's doc/proxy-protocol.txt): once the header names the client, that address is the
// connection's for the core, the limits, logs and usage records; see client_connections.hpp.
#include "relay/core/peer_policy.hpp"
#include "relay/io/client_connections.hpp"
#include "relay/io/log.hpp"

namespace tern::io {

bool ClientConnections::fromProxy(const wire::IpAddress& ip) const noexcept {
  // A dual-stack listener sees an IPv4 proxy as ::ffff:a.b.c.d; IPv4 ranges must match it.
  const wire::IpAddress normal = core::PeerPolicy::normalize(ip);
  for (const auto& range : setup_.proxy_protocol_from) {
    if (range.contains(normal) || range.contains(ip)) return true;
  }
  return false;
}

void ClientConnections::onProxyHeader(StreamConnection& connection,
                                      const core::FiveTuple& before) noexcept {
  auto node = connections_.extract(Key{before.client, before.server});
  if (node.empty()) {
    connection.reset("a proxied connection the worker does not hold");
    return;
  }
  // Now that the client is known, its connections count against its own limit.
  const auto admission = setup_.connection_limits->acquire(connection.tuple().client.ip);
  if (admission.verdict != ConnectionLimits::Verdict::kAccepted) {
    deferred_.add(std::move(node.mapped()));  // we are inside the connection's read callback
    updateGauge();
    refuse(connection, admission);
    return;
  }
  node.key() = Key{connection.tuple().client, connection.tuple().server};
  auto inserted = connections_.insert(std::move(node));
  if (!inserted.inserted) {
    // Two open connections cannot have one client address and port: the header is false.
    setup_.connection_limits->release(connection.tuple().client.ip);
    deferred_.add(std::move(inserted.node.mapped()));
    updateGauge();
    connection.reset("a PROXY header named a client already connected");
    return;
  }
  if (log::enabled(log::LogLevel::kDebug)) {
    log::debug("proxied connection", {{"client", connection.tuple().client.toString()},
                                      {"proxy", before.client.toString()},
                                      {"worker", log_.worker()}});
  }
}

void ClientConnections::onProxyHeaderRefused(StreamConnection& connection,
                                             wire::ProxyHeaderError error) noexcept {
  switch (error) {
    case wire::ProxyHeaderError::kMissing:
      return proxyRefused(connection, metrics::ProxyRejection::kMissing);
    case wire::ProxyHeaderError::kMalformed:
      return proxyRefused(connection, metrics::ProxyRejection::kMalformed);
    case wire::ProxyHeaderError::kTooLong:
      return proxyRefused(connection, metrics::ProxyRejection::kTooLong);
    case wire::ProxyHeaderError::kUnsupported:
      return proxyRefused(connection, metrics::ProxyRejection::kUnsupported);
  }
}

// Counted, and logged within the worker's line budget: a proxy that does not send the header
// (or a host in the range that is no proxy) is a configuration error an operator must fix.
void ClientConnections::proxyRefused(const StreamConnection& connection,
                                     metrics::ProxyRejection why) noexcept {
  counters_.proxy_rejected[metrics::idx(why)].add();
  std::uint64_t suppressed = 0;
  if (!log::enabled(log::LogLevel::kWarn) || !log_.mayLog(suppressed)) return;
  log::write(log::LogLevel::kWarn,
             "connection from a --proxy-protocol-from source closed: it must start with a PROXY "
             "protocol header (HAProxy: send-proxy-v2 or send-proxy); fix the load balancer or "
             "take its address out of --proxy-protocol-from",
             {{"proxy", connection.tuple().client.toString()},
              {"listener", connection.tuple().server.toString()},
              {"reason", std::string(metrics::labelOf(why))},
              {"worker", log_.worker()},
              {"suppressed", suppressed}});
}

}  // namespace tern::io
