// Blocking STUN exchanges over real loopback sockets for integration tests, using
// relay/client's transaction for timing and matching.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "relay/io/socket_util.hpp"
#include "relay/wire/address.hpp"

namespace tern::test {

// The address `ip`:`port`; `ip` must be a valid literal (a test's own constant).
inline wire::SocketAddress socketAddress(const std::string& ip, std::uint16_t port) {
  return {*wire::IpAddress::parse(ip), port};
}

// A socket bound to `local` (port 0 for any) and connected to `server`.
io::FileDescriptor connectedSocket(bool tcp, const wire::SocketAddress& local,
                                   const wire::SocketAddress& server);

// Sends `request` (retransmitting over UDP per RFC 8489 §6.2.1) and returns the response
// with the same transaction id, or nothing within `timeout`.
std::optional<std::vector<std::uint8_t>> exchange(int fd, bool tcp, std::vector<std::uint8_t> request,
                                                  std::chrono::milliseconds timeout =
                                                      std::chrono::milliseconds(3000));

// Reads up to `n` bytes from a stream socket, stopping early at `timeout` or end of stream.
std::vector<std::uint8_t> readBytes(int fd, std::size_t n, std::chrono::milliseconds timeout);
// The next whole STUN message on a TCP stream (e.g. an indication), or nothing by `timeout`.
std::optional<std::vector<std::uint8_t>> readStreamMessage(int fd, std::chrono::milliseconds timeout);

// A TCP socket listening on `local` (port 0 for any), and the next connection it accepts.
io::FileDescriptor listeningSocket(const wire::SocketAddress& local);
// A UDP socket bound to `local` and connected to nothing: it receives from anyone.
io::FileDescriptor boundUdpSocket(const wire::SocketAddress& local);
io::FileDescriptor acceptWithin(int listener, std::chrono::milliseconds timeout);

// The next datagram on a UDP socket (up to 64 KiB), or empty if none arrives by `timeout`.
std::vector<std::uint8_t> receiveDatagram(int fd, std::chrono::milliseconds timeout);

// Writes raw bytes on a connected socket.
void sendRaw(int fd, const std::vector<std::uint8_t>& bytes);
// True if the peer closed the TCP connection within `timeout`.
bool closedByPeer(int fd, std::chrono::milliseconds timeout);

}  // namespace tern::test
