// See stun_socket.hpp.
#include "support/stun_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "relay/io/blocking_exchange.hpp"

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
  auto result = io::exchangeBlocking(fd, tcp, std::move(request), timeout);
  if (!result.ok()) return std::nullopt;
  return std::move(result.response);
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
