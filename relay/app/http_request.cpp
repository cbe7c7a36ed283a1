// See http_request.hpp.
#include "relay/app/http_request.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cctype>
#include <cstring>

#include "relay/io/socket_util.hpp"

namespace tern::app {

namespace {

// Transfer-Encoding: chunked -> the plain body; empty optional text on a malformed body.
bool dechunk(std::string_view in, std::string& out) {
  while (true) {
    const auto eol = in.find("\r\n");
    if (eol == std::string_view::npos) return false;
    std::size_t size = 0;
    if (std::sscanf(std::string(in.substr(0, eol)).c_str(), "%zx", &size) != 1) return false;
    in.remove_prefix(eol + 2);
    if (size == 0) return true;
    if (in.size() < size) return false;
    out.append(in.substr(0, size));
    in.remove_prefix(std::min(in.size(), size + 2));
  }
}

HttpResponse failure(std::string why) {
  HttpResponse r;
  r.error = std::move(why);
  return r;
}

}  // namespace

HttpResponse httpRequest(const wire::SocketAddress& server, std::string_view method,
                         std::string_view target, std::chrono::milliseconds timeout,
                         const HttpHeaders& headers) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  // Non-blocking, so the timeout bounds the connect too (a full backlog, a lost SYN).
  io::FileDescriptor fd(::socket(server.ip.isV4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return failure(std::string("socket: ") + std::strerror(errno));
  sockaddr_storage address{};
  const socklen_t length = io::toSockaddr(server, address);
  int connect_error = 0;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    connect_error = errno;
    if (connect_error == EINPROGRESS) {
      pollfd p{fd.get(), POLLOUT, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count()))) <= 0) {
        return failure("connect to " + server.toString() + ": timed out");
      }
      socklen_t size = sizeof connect_error;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &connect_error, &size);
    }
  }
  if (connect_error != 0) {
    HttpResponse r = failure("connect to " + server.toString() + ": " + std::strerror(connect_error));
    r.refused = connect_error == ECONNREFUSED;
    return r;
  }
  std::string request(method);
  request += ' ';
  request += target;
  request += " HTTP/1.1\r\nHost: ";
  request += server.toString();
  request += "\r\nConnection: close\r\nContent-Length: 0\r\n";
  for (const auto& [name, value] : headers) {
    request += name;
    request += ": ";
    request += value;
    request += "\r\n";
  }
  request += "\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    return failure(std::string("send: ") + std::strerror(errno));
  }
  std::string raw;
  char buffer[16384];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
    if (left.count() <= 0) return failure("no complete answer within " + std::to_string(timeout.count()) + " ms");
    pollfd p{fd.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) return failure(std::string("poll: ") + std::strerror(errno));
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return failure(std::string("receive: ") + std::strerror(errno));
    if (n == 0) break;
    raw.append(buffer, static_cast<std::size_t>(n));
  }
  HttpResponse r;
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || std::sscanf(raw.c_str(), "HTTP/1.%*d %d", &r.status) != 1) {
    return failure("not an HTTP response");
  }
  std::string head = raw.substr(0, head_end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string_view body = std::string_view(raw).substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    if (!dechunk(body, r.body)) return failure("malformed chunked body");
  } else {
    r.body = body;
  }
  r.head = std::move(head);
  return r;
}

std::string urlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace tern::app
