// The frame and the table of DTLS forwarding across an upgrade; see dtls_forwarding.hpp.
#include "relay/io/dtls_forwarding.hpp"

#include <algorithm>
#include <tuple>

namespace tern::io {

namespace {

constexpr std::uint8_t kFamily4 = 4;
constexpr std::uint8_t kFamily6 = 6;

// Writes family, port, IP at `out`; the bytes written (at most 19).
std::size_t writeAddress(const wire::SocketAddress& a, std::uint8_t* out) noexcept {
  out[0] = a.ip.isV4() ? kFamily4 : kFamily6;
  out[1] = static_cast<std::uint8_t>(a.port >> 8);
  out[2] = static_cast<std::uint8_t>(a.port & 0xFF);
  std::copy_n(a.ip.data(), a.ip.size(), out + 3);
  return 3 + a.ip.size();
}

bool before(const ForwardTable::Entry& e, std::uint32_t socket,
            const wire::SocketAddress& client) noexcept {
  return std::tie(e.socket, e.client) < std::tie(socket, client);
}

}  // namespace

std::size_t encodeForwardHeader(const ForwardHeader& header,
                                std::array<std::uint8_t, kMaxForwardHeader>& out) noexcept {
  out[0] = static_cast<std::uint8_t>(header.kind);
  out[1] = header.session.listener;
  return 2 + writeAddress(header.session.client, out.data() + 2);
}

bool takeForwardAddress(wire::Bytes& in, wire::SocketAddress& address) noexcept {
  if (in.size() < 3) return false;
  const std::uint8_t family = in[0];
  const std::uint16_t port = static_cast<std::uint16_t>((in[1] << 8) | in[2]);
  in = in.subspan(3);
  if (family == kFamily4 && in.size() >= 4) {
    address.ip = wire::IpAddress::v4(std::array<std::uint8_t, 4>{in[0], in[1], in[2], in[3]});
    in = in.subspan(4);
  } else if (family == kFamily6 && in.size() >= 16) {
    std::array<std::uint8_t, 16> b{};
    std::copy_n(in.begin(), 16, b.begin());
    address.ip = wire::IpAddress::v6(b);
    in = in.subspan(16);
  } else {
    return false;
  }
  address.port = port;
  return true;
}

void putForwardAddress(const wire::SocketAddress& address, std::vector<std::uint8_t>& out) {
  std::array<std::uint8_t, kMaxForwardHeader> b{};
  out.insert(out.end(), b.begin(),
             b.begin() + static_cast<std::ptrdiff_t>(writeAddress(address, b.data())));
}

std::optional<ForwardFrame> decodeForwardFrame(wire::Bytes frame) noexcept {
  if (frame.size() < 2) return std::nullopt;
  ForwardFrame f;
  if (frame[0] == static_cast<std::uint8_t>(ForwardKind::kDatagram)) {
    f.header.kind = ForwardKind::kDatagram;
  } else if (frame[0] == static_cast<std::uint8_t>(ForwardKind::kForget)) {
    f.header.kind = ForwardKind::kForget;
  } else {
    return std::nullopt;
  }
  f.header.session.listener = frame[1];
  frame = frame.subspan(2);
  if (!takeForwardAddress(frame, f.header.session.client)) return std::nullopt;
  // A forget carries nothing more; a datagram is never empty (a DTLS record has a header).
  if ((f.header.kind == ForwardKind::kForget) != frame.empty()) return std::nullopt;
  f.payload = frame;
  return f;
}

void ForwardTable::add(const Entry& entry) { entries_.push_back(entry); }

void ForwardTable::seal() {
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return before(a, b.socket, b.client); });
}

const ForwardTable::Entry* ForwardTable::find(std::uint32_t socket,
                                              const wire::SocketAddress& client) const noexcept {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), std::tie(socket, client),
                             [](const Entry& e, const auto& key) {
                               return before(e, std::get<0>(key), std::get<1>(key));
                             });
  if (it == entries_.end() || it->socket != socket || it->client != client) return nullptr;
  return &*it;
}

bool ForwardTable::forget(std::uint16_t channel, const DtlsSessionRef& session) noexcept {
  // Erasing keeps the order; the table is small and this is the control path.
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return e.channel == channel && e.listener == session.listener && e.client == session.client;
  });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

std::size_t ForwardTable::forgetChannel(std::uint16_t channel) noexcept {
  return std::erase_if(entries_, [&](const Entry& e) { return e.channel == channel; });
}

}  // namespace tern::io
