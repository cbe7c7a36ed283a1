// See blocking_exchange.hpp.
#include "relay/app/blocking_exchange.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "relay/client/transaction.hpp"
#include "relay/wire/stream_framer.hpp"

namespace tern::app {

namespace {

using client::Clock;

ExchangeResult failure(std::string why, unsigned sends, bool unreachable = false) {
  return {{}, std::move(why), sends, unreachable};
}

ExchangeResult success(wire::Bytes response, unsigned sends) {
  return {{response.begin(), response.end()}, {}, sends};
}

}  // namespace

ExchangeResult exchangeBlocking(int fd, bool tcp, std::vector<std::uint8_t> request,
                                std::chrono::milliseconds timeout) {
  client::ClientTransaction tx(std::move(request), tcp);
  const auto give_up = Clock::now() + timeout;
  wire::StreamFramer framer;
  std::uint8_t datagram[2048];
  while (Clock::now() < give_up) {
    switch (tx.poll(Clock::now())) {
      case client::ClientTransaction::Action::kTimedOut:
        return failure("no response after " + std::to_string(tx.sends()) + " request(s)", tx.sends());
      case client::ClientTransaction::Action::kSend:
        if (::send(fd, tx.request().data(), tx.request().size(), MSG_NOSIGNAL) < 0) {
          return failure(std::string("send: ") + std::strerror(errno), tx.sends());
        }
        break;
      case client::ClientTransaction::Action::kWait: break;
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(tx.deadline(), give_up) - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, wait.count()))) <= 0) continue;
    if (!tcp) {
      const ssize_t n = ::recv(fd, datagram, sizeof datagram, 0);
      // A connected UDP socket learns of ICMP port unreachable as ECONNREFUSED.
      if (n < 0 && errno == ECONNREFUSED) return failure("port unreachable", tx.sends(), true);
      if (n < 0) return failure(std::string("receive: ") + std::strerror(errno), tx.sends());
      const wire::Bytes got{datagram, static_cast<std::size_t>(n)};
      if (tx.matchResponse(got)) return success(got, tx.sends());
      continue;
    }
    auto space = framer.writable();
    const ssize_t n = ::recv(fd, space.data(), space.size(), 0);
    if (n == 0) return failure("the server closed the connection", tx.sends());
    if (n < 0) return failure(std::string("receive: ") + std::strerror(errno), tx.sends());
    framer.commit(static_cast<std::size_t>(n));
    while (auto frame = framer.next()) {
      if (tx.matchResponse(frame->bytes)) return success(frame->bytes, tx.sends());
    }
    if (framer.invalid()) return failure("the server sent bytes that are not STUN framing", tx.sends());
  }
  return failure("no response within " + std::to_string(timeout.count()) + " ms", tx.sends());
}

}  // namespace tern::app
