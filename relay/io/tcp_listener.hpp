// A listening TCP socket (bound with SO_REUSEPORT in every worker, so the kernel spreads
// connections) that hands each accepted connection to its owner.
#pragma once

#include <uv.h>

#include "relay/io/socket_util.hpp"
#include "relay/io/uv_handle.hpp"

namespace tern::io {

class TcpListener;

class ConnectionAcceptor {
 public:
  virtual ~ConnectionAcceptor() = default;
  // A connection is pending on `listener`; accept it with StreamConnection's constructor.
  virtual void onConnection(TcpListener& listener) noexcept = 0;
};

class TcpListener {
 public:
  // `require_tls`: a --tls-listen port, where plain TCP is refused. `id` names a TCP
  // allocation's relay listener (RFC 6062) to its acceptor.
  TcpListener(uv_loop_t* loop, FileDescriptor fd, ConnectionAcceptor& acceptor, bool require_tls = false,
              std::uint32_t id = 0);
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  uv_stream_t* stream() const noexcept { return reinterpret_cast<uv_stream_t*>(handle_.get()); }
  const wire::SocketAddress& localAddress() const noexcept { return local_; }
  bool requireTls() const noexcept { return require_tls_; }
  std::uint32_t id() const noexcept { return id_; }
  // The listening socket's descriptor; -1 once closed.
  int fd() const noexcept {
    uv_os_fd_t fd = -1;
    return handle_ && uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_.get()), &fd) == 0 ? fd : -1;
  }
  void close() noexcept { handle_.close(); }

 private:
  UvHandle<uv_tcp_t> handle_;
  ConnectionAcceptor& acceptor_;
  wire::SocketAddress local_;
  bool require_tls_;
  std::uint32_t id_;
};

}  // namespace tern::io
