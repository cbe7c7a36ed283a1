// The wire form of a worker's bundle; see upgrade_bundle.hpp. Big-endian counts (network
// order, like relay/wire and core's snapshot records). An allocation is core's snapshot
// record; its relay sockets are as many descriptors as the record lists relays. A TCP client
// connection is core's connection record and one descriptor. Then a pre-copy's updates and
// removals, the worker's unclaimed EVEN-PORT reservations (reservation_hand_over.hpp), which
// carry no descriptor, and last RFC 6062 connections: a count, then per connection core's tcp
// connection record, a has-data byte and, if 1, core's connection record of its data
// connection; the peer socket's descriptor, then the data connection's.
#include "relay/io/upgrade_bundle.hpp"

#include "relay/io/reservation_hand_over.hpp"

namespace tern::io {

namespace {

constexpr std::uint8_t kBundleVersion = 2;  // 2: a pre-copy's updates and removals
constexpr std::size_t kMaxListeners = 4096;

void putU32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

bool takeU32(wire::Bytes& in, std::uint32_t& v) noexcept {
  if (in.size() < 4) return false;
  v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | in[i];
  in = in.subspan(4);
  return true;
}

bool takeU8(wire::Bytes& in, std::uint8_t& v) noexcept {
  if (in.empty()) return false;
  v = in[0];
  in = in.subspan(1);
  return true;
}

// Hands out the received descriptors in order.
class FdQueue {
 public:
  explicit FdQueue(std::vector<FileDescriptor> fds) : fds_(std::move(fds)) {}
  bool take(FileDescriptor& fd) noexcept {
    if (next_ >= fds_.size()) return false;
    fd = std::move(fds_[next_++]);
    return true;
  }
  bool allTaken() const noexcept { return next_ == fds_.size(); }

 private:
  std::vector<FileDescriptor> fds_;
  std::size_t next_ = 0;
};

std::vector<FileDescriptor>* socketsOf(WorkerSockets& sockets, std::uint8_t kind) noexcept {
  switch (static_cast<ClientListeners::Kind>(kind)) {
    case ClientListeners::Kind::kUdp: return &sockets.udp;
    case ClientListeners::Kind::kTcp: return &sockets.tcp;
    case ClientListeners::Kind::kTls: return &sockets.tls;
    case ClientListeners::Kind::kDtls: return &sockets.dtls;
  }
  return nullptr;
}

std::optional<std::string> decodeListeners(wire::Bytes& in, FdQueue& fds, WorkerSockets& sockets) {
  std::uint32_t count = 0;
  if (!takeU32(in, count) || count > kMaxListeners) return "bad listener count";
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint8_t kind = 0;
    FileDescriptor fd;
    if (!takeU8(in, kind)) return "truncated listener";
    std::vector<FileDescriptor>* list = socketsOf(sockets, kind);
    if (list == nullptr) return "unknown listener kind";
    if (!fds.take(fd)) return "a listener without its descriptor";
    list->push_back(std::move(fd));
  }
  return std::nullopt;
}

std::optional<std::string> decodeAllocations(wire::Bytes& in, FdQueue& fds,
                                             std::vector<RestoredAllocation>& out) {
  std::uint32_t count = 0;
  if (!takeU32(in, count)) return "bad allocation count";
  // Each record takes more than a byte: a count larger than the payload is a lie.
  if (count > in.size()) return "allocation count over the payload's size";
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto snapshot = core::decodeSnapshot(in);
    if (!snapshot) return "allocation " + std::to_string(i) + ": " + snapshot.error();
    RestoredAllocation restored{std::move(*snapshot), {}};
    for (std::size_t r = 0; r < restored.snapshot.relays.size(); ++r) {
      FileDescriptor fd;
      if (!fds.take(fd)) return "an allocation without its relay socket";
      restored.relay_sockets.push_back(std::move(fd));
    }
    out.push_back(std::move(restored));
  }
  return std::nullopt;
}

