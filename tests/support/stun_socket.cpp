// See stun_socket.hpp.
#include "support/stun_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "relay/client/transaction.hpp"
#include "relay/wire/stream_framer.hpp"

namespace tern::test {

using client::Clock;

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
  client::ClientTransaction tx(std::move(request), tcp);
  const auto give_up = Clock::now() + timeout;
  wire::StreamFramer framer;
  std::uint8_t datagram[2048];
  while (Clock::now() < give_up) {
    const auto action = tx.poll(Clock::now());
    if (action == client::ClientTransaction::Action::kTimedOut) return std::nullopt;
    if (action == client::ClientTransaction::Action::kSend) {
      std::vector<std::uint8_t> bytes(tx.request().begin(), tx.request().end());
      sendRaw(fd, bytes);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(tx.deadline(), give_up) - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<long>(0, wait.count()))) <= 0) continue;
    if (!tcp) {
      const ssize_t n = ::recv(fd, datagram, sizeof datagram, 0);
      if (n < 0) return std::nullopt;
      wire::Bytes got{datagram, static_cast<std::size_t>(n)};
      if (tx.matchResponse(got)) return std::vector<std::uint8_t>(got.begin(), got.end());
      continue;
    }
    auto space = framer.writable();
    const ssize_t n = ::recv(fd, space.data(), space.size(), 0);
    if (n <= 0) return std::nullopt;
    framer.commit(static_cast<std::size_t>(n));
    while (auto frame = framer.next()) {
      if (tx.matchResponse(frame->bytes)) {
        return std::vector<std::uint8_t>(frame->bytes.begin(), frame->bytes.end());
      }
    }
  }
  return std::nullopt;
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
