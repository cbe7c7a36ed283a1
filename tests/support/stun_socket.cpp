// See stun_socket.hpp.
#include "support/stun_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "relay/app/blocking_exchange.hpp"

namespace tern::test {

using Clock = std::chrono::steady_clock;

io::FileDescriptor connectedSocket(bool tcp, const wire::SocketAddress& local,
                                   const wire::SocketAddress& server) {
  sockaddr_storage ss{};
  socklen_t len = io::toSockaddr(local, ss);
  io::FileDescriptor fd{::socket(ss.ss_family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0)};
  if (!fd) throw std::runtime_error("socket failed");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
  }
  len = io::toSockaddr(server, ss);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  return fd;
}

void sendRaw(int fd, const std::vector<std::uint8_t>& bytes) {
  if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    throw std::runtime_error(std::string("send: ") + std::strerror(errno));
  }
}

std::optional<std::vector<std::uint8_t>> exchange(int fd, bool tcp, std::vector<std::uint8_t> request,
                                                  std::chrono::milliseconds timeout) {
  auto result = app::exchangeBlocking(fd, tcp, std::move(request), timeout);
  if (!result.ok()) return std::nullopt;
  return std::move(result.response);
}

std::vector<std::uint8_t> readBytes(int fd, std::size_t n, std::chrono::milliseconds timeout) {
  const auto give_up = Clock::now() + timeout;
  std::vector<std::uint8_t> out;
  while (out.size() < n && Clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    std::uint8_t buf[4096];
    const ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.insert(out.end(), buf, buf + got);
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> readStreamMessage(int fd, std::chrono::milliseconds timeout) {
  auto message = readBytes(fd, 20, timeout);
  if (message.size() < 20) return std::nullopt;
  const std::size_t length = (std::size_t{message[2]} << 8) | message[3];
  const auto body = readBytes(fd, length, timeout);
  if (body.size() < length) return std::nullopt;
  message.insert(message.end(), body.begin(), body.end());
  return message;
}

io::FileDescriptor listeningSocket(const wire::SocketAddress& local) {
  sockaddr_storage ss{};
  const socklen_t len = io::toSockaddr(local, ss);
  io::FileDescriptor fd{::socket(ss.ss_family, SOCK_STREAM, 0)};
  if (!fd) throw std::runtime_error("socket failed");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd.get(), 16) != 0) {
    throw std::runtime_error(std::string("bind/listen: ") + std::strerror(errno));
  }
  return fd;
}

io::FileDescriptor boundUdpSocket(const wire::SocketAddress& local) {
  sockaddr_storage ss{};
  const socklen_t len = io::toSockaddr(local, ss);
  io::FileDescriptor fd{::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (!fd) throw std::runtime_error("socket failed");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
  }
  return fd;
}

io::FileDescriptor acceptWithin(int listener, std::chrono::milliseconds timeout) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return io::FileDescriptor{};
  return io::FileDescriptor{::accept(listener, nullptr, nullptr)};
}

std::vector<std::uint8_t> receiveDatagram(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  std::vector<std::uint8_t> buf(65536);
  const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return buf;
}

bool closedByPeer(int fd, std::chrono::milliseconds timeout) {
  const auto give_up = Clock::now() + timeout;
  std::uint8_t buf[512];
  while (Clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
  }
  return false;
}

}  // namespace tern::test
