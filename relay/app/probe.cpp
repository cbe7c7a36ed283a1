// A blocking STUN client for one Binding transaction, on relay/client's sans-I/O transaction.
#include "relay/app/probe.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "relay/app/blocking_exchange.hpp"
#include "relay/client/binding.hpp"
#include "relay/io/socket_util.hpp"

namespace tern::app {

namespace {

int fail(const std::string& message) {
  std::cerr << "tern probe: " << message << "\n";
  return 1;
}

}  // namespace

int runProbe(const ProbeOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  sockaddr_storage ss{};
  const socklen_t len = io::toSockaddr(options.server, ss);
  io::FileDescriptor fd{::socket(ss.ss_family, options.tcp ? SOCK_STREAM : SOCK_DGRAM, 0)};
  if (!fd) return fail(std::string("socket: ") + std::strerror(errno));
  // A connected socket receives only from the server, and reports ICMP errors.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return fail("connect " + options.server.toString() + ": " + std::strerror(errno));
  }
  auto exchange = exchangeBlocking(fd.get(), options.tcp,
                                   client::makeBindingRequest(options.fingerprint), options.timeout);
  if (!exchange.ok()) {
    if (exchange.unreachable) {
      return fail("no STUN server at " + options.server.toString() + " (port unreachable)");
    }
    return fail("no answer from " + options.server.toString() + ": " + exchange.error);
  }
  const auto rtt =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  auto response = wire::MessageView::parse(exchange.response);
  auto result = client::interpretBindingResponse(*response);
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

}  // namespace tern::app
