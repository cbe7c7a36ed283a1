// TCP connection reading, framing and bounded writing; see stream_connection.hpp.
#include "relay/io/stream_connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <vector>

#include "relay/io/log.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/checks.hpp"

namespace tern::io {

// A queued write owns its bytes until libuv's callback; only the slow path allocates.
struct StreamConnection::WriteRequest {
  uv_write_t req{};
  std::vector<char> data;
};

namespace {
core::SocketAddress endpoint(uv_tcp_t* tcp, bool peer) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  const int rc = peer ? uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len)
                      : uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&ss), &len);
  checkUv(rc, peer ? "uv_tcp_getpeername" : "uv_tcp_getsockname");
  return fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}
}  // namespace

namespace {
// Scratch space for ciphertext and undecided first bytes; callbacks on one loop thread run
// one at a time, so one buffer per thread serves every connection of a worker.
thread_local std::vector<char> t_scratch(64 * 1024);
}  // namespace

namespace {
// Peer connections are never framed; they need no reassembly buffer.
constexpr std::size_t kNoFramer = 0;
}  // namespace

StreamConnection::StreamConnection(uv_loop_t* loop, uv_stream_t* server, StreamHandler& handler,
                                   core::TimePoint now, std::shared_ptr<const TlsContext> tls,
                                   bool require_tls)
    : handler_(handler),
      loop_(loop),
      last_activity_(now),
      tls_context_(std::move(tls)),
      require_tls_(require_tls),
      decided_(tls_context_ == nullptr) {
  checkUv(uv_tcp_init(loop, handle_.get()), "uv_tcp_init");
  handle_.initialized(this);
  checkUv(uv_accept(server, reinterpret_cast<uv_stream_t*>(handle_.get())), "uv_accept");
  // Media is latency-sensitive; never wait to coalesce small frames.
  uv_tcp_nodelay(handle_.get(), 1);
  tuple_ = {core::Transport::kTcp, endpoint(handle_.get(), true), endpoint(handle_.get(), false)};
  startReading();
}

StreamConnection::StreamConnection(PeerTag, uv_loop_t* loop, uv_stream_t* server, StreamHandler& handler,
                                   core::TimePoint now)
    : handler_(handler), loop_(loop), framer_(kNoFramer), last_activity_(now), peer_side_(true) {
  checkUv(uv_tcp_init(loop, handle_.get()), "uv_tcp_init");
  handle_.initialized(this);
  checkUv(uv_accept(server, reinterpret_cast<uv_stream_t*>(handle_.get())), "uv_accept");
  uv_tcp_nodelay(handle_.get(), 1);
  tuple_ = {core::Transport::kTcp, endpoint(handle_.get(), true), endpoint(handle_.get(), false)};
  // RFC 6062 §5.3: data from the peer waits in the kernel (its TCP window closes) until the
  // client binds the connection.
}

StreamConnection::StreamConnection(uv_loop_t* loop, FileDescriptor socket, const wire::SocketAddress& peer,
                                   StreamHandler& handler, core::TimePoint now)
    : handler_(handler), loop_(loop), framer_(kNoFramer), last_activity_(now), peer_side_(true) {
  checkUv(uv_tcp_init(loop, handle_.get()), "uv_tcp_init");
  handle_.initialized(this);
  const wire::SocketAddress local = localAddress(socket.get());
  checkUv(uv_tcp_open(handle_.get(), socket.get()), "uv_tcp_open");
  socket.release();
  tuple_ = {core::Transport::kTcp, peer, local};
  sockaddr_storage ss{};
  toSockaddr(peer, ss);
  auto request = std::make_unique<uv_connect_t>();
  checkUv(uv_tcp_connect(request.get(), handle_.get(), reinterpret_cast<const sockaddr*>(&ss),
                         [](uv_connect_t* req, int status) {
                           std::unique_ptr<uv_connect_t> done{req};
                           // Cancelled (status ECANCELED) when the connection closed first.
                           auto* self = ownerOf<StreamConnection>(req->handle);
                           if (self == nullptr) return;
                           if (status == 0) uv_tcp_nodelay(self->handle_.get(), 1);
                           self->handler_.onConnected(*self, status == 0);
                         }),
          "uv_tcp_connect");
  request.release();  // freed by the callback, which libuv always runs
}

