// TCP connection reading, framing and bounded writing; see stream_connection.hpp.
#include "relay/io/stream_connection.hpp"

#include <cstring>
#include <memory>
#include <vector>

#include "relay/io/log.hpp"
#include "relay/io/socket_util.hpp"

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
  checkUv(uv_read_start(
              reinterpret_cast<uv_stream_t*>(handle_.get()),
              [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
                auto* self = ownerOf<StreamConnection>(h);
                *buf = self ? self->readBuffer() : uv_buf_init(nullptr, 0);
              },
              [](uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) {
                if (auto* self = ownerOf<StreamConnection>(h)) self->onRead(nread, buf->base);
              }),
          "uv_read_start");
}

uv_buf_t StreamConnection::readBuffer() noexcept {
  if (decided_ && !tls_) {
    auto space = framer_.writable();
    return uv_buf_init(reinterpret_cast<char*>(space.data()), static_cast<unsigned>(space.size()));
  }
  return uv_buf_init(t_scratch.data(), static_cast<unsigned>(t_scratch.size()));
}

void StreamConnection::onRead(ssize_t nread, const char* data) noexcept {
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    close(nread == UV_EOF ? "closed by client" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  last_activity_ = core::TimePoint{std::chrono::milliseconds{uv_now(loop_)}};
  const wire::Bytes bytes{reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(nread)};
  if (!decided_ && !decideTransport(bytes[0])) return;
  if (tls_) {
    onCiphertext(bytes);
    return;
  }
  if (data != reinterpret_cast<const char*>(framer_.writable().data())) {
    // The first bytes landed in the scratch buffer while the transport was undecided.
    auto space = framer_.writable();
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

void StreamConnection::onCiphertext(wire::Bytes data) noexcept {
  tls_->feed(data);
  while (true) {
    const long n = tls_->readPlaintext(framer_.writable());
    if (n < 0) {
      flushCiphertext();  // a TLS alert, if OpenSSL produced one
      close(tls_->error().c_str());
      return;
    }
    if (n == 0) break;
    framer_.commit(static_cast<std::size_t>(n));
    onPlaintext();
    if (closed()) return;
  }
  if (!flushCiphertext()) close("TLS write failed");
}

void StreamConnection::onPlaintext() noexcept {
  while (auto frame = framer_.next()) {
    handler_.onFrame(*this, frame->bytes);
    if (closed()) return;  // the handler closed us
  }
  if (framer_.invalid()) close("not STUN or ChannelData framing");
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
  if (!tls_) return sendRaw(parts);
  if (!tls_->handshakeDone()) return false;
  // Past the bound, drop before encrypting: a TLS record cannot be dropped half-written.
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();
  if (queuedBytes() + total > kMaxQueuedBytes) return false;
  // One frame, one TLS record: some clients (coturn's uclient among them) take each record
  // as a whole message. Encryption copies anyway, so assembling the frame first costs little.
  plaintext_.clear();
  for (const auto& p : parts) plaintext_.insert(plaintext_.end(), p.begin(), p.end());
  if (!tls_->writePlaintext(plaintext_)) return false;
  return flushCiphertext();
}

bool StreamConnection::sendRaw(std::span<const wire::Bytes> parts) noexcept {
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
  // only to frames not yet started (TLS output is bounded before encryption, in send()).
  if (written == 0 && !tls_ && queuedBytes() + total > kMaxQueuedBytes) return false;
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
      }) < 0) {
    return false;
  }
  req.release();  // freed by the write callback
  return true;
}

void StreamConnection::close(const char* reason) noexcept {
  if (!handle_) return;
  log::debug("connection closed", {{"client", tuple_.client.toString()}, {"reason", reason}});
  handle_.close();
  handler_.onClosed(*this);
}

}  // namespace tern::io
