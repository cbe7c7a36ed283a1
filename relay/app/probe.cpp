// A blocking STUN client for one Binding transaction, on relay/client's sans-I/O transaction.
#include "relay/app/probe.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "relay/client/binding.hpp"
#include "relay/client/transaction.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/stream_framer.hpp"

namespace tern::app {

namespace {

using client::Clock;

int fail(const std::string& message) {
  std::cerr << "tern probe: " << message << "\n";
  return 1;
}

// Waits until fd is readable or `deadline`; false on timeout.
bool waitReadable(int fd, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count()))) > 0;
}

int report(const ProbeOptions& options, const wire::MessageView& response,
           Clock::time_point started) {
  const auto rtt = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  auto result = client::interpretBindingResponse(response);
  if (auto* failure = std::get_if<client::BindingFailure>(&result)) {
    return fail("server answered " + std::to_string(failure->code) + " " + failure->reason);
  }
  const auto& ok = std::get<client::BindingSuccess>(result);
  std::cout << "mapped address " << ok.mapped.toString() << " (" << (options.tcp ? "tcp" : "udp")
            << " to " << options.server.toString() << ", " << rtt << " ms";
  if (!ok.software.empty()) std::cout << ", server software \"" << ok.software << "\"";
  std::cout << ")\n";
  return 0;
}

}  // namespace

int runProbe(const ProbeOptions& options) {
  const auto started = Clock::now();
  const auto give_up = started + options.timeout;
  sockaddr_storage ss{};
  const socklen_t len = io::toSockaddr(options.server, ss);
  io::FileDescriptor fd{::socket(ss.ss_family, options.tcp ? SOCK_STREAM : SOCK_DGRAM, 0)};
  if (!fd) return fail(std::string("socket: ") + std::strerror(errno));
  // A connected socket receives only from the server, and reports ICMP errors.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return fail("connect " + options.server.toString() + ": " + std::strerror(errno));
  }
  client::ClientTransaction tx(client::makeBindingRequest(options.fingerprint), options.tcp);
  std::uint8_t datagram[2048];
  wire::StreamFramer framer;
  while (Clock::now() < give_up) {
    switch (tx.poll(Clock::now())) {
      case client::ClientTransaction::Action::kTimedOut:
        return fail("no response from " + options.server.toString() + " after " +
                    std::to_string(tx.sends()) + " request(s)");
      case client::ClientTransaction::Action::kSend:
        if (::send(fd.get(), tx.request().data(), tx.request().size(), 0) < 0) {
          return fail(std::string("send: ") + std::strerror(errno));
        }
        break;
      case client::ClientTransaction::Action::kWait: break;
    }
    if (!waitReadable(fd.get(), std::min(tx.deadline(), give_up))) continue;
    if (!options.tcp) {
      const ssize_t n = ::recv(fd.get(), datagram, sizeof datagram, 0);
      if (n < 0 && errno == ECONNREFUSED) {
        return fail("no STUN server at " + options.server.toString() + " (port unreachable)");
      }
      if (n < 0) return fail(std::string("receive: ") + std::strerror(errno));
      if (auto response = tx.matchResponse({datagram, static_cast<std::size_t>(n)})) {
        return report(options, *response, started);
      }
      continue;
    }
    auto space = framer.writable();
    const ssize_t n = ::recv(fd.get(), space.data(), space.size(), 0);
    if (n <= 0) return fail(n == 0 ? "server closed the connection" : std::strerror(errno));
    framer.commit(static_cast<std::size_t>(n));
    while (auto frame = framer.next()) {
      if (auto response = tx.matchResponse(frame->bytes)) return report(options, *response, started);
    }
    if (framer.invalid()) return fail("server sent bytes that are not STUN framing");
  }
  return fail("no response from " + options.server.toString() + " within " +
              std::to_string(options.timeout.count()) + " ms");
}

}  // namespace tern::app