StreamConnection::StreamConnection(PeerTag, uv_loop_t* loop, FileDescriptor socket,
                                   StreamHandler& handler, core::TimePoint now)
    : handler_(handler), loop_(loop), framer_(kNoFramer), last_activity_(now), peer_side_(true) {
  checkUv(uv_tcp_init(loop, handle_.get()), "uv_tcp_init");
  handle_.initialized(this);
  checkUv(uv_tcp_open(handle_.get(), socket.get()), "uv_tcp_open");
  socket.release();
  uv_tcp_nodelay(handle_.get(), 1);
  tuple_ = {core::Transport::kTcp, endpoint(handle_.get(), true), endpoint(handle_.get(), false)};
}

StreamConnection::StreamConnection(uv_loop_t* loop, DetachedConnection& detached, StreamHandler& handler,
                                   core::TimePoint now)
    : handler_(handler), loop_(loop), tuple_(detached.tuple), last_activity_(now), tls_(std::move(detached.tls)) {
  checkUv(uv_tcp_init(loop, handle_.get()), "uv_tcp_init");
  handle_.initialized(this);
  checkUv(uv_tcp_open(handle_.get(), detached.fd.get()), "uv_tcp_open");
  detached.fd.release();
  uv_tcp_nodelay(handle_.get(), 1);
  startReading();
}

void StreamConnection::startReading() noexcept {
  if (!handle_ || reading_ || read_eof_ || paused_) return;
  const int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(handle_.get()),
      [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
        auto* self = ownerOf<StreamConnection>(h);
        *buf = self ? self->readBuffer() : uv_buf_init(nullptr, 0);
      },
      [](uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) {
        if (auto* self = ownerOf<StreamConnection>(h)) self->onRead(nread, buf->base);
      });
  if (rc < 0) {
    close(uv_strerror(rc));
    return;
  }
  reading_ = true;
}

uv_buf_t StreamConnection::readBuffer() noexcept {
  if (decided_ && !tls_ && !partner_) {
    auto space = framer_.writable();
    return uv_buf_init(reinterpret_cast<char*>(space.data()), static_cast<unsigned>(space.size()));
  }
  return uv_buf_init(t_scratch.data(), static_cast<unsigned>(t_scratch.size()));
}

void StreamConnection::onRead(ssize_t nread, const char* data) noexcept {
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    if (nread == UV_EOF && partner_ != nullptr) {
      // A pipe's end hung up: finish writing what it sent, then close both.
      uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_.get()));
      reading_ = false;
      read_eof_ = true;
      partner_->shutdownAfterWrites();
      return;
    }
    close(nread == UV_EOF ? "closed by client" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  last_activity_ = core::TimePoint{std::chrono::milliseconds{uv_now(loop_)}};
  wire::Bytes bytes{reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(nread)};
  if (proxy_ && (bytes = takeProxyHeader(bytes)).empty()) return;
  if (!decided_ && !decideTransport(bytes[0])) return;
  if (tls_) {
    onCiphertext(bytes);
    return;
  }
  if (partner_ != nullptr) {
    onPipeData(bytes);
    return;
  }
  if (data != reinterpret_cast<const char*>(framer_.writable().data())) {
    // The first bytes landed in the scratch buffer while the transport was undecided.
    auto space = framer_.writable();
    if (space.empty()) {
      close("out of memory for the connection's buffer");
      return;
    }
    const std::size_t n = std::min(space.size(), bytes.size());
    std::memcpy(space.data(), bytes.data(), n);
    framer_.commit(n);
  } else {
    framer_.commit(bytes.size());
  }
  onPlaintext();
}

bool StreamConnection::decideTransport(std::uint8_t first) noexcept {
  decided_ = true;
  if (looksLikeTls(first)) {
    try {
      tls_ = std::make_unique<TlsSession>(tls_context_);
    } catch (const std::exception& e) {
      close(e.what());
      return false;
    }
    tuple_.transport = core::Transport::kTls;
    return true;
  }
  if (require_tls_) {
    close("not a TLS handshake on a TLS port");
    return false;
  }
  return true;
}

