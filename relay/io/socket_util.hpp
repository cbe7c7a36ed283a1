// Plain socket set-up the libuv of Debian 12 (1.44) cannot do itself: SO_REUSEPORT sockets
// bound before uv_udp_open/uv_tcp_open, sockaddr conversions, buffer sizes.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "relay/wire/address.hpp"

namespace tern::io {

enum class SocketKind : std::uint8_t { kUdp, kTcp };

// An owned file descriptor; closed on destruction unless released to libuv.
class FileDescriptor {
 public:
  FileDescriptor() noexcept = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(FileDescriptor&& o) noexcept : fd_(o.release()) {}
  FileDescriptor& operator=(FileDescriptor&& o) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const noexcept { return fd_; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct SocketOptions {
  std::uint32_t receive_buffer = 0;  // 0: system default
  std::uint32_t send_buffer = 0;
  // Listeners share their address across workers; a relay socket is one allocation's own.
  bool reuse_port = true;
  // RFC 8656 §7.2 DONT-FRAGMENT: set DF on datagrams to peers (IP_PMTUDISC_DO).
  bool dont_fragment = false;
  // TCP: listen (a listener) or not (a socket that will connect from this address).
  bool listen = true;
  // UDP: queue ICMP errors about datagrams sent for reading with MSG_ERRQUEUE (IP_RECVERR,
  // IPV6_RECVERR), so relay sockets can pass them on (RFC 8656 §11.5).
  bool receive_errors = false;
};

// Creates a non-blocking socket with SO_REUSEPORT unless told otherwise (so every worker
// binds the same address and the kernel spreads flows by 5-tuple) and IPV6_V6ONLY for IPv6,
// binds it, and for TCP starts listening. Throws std::runtime_error naming the address and
// errno on failure; SocketError::code() keeps the errno.
class SocketError : public std::runtime_error {
 public:
  SocketError(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

FileDescriptor openBoundSocket(SocketKind kind, const wire::SocketAddress& address,
                               const SocketOptions& options);

// The same without exceptions, for sockets opened while serving (relay sockets): the socket,
// or no descriptor with the errno and the step that failed. Running out of descriptors is
// an answer there (508), and throwing needs resources the process may have just run out of.
struct BoundSocket {
  FileDescriptor fd;
  int error = 0;
  const char* step = nullptr;
};
BoundSocket tryOpenBoundSocket(SocketKind kind, const wire::SocketAddress& address,
                               const SocketOptions& options) noexcept;

// Throws if another process already serves `address`. SO_REUSEPORT would otherwise let a
// second tern of the same user bind it too and silently split the clients between them; a
// bind without SO_REUSEPORT fails while any socket holds the address.
void ensureAddressFree(SocketKind kind, const wire::SocketAddress& address);

// The address a socket is bound to (reads back the port chosen for port 0).
wire::SocketAddress localAddress(int fd);

// Every allocation holds a socket, so the open-files limit caps allocations. The soft limit
// now; raiseOpenFilesLimit() lifts it to the hard limit (what an unprivileged process may)
// and returns the result.
std::uint64_t openFilesLimit() noexcept;
std::uint64_t raiseOpenFilesLimit() noexcept;

socklen_t toSockaddr(const wire::SocketAddress& address, sockaddr_storage& out) noexcept;
wire::SocketAddress fromSockaddr(const sockaddr* address) noexcept;

}  // namespace tern::io
