// Socket creation and address conversion; see socket_util.hpp.
#include "relay/io/socket_util.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tern::io {

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

std::uint64_t openFilesLimit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return limit.rlim_cur;
}

std::uint64_t raiseOpenFilesLimit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
  }
  return openFilesLimit();
}

socklen_t toSockaddr(const wire::SocketAddress& address, sockaddr_storage& out) noexcept {
  std::memset(&out, 0, sizeof out);
  if (address.ip.isV4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(address.port);
    std::memcpy(&sin->sin_addr, address.ip.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(address.port);
  std::memcpy(&sin6->sin6_addr, address.ip.data(), 16);
  return sizeof(sockaddr_in6);
}

wire::SocketAddress fromSockaddr(const sockaddr* address) noexcept {
  if (address->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(address);
    std::array<std::uint8_t, 4> b{};
    std::memcpy(b.data(), &sin->sin_addr, 4);
    return {wire::IpAddress::v4(b), ntohs(sin->sin_port)};
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(address);
  std::array<std::uint8_t, 16> b{};
  std::memcpy(b.data(), &sin6->sin6_addr, 16);
  return {wire::IpAddress::v6(b), ntohs(sin6->sin6_port)};
}

namespace {

[[noreturn]] void fail(const char* what, const wire::SocketAddress& address, int err) {
  throw SocketError(std::string(what) + " " + address.toString() + ": " + std::strerror(err), err);
}

void setInt(int fd, int level, int name, int value, const char* what,
            const wire::SocketAddress& address) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) fail(what, address, errno);
}

}  // namespace

BoundSocket tryOpenBoundSocket(SocketKind kind, const wire::SocketAddress& address,
                               const SocketOptions& options) noexcept {
  const int family = address.ip.isV4() ? AF_INET : AF_INET6;
  const int type = (kind == SocketKind::kUdp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  BoundSocket out;
  const auto failed = [&out](const char* step) {
    out.error = errno;
    out.step = step;
    out.fd = FileDescriptor{};
    return std::move(out);
  };
  out.fd = FileDescriptor{::socket(family, type, 0)};
  if (!out.fd) return failed("socket");
  const int fd = out.fd.get();
  const auto set = [fd](int level, int name, int value) {
    return ::setsockopt(fd, level, name, &value, sizeof value) == 0;
  };
  if (options.reuse_port && !set(SOL_SOCKET, SO_REUSEPORT, 1)) return failed("SO_REUSEPORT");
  if (options.dont_fragment) {
    const bool ok = family == AF_INET ? set(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
                                      : set(IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO);
    if (!ok) return failed(family == AF_INET ? "IP_MTU_DISCOVER" : "IPV6_MTU_DISCOVER");
  }
  if (kind == SocketKind::kUdp && options.receive_errors) {
    const bool ok = family == AF_INET ? set(IPPROTO_IP, IP_RECVERR, 1)
                                      : set(IPPROTO_IPV6, IPV6_RECVERR, 1);
    if (!ok) return failed(family == AF_INET ? "IP_RECVERR" : "IPV6_RECVERR");
  }
  if (kind == SocketKind::kTcp && !set(SOL_SOCKET, SO_REUSEADDR, 1)) return failed("SO_REUSEADDR");
  // One socket per family keeps 5-tuples honest: no IPv4-mapped clients on IPv6 sockets.
  if (family == AF_INET6 && !set(IPPROTO_IPV6, IPV6_V6ONLY, 1)) return failed("IPV6_V6ONLY");
  if (options.receive_buffer > 0 && !set(SOL_SOCKET, SO_RCVBUF, static_cast<int>(options.receive_buffer))) {
    return failed("SO_RCVBUF");
  }
  if (options.send_buffer > 0 && !set(SOL_SOCKET, SO_SNDBUF, static_cast<int>(options.send_buffer))) {
    return failed("SO_SNDBUF");
  }
  sockaddr_storage ss{};
  const socklen_t len = toSockaddr(address, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return failed("bind");
  if (kind == SocketKind::kTcp && options.listen && ::listen(fd, SOMAXCONN) != 0) return failed("listen");
  return out;
}

FileDescriptor openBoundSocket(SocketKind kind, const wire::SocketAddress& address,
                               const SocketOptions& options) {
  BoundSocket bound = tryOpenBoundSocket(kind, address, options);
  if (!bound.fd) fail(bound.step, address, bound.error);
  return std::move(bound.fd);
}

void ensureAddressFree(SocketKind kind, const wire::SocketAddress& address) {
  const int family = address.ip.isV4() ? AF_INET : AF_INET6;
  FileDescriptor fd{::socket(family, (kind == SocketKind::kUdp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0)};
  if (!fd) fail("socket", address, errno);
  // SO_REUSEADDR (not REUSEPORT) so a restart is not refused over old TIME_WAIT connections.
  if (kind == SocketKind::kTcp) setInt(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", address);
  if (family == AF_INET6) setInt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY", address);
  sockaddr_storage ss{};
  const socklen_t len = toSockaddr(address, ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const char* transport = kind == SocketKind::kUdp ? "udp" : "tcp";
    if (errno == EADDRINUSE) {
      throw std::runtime_error(std::string(transport) + " " + address.toString() +
                               " is already in use by another process");
    }
    fail("bind", address, errno);
  }
}

wire::SocketAddress localAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    throw std::runtime_error(std::string("getsockname: ") + std::strerror(errno));
  }
  return fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace tern::io