std::optional<std::string> decodeConnections(wire::Bytes& in, FdQueue& fds, std::vector<RestoredConnection>& out) {
  std::uint32_t count = 0;
  if (!takeU32(in, count)) return "bad connection count";
  if (count > in.size()) return "connection count over the payload's size";
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto snapshot = core::decodeConnection(in);
    if (!snapshot) return "connection " + std::to_string(i) + ": " + snapshot.error();
    FileDescriptor fd;
    if (!fds.take(fd)) return "a connection without its socket";
    out.push_back({std::move(*snapshot), std::move(fd)});
  }
  return std::nullopt;
}

std::optional<std::string> decodeUpdates(wire::Bytes& in, std::uint8_t worker, WorkerSockets& sockets) {
  std::uint32_t count = 0;
  if (!takeU32(in, count)) return "bad update count";
  if (count > in.size()) return "update count over the payload's size";
  sockets.updated.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto snapshot = core::decodeSnapshot(in);
    if (!snapshot) return "update " + std::to_string(i) + ": " + snapshot.error();
    sockets.updated.push_back(std::move(*snapshot));
  }
  if (!takeU32(in, count)) return "bad removal count";
  if (count > in.size() / 4) return "removal count over the payload's size";
  sockets.removed.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t relay = 0;
    (void)takeU32(in, relay);  // the size was checked above
    sockets.removed.push_back({worker, relay});
  }
  return std::nullopt;
}

std::optional<std::string> decodePeerConnections(wire::Bytes& in, FdQueue& fds,
                                                 std::vector<RestoredPeerConnection>& out) {
  std::uint32_t count = 0;
  if (!takeU32(in, count)) return "bad peer connection count";
  if (count > in.size()) return "peer connection count over the payload's size";
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto snapshot = core::decodeTcpConnection(in);
    if (!snapshot) return "peer connection " + std::to_string(i) + ": " + snapshot.error();
    RestoredPeerConnection restored{std::move(*snapshot), {}, std::nullopt, {}};
    std::uint8_t has_data = 0;
    if (!takeU8(in, has_data) || has_data > 1)
      return "peer connection " + std::to_string(i) + ": bad data flag";
    if (has_data == 1) {
      auto data = core::decodeConnection(in);
      if (!data) return "peer connection " + std::to_string(i) + ": " + data.error();
      // A pipe passes on what it reads at once: its side never moves with bytes of its own.
      if (!data->unread.empty())
        return "peer connection " + std::to_string(i) + ": a data connection with unread bytes";
      restored.data = std::move(*data);
    }
    if (restored.data.has_value() != restored.snapshot.bound) {
      return "peer connection " + std::to_string(i) +
             ": bound without a data connection or the reverse";
    }
    if (!fds.take(restored.peer_fd)) return "a peer connection without its socket";
    if (restored.data && !fds.take(restored.data_fd)) return "a data connection without its socket";
    out.push_back(std::move(restored));
  }
  return std::nullopt;
}

// Appended after the connections; absent (a bundle that ends there) when no DTLS session
// stays: a count, each session's listener and client address, then one descriptor.
void encodeDtlsSessions(const OutgoingBundle& bundle, EncodedBundle& e) {
  if (bundle.dtls_sessions.empty() || bundle.dtls_channel < 0) return;
  putU32(e.payload, static_cast<std::uint32_t>(bundle.dtls_sessions.size()));
  for (const DtlsSessionRef& s : bundle.dtls_sessions) {
    e.payload.push_back(s.listener);
    putForwardAddress(s.client, e.payload);
  }
  e.fds.push_back(bundle.dtls_channel);
}

std::optional<std::string> decodeDtlsSessions(wire::Bytes& in, FdQueue& fds,
                                              WorkerSockets& sockets) {
  if (in.empty()) return std::nullopt;
  std::uint32_t count = 0;
  if (!takeU32(in, count) || count == 0 || count > in.size()) return "bad dtls session count";
  DtlsForward forward;
  forward.sessions.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    DtlsForward::Session s;
    if (!takeU8(in, s.session.listener) || !takeForwardAddress(in, s.session.client))
      return "truncated dtls session";
    if (s.session.listener >= sockets.dtls.size()) return "a dtls session on no dtls listener";
    s.socket = s.session.listener;
    forward.sessions.push_back(s);
  }
  if (!fds.take(forward.channel)) return "dtls sessions without their socket";
  sockets.dtls_forward.push_back(std::move(forward));
  return std::nullopt;
}

}  // namespace

