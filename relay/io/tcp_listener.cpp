// TCP listening on a pre-bound SO_REUSEPORT socket; see tcp_listener.hpp.
#include "relay/io/tcp_listener.hpp"

#include "relay/io/log.hpp"

namespace tern::io {

TcpListener::TcpListener(uv_loop_t* loop, FileDescriptor fd, ConnectionAcceptor& acceptor, bool require_tls,
                         std::uint32_t id)
    : acceptor_(acceptor), local_(io::localAddress(fd.get())), require_tls_(require_tls), id_(id) {
  checkUv(uv_tcp_init(loop, handle_.get()), "uv_tcp_init");
  handle_.initialized(this);
  checkUv(uv_tcp_open(handle_.get(), fd.get()), "uv_tcp_open");
  fd.release();
  checkUv(uv_listen(stream(), SOMAXCONN,
                    [](uv_stream_t* h, int status) {
                      auto* self = ownerOf<TcpListener>(h);
                      if (!self) return;
                      if (status < 0) {
                        log::warn("tcp accept failed", {{"address", self->local_.toString()},
                                                        {"error", uv_strerror(status)}});
                        return;
                      }
                      self->acceptor_.onConnection(*self);
                    }),
          "uv_listen");
}

}  // namespace tern::io