namespace {
// Decrypted bytes of a piped TLS connection, on their way to the partner.
thread_local std::vector<std::uint8_t> t_pipe_plaintext(16 * 1024);
}  // namespace

void StreamConnection::onCiphertext(wire::Bytes data) noexcept {
  tls_->feed(data);
  while (true) {
    const wire::MutableBytes out = partner_ != nullptr ? wire::MutableBytes(t_pipe_plaintext) : framer_.writable();
    if (out.empty()) {
      close("out of memory for the connection's buffer");
      return;
    }
    const long n = tls_->readPlaintext(out);
    if (n < 0) {
      flushCiphertext();  // a TLS alert, if OpenSSL produced one
      close(tls_->error().c_str());
      return;
    }
    if (n == 0) break;
    if (partner_ != nullptr) {
      onPipeData(out.first(static_cast<std::size_t>(n)));
    } else {
      framer_.commit(static_cast<std::size_t>(n));
      onPlaintext();
    }
    if (closed()) return;
  }
  if (!flushCiphertext()) close("TLS write failed");
}

void StreamConnection::onPlaintext() noexcept {
  // A frame may turn this into a pipe (ConnectionBind): then framing stops.
  while (partner_ == nullptr) {
    auto frame = framer_.next();
    if (!frame) break;
    handler_.onFrame(*this, frame->bytes);
    if (closed()) return;  // the handler closed us, or moved us to another worker
  }
  if (partner_ == nullptr && framer_.invalid()) close("not STUN or ChannelData framing");
}

void StreamConnection::inject(wire::Bytes plaintext) noexcept {
  if (plaintext.empty()) return;  // an upgrade's connection read nothing past its last frame
  auto space = framer_.writable();
  if (space.empty()) {
    close("out of memory for the connection's buffer");
    return;
  }
  const std::size_t n = std::min(space.size(), plaintext.size());
  std::memcpy(space.data(), plaintext.data(), n);
  framer_.commit(n);
  onPlaintext();
}

void StreamConnection::pipe(StreamConnection& other) noexcept {
  partner_ = &other;
  other.partner_ = this;
  for (StreamConnection* side : {this, &other}) {
    // Bytes that arrived after the ConnectionBind, before the join, go first.
    if (const wire::Bytes unread = side->framer_.unread(); !unread.empty()) {
      side->onPipeData(unread);
      side->framer_.clear();
    }
  }
  if (closed() || other.closed()) return;
  startReading();
  other.startReading();
}

void StreamConnection::onPipeData(wire::Bytes data) noexcept {
  StreamConnection* to = partner_;
  if (to == nullptr) return;
  if (!to->writePiped(data)) {
    close("pipe write failed");
    return;
  }
  handler_.onPiped(*this, data.size());
  // Back-pressure: the receiving side is slow, so stop taking more from this one.
  if (to->queuedBytes() > kPipeHighWater && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_.get()));
    reading_ = false;
  }
}

void StreamConnection::pauseReading() noexcept {
  paused_ = true;
  if (!handle_ || !reading_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_.get()));
  reading_ = false;
}

void StreamConnection::resumeReading() noexcept {
  paused_ = false;
  // While the partner still has much queued, its onWriteDone() resumes this side later.
  if (partner_ == nullptr || partner_->queuedBytes() <= kPipeLowWater) startReading();
}

void StreamConnection::onWriteDone() noexcept {
  if (partner_ != nullptr && !partner_->reading_ && queuedBytes() <= kPipeLowWater) {
    partner_->startReading();
  }
}

bool StreamConnection::writePiped(wire::Bytes data) noexcept {
  if (!handle_ || shutting_down_) return false;
  if (!tls_) return sendRaw(std::span<const wire::Bytes>(&data, 1), false);
  // The reader of the other side stops at the high mark, so this queue stays bounded.
  if (!tls_->writePlaintext(data)) return false;
  return flushCiphertext();
}

