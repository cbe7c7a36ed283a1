// A client connection's PROXY protocol header (HAProxy's doc/proxy-protocol.txt), read
// before anything else when the connection comes from a --proxy-protocol-from source; see
// stream_connection.hpp.
#include <cstring>

#include "relay/io/stream_connection.hpp"

namespace tern::io {

void StreamConnection::expectProxyHeader(core::TimePoint now) {
  proxy_ = std::make_unique<ProxyHeaderBuffer>();
  proxy_->since = now;
  // Until the header is whole, reads go to the scratch buffer (readBuffer), then here.
  decided_ = false;
}

wire::Bytes StreamConnection::takeProxyHeader(wire::Bytes bytes) noexcept {
  // The header's bytes are copied so it may arrive in pieces; at most kMaxProxyHeader of
  // them, and the parser decides (too long) before more could be needed.
  const std::size_t had = proxy_->size;
  const std::size_t n = std::min(bytes.size(), proxy_->bytes.size() - had);
  std::memcpy(proxy_->bytes.data() + had, bytes.data(), n);
  proxy_->size += n;
  const wire::ProxyParse parsed = wire::parseProxyHeader({proxy_->bytes.data(), proxy_->size});
  if (parsed.status == wire::ProxyParse::Status::kNeedMore) return {};
  if (parsed.status == wire::ProxyParse::Status::kInvalid) {
    handler_.onProxyHeaderRefused(*this, parsed.error);
    // Nothing is answered: the proxy (or whoever shares its address) gets a reset.
    reset("no valid PROXY protocol header from a --proxy-protocol-from source");
    return {};
  }
  proxy_.reset();
  const core::FiveTuple before = tuple_;
  // Spec §2.2: LOCAL, UNSPEC and UNKNOWN keep the connection's own address (a health check).
  // The destination is not used: answers and the listener keys stay this socket's own.
  if (parsed.header.source) tuple_.client = *parsed.header.source;
  handler_.onProxyHeader(*this, before);
  if (closed()) return {};
  // Without a certificate there is nothing to tell apart: the connection is plain TCP.
  if (tls_context_ == nullptr) decided_ = true;
  return bytes.subspan(parsed.header.length - had);
}

}  // namespace tern::io
