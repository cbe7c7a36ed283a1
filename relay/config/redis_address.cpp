// See redis_address.hpp.
#include "relay/config/redis_address.hpp"

#include <charconv>

namespace tern::config {

std::optional<RedisAddress> RedisAddress::parse(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  url.remove_prefix(kScheme.size());
  RedisAddress a;
  if (const auto slash = url.find('/'); slash != std::string_view::npos) {
    const auto db = url.substr(slash + 1);
    const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), a.database);
    if (ec != std::errc() || end != db.data() + db.size() || a.database < 0) return std::nullopt;
    url = url.substr(0, slash);
  }
  if (url.find('@') != std::string_view::npos) return std::nullopt;  // no password in a URL
  // "[v6]:port", "host:port", "host".
  std::string_view host = url, port;
  if (url.starts_with('[')) {
    const auto close = url.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = url.substr(1, close - 1);
    if (close + 1 < url.size()) {
      if (url[close + 1] != ':') return std::nullopt;
      port = url.substr(close + 2);
    }
  } else if (const auto colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  a.host = std::string(host);
  if (!port.empty()) {
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (ec != std::errc() || end != port.data() + port.size() || a.port == 0) return std::nullopt;
  }
  return a;
}

std::string RedisAddress::toString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return "redis://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" + std::to_string(database);
}

}  // namespace tern::config