void StreamConnection::shutdownAfterWrites() noexcept {
  if (!handle_ || shutting_down_) return;
  // A TLS side ends its stream with close_notify, queued ahead of the FIN (RFC 8446 §6.1).
  if (tls_ && tls_->closeNotify() && !flushCiphertext()) {
    close("TLS write failed");
    return;
  }
  shutting_down_ = true;
  auto request = std::make_unique<uv_shutdown_t>();
  const int rc = uv_shutdown(request.get(), reinterpret_cast<uv_stream_t*>(handle_.get()),
                             [](uv_shutdown_t* req, int) {
                               std::unique_ptr<uv_shutdown_t> done{req};
                               if (auto* self = ownerOf<StreamConnection>(req->handle)) {
                                 self->close("closed by the other end");
                               }
                             });
  if (rc < 0) {
    close(uv_strerror(rc));
    return;
  }
  request.release();  // freed by the callback, which libuv always runs
}

std::unique_ptr<DetachedConnection> StreamConnection::detach() noexcept {
  flushPending();
  if (!handle_ || queuedBytes() > 0 || partner_ != nullptr) return nullptr;
  uv_os_fd_t fd = -1;
  if (uv_fileno(handle_.base(), &fd) != 0) return nullptr;
  try {
    auto detached = std::make_unique<DetachedConnection>();
    // The handle closes its own descriptor; the duplicate carries the socket on.
    detached->fd = FileDescriptor{::fcntl(fd, F_DUPFD_CLOEXEC, 0)};
    if (!detached->fd) return nullptr;
    detached->tuple = tuple_;
    detached->tls = std::move(tls_);
    const wire::Bytes unread = framer_.unread();
    detached->unread.assign(unread.begin(), unread.end());
    framer_.clear();
    close("moved to the worker that owns its connection");
    return detached;
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("connection hand-over");  // the caller closes the connection
    return nullptr;
  }
}

std::optional<std::vector<std::uint8_t>> StreamConnection::freezeForUpgrade() noexcept {
  flushPending();
  if (!handle_ || tls_ || !decided_ || require_tls_ || peer_side_ || partner_ != nullptr || shutting_down_ ||
      read_eof_ || queuedBytes() > 0) {
    return std::nullopt;
  }
  try {
    const wire::Bytes unread = framer_.unread();
    std::vector<std::uint8_t> copy(unread.begin(), unread.end());
    pauseReading();
    return copy;
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("connection upgrade");  // it stays with this process
    return std::nullopt;
  }
}

bool StreamConnection::freezeStreamForUpgrade() noexcept {
  flushPending();
  if (!handle_ || tls_ || !decided_ || shutting_down_ || read_eof_ || queuedBytes() > 0 ||
      !framer_.unread().empty()) {
    return false;
  }
  if (partner_ != nullptr) pauseReading();
  return true;
}

bool StreamConnection::flushCiphertext() noexcept {
  tls_->takeCiphertext(ciphertext_);
  if (ciphertext_.empty()) return true;
  const wire::Bytes all = ciphertext_;
  // Handshake and alert records must not be dropped; their size is small and bounded.
  return sendRaw(std::span<const wire::Bytes>(&all, 1));
}

bool StreamConnection::send(std::span<const wire::Bytes> parts) noexcept {
  if (!handle_) return false;
  const bool defer = batch_ != nullptr && batch_->active() && partner_ == nullptr;
  if (!tls_ && !defer) return sendRaw(parts);
  if (tls_ && !tls_->handshakeDone()) return false;
  // Past the bound, drop before encrypting or deferring: a frame is never split.
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();
  if (queuedBytes() + total > kMaxQueuedBytes) return false;
  if (defer && !deferred_) {
    batch_->deferStream(this);
    deferred_ = true;
  }
  if (!tls_) {
    for (const auto& p : parts) pending_.insert(pending_.end(), p.begin(), p.end());
    return true;
  }
  // One frame, one TLS record: some clients (coturn's uclient among them) take each record
  // as a whole message. Encryption copies anyway, so assembling the frame first costs little.
  // Deferred records wait in the session's output buffer and leave together.
  plaintext_.clear();
  for (const auto& p : parts) plaintext_.insert(plaintext_.end(), p.begin(), p.end());
  if (!tls_->writePlaintext(plaintext_)) return false;
  return defer || flushCiphertext();
}

void StreamConnection::endRound() noexcept {
  deferred_ = false;
  flushPending();
}