EncodedBundle encodeBundle(const OutgoingBundle& bundle) {
  EncodedBundle e;
  e.payload.push_back(kBundleVersion);
  putU32(e.payload, bundle.worker);
  putU32(e.payload, static_cast<std::uint32_t>(bundle.listeners.size()));
  for (const auto& l : bundle.listeners) {
    e.payload.push_back(static_cast<std::uint8_t>(l.kind));
    e.fds.push_back(l.fd);
  }
  putU32(e.payload, static_cast<std::uint32_t>(bundle.allocations.size()));
  for (std::size_t i = 0; i < bundle.allocations.size(); ++i) {
    core::encodeSnapshot(bundle.allocations[i], e.payload);
    e.fds.insert(e.fds.end(), bundle.relay_fds[i].begin(), bundle.relay_fds[i].end());
  }
  putU32(e.payload, static_cast<std::uint32_t>(bundle.connections.size()));
  for (std::size_t i = 0; i < bundle.connections.size(); ++i) {
    core::encodeConnection(bundle.connections[i], e.payload);
    e.fds.push_back(bundle.connection_fds[i]);
  }
  putU32(e.payload, static_cast<std::uint32_t>(bundle.updated.size()));
  for (const core::AllocationSnapshot& a : bundle.updated) core::encodeSnapshot(a, e.payload);
  putU32(e.payload, static_cast<std::uint32_t>(bundle.removed.size()));
  for (core::RelayId relay : bundle.removed) putU32(e.payload, relay);
  encodeReservations(bundle.reservations, e.payload);
  putU32(e.payload, static_cast<std::uint32_t>(bundle.peer_connections.size()));
  for (const auto& c : bundle.peer_connections) {
    core::encodeTcpConnection(c.snapshot, e.payload);
    e.payload.push_back(c.data ? 1 : 0);
    if (c.data) core::encodeConnection(*c.data, e.payload);
    e.fds.push_back(c.peer_fd);
    if (c.data) e.fds.push_back(c.data_fd);
  }
  encodeDtlsSessions(bundle, e);
  return e;
}

Expected<IncomingBundle, std::string> decodeBundle(wire::Bytes in, std::vector<FileDescriptor> fds) {
  FdQueue queue(std::move(fds));
  IncomingBundle bundle;
  std::uint8_t version = 0;
  if (!takeU8(in, version) || version != kBundleVersion) {
    return Unexpected(std::string("unknown bundle version"));
  }
  std::uint32_t worker = 0;
  if (!takeU32(in, worker)) return Unexpected(std::string("truncated bundle"));
  bundle.worker = worker;
  if (auto problem = decodeListeners(in, queue, bundle.sockets)) return Unexpected(*problem);
  if (auto problem = decodeAllocations(in, queue, bundle.sockets.restored)) return Unexpected(*problem);
  if (auto problem = decodeConnections(in, queue, bundle.sockets.connections)) return Unexpected(*problem);
  if (worker > 0xFF) return Unexpected(std::string("bad worker index"));
  if (auto problem = decodeUpdates(in, static_cast<std::uint8_t>(worker), bundle.sockets)) return Unexpected(*problem);
  if (auto problem = decodeReservations(in, bundle.sockets.reservations))
    return Unexpected(*problem);
  if (auto problem = decodePeerConnections(in, queue, bundle.sockets.peer_connections))
    return Unexpected(*problem);
  if (auto problem = decodeDtlsSessions(in, queue, bundle.sockets)) return Unexpected(*problem);
  if (!in.empty()) return Unexpected(std::string("bytes after the bundle"));
  if (!queue.allTaken()) return Unexpected(std::string("descriptors left over"));
  return bundle;
}

}  // namespace tern::io
