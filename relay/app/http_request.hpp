// One HTTP/1.1 request over a blocking TCP socket, for `tern drain` and tests (the relay's
// own HTTP port, a Prometheus server's API). Enough HTTP for those: no TLS, no chunked
// request bodies; the answer is read until the server closes (Connection: close).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "relay/wire/address.hpp"

namespace tern::app {

struct HttpResponse {
  int status = 0;       // 0 when `error` says why there is no answer
  std::string body;     // de-chunked
  std::string head;     // the status line and headers, lower-cased
  std::string error;
  bool refused = false;  // nothing listens there (ECONNREFUSED): the server is gone
  bool ok() const noexcept { return error.empty(); }
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// `target` is the path and query, e.g. "/api/v1/query?query=up". `method` GET, HEAD or POST.
// `headers` are sent as given (e.g. Authorization); they must hold no CR or LF.
HttpResponse httpRequest(const wire::SocketAddress& server, std::string_view method,
                         std::string_view target, std::chrono::milliseconds timeout,
                         const HttpHeaders& headers = {});

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string urlEncode(std::string_view text);

}  // namespace tern::app