void StreamConnection::flushPending() noexcept {
  if (!handle_) return;
  if (tls_) {
    if (!flushCiphertext()) close("TLS write failed");
    return;
  }
  if (pending_.empty()) return;
  const wire::Bytes all = pending_;
  // Bounded when deferred; errors surface on the read side, which closes.
  (void)writeNow(std::span<const wire::Bytes>(&all, 1), false);
  pending_.clear();
}

bool StreamConnection::sendRaw(std::span<const wire::Bytes> parts, bool bounded) noexcept {
  // Frames deferred earlier in this round go first (a pipe's first bytes after a
  // ConnectionBind response, TLS handshake output).
  if (!pending_.empty()) flushPending();
  return writeNow(parts, bounded);
}

bool StreamConnection::writeNow(std::span<const wire::Bytes> parts, bool bounded) noexcept {
  if (!handle_ || parts.size() > 4) return false;
  auto* stream = reinterpret_cast<uv_stream_t*>(handle_.get());
  uv_buf_t bufs[4];
  unsigned n = 0;
  std::size_t total = 0;
  for (const auto& part : parts) {
    bufs[n++] = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(part.data())),
                            static_cast<unsigned>(part.size()));
    total += part.size();
  }
  // uv_try_write refuses (EAGAIN) while earlier writes are queued, which keeps order.
  const int rc = uv_try_write(stream, bufs, n);
  if (rc < 0 && rc != UV_EAGAIN) return false;  // the read side will see the error and close
  const std::size_t written = rc > 0 ? static_cast<std::size_t>(rc) : 0;
  if (written == total) return true;
  // A partly written frame must be finished or the stream is corrupt, so the bound applies
  // only to frames not yet started (TLS output is bounded before encryption, in send(), and
  // pipes are bounded by pausing their other side).
  if (bounded && written == 0 && !tls_ && queuedBytes() + total > kMaxQueuedBytes) return false;
  auto req = std::make_unique<WriteRequest>();
  req->data.reserve(total - written);
  std::size_t skip = written;
  for (const auto& part : parts) {
    const std::size_t from = std::min(skip, part.size());
    skip -= from;
    req->data.insert(req->data.end(), part.begin() + static_cast<std::ptrdiff_t>(from), part.end());
  }
  req->req.data = req.get();
  uv_buf_t b = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  if (uv_write(&req->req, stream, &b, 1, [](uv_write_t* w, int /*status: errors surface on read*/) {
        std::unique_ptr<WriteRequest> done{static_cast<WriteRequest*>(w->data)};
        if (auto* self = ownerOf<StreamConnection>(w->handle)) self->onWriteDone();
      }) < 0) {
    return false;
  }
  req.release();  // freed by the write callback
  return true;
}

StreamConnection::~StreamConnection() {
  if (deferred_) batch_->forgetStream(this);
}

void StreamConnection::reset(const char* reason) noexcept {
  if (!handle_ || partner_ != nullptr || queuedBytes() > 0) {
    close(reason);
    return;
  }
  // SO_LINGER with a zero timeout: close() sends RST and frees the socket at once.
  uv_os_fd_t fd = -1;
  if (uv_fileno(handle_.base(), &fd) == 0) {
    const linger abort{1, 0};
    // Should it fail, the connection still closes, with a FIN.
    (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  }
  close(reason);
}

void StreamConnection::finish(const char* reason) noexcept {
  if (!handle_) return;
  // After uv_shutdown nothing more may be written; that path sent its close_notify already.
  if (!shutting_down_) {
    if (tls_) (void)tls_->closeNotify();
    flushPending();  // TLS: the round's records and the alert; plain TCP: the round's frames
  }
  close(reason);
}

void StreamConnection::close(const char* reason) noexcept {
  if (!handle_) return;
  if (std::exchange(deferred_, false)) batch_->forgetStream(this);
  pending_.clear();
  log::debug("connection closed", {{"client", tuple_.client.toString()}, {"reason", reason}});
  handle_.close();
  if (StreamConnection* other = std::exchange(partner_, nullptr)) {
    other->partner_ = nullptr;
    other->finish("the other end of the pipe closed");
  }
  handler_.onClosed(*this);
}

}  // namespace tern::io
