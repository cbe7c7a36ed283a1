// Where the fleet state's Redis is (issue 22, --redis): parsed here, with the rest of the
// configuration; relay/io/redis_connection.hpp connects to it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::config {

struct RedisAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  int database = 0;
  std::string password;  // AUTH when not empty; from --redis-password-file, never printed

  // "redis://HOST[:PORT][/DB]" (an IPv6 host in brackets); nothing if it is not one. A
  // password in the URL is refused: a URL lands in argv and logs.
  static std::optional<RedisAddress> parse(std::string_view url);
  std::string toString() const;  // without the password
  bool operator==(const RedisAddress&) const = default;
};

}  // namespace tern::config
