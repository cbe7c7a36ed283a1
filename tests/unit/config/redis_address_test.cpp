// Issue 22: --redis and --redis-password-file. A URL names host, port and database and
// never a password (a URL lands in argv and logs); the password comes from its file and is
// never printed.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "relay/config/config.hpp"
#include "relay/config/redis_address.hpp"

using namespace tern::config;

TEST_CASE("redis URLs: host, port and database, IPv6 in brackets, defaults 6379 and 0") {
  auto a = RedisAddress::parse("redis://10.0.0.5:6380/2");
  REQUIRE(a.has_value());
  CHECK(a->host == "10.0.0.5");
  CHECK(a->port == 6380);
  CHECK(a->database == 2);
  a = RedisAddress::parse("redis://redis.internal");
  REQUIRE(a.has_value());
  CHECK(a->host == "redis.internal");
  CHECK(a->port == 6379);
  CHECK(a->database == 0);
  a = RedisAddress::parse("redis://[2001:db8::5]:7000");
  REQUIRE(a.has_value());
  CHECK(a->host == "2001:db8::5");
  CHECK(a->port == 7000);
  CHECK(a->toString() == "redis://[2001:db8::5]:7000/0");
}

TEST_CASE("redis URLs with a password, another scheme, a bad port or database are refused") {
  for (const char* bad : {"redis://:secret@10.0.0.5", "redis://user:pw@host:6379", "rediss://host", "http://host",
                          "redis://host:0", "redis://host:70000", "redis://host:x", "redis://host/-1", "redis://host/a",
                          "redis://", "redis://[::1", "redis://[::1]x"}) {
    CHECK_MESSAGE(!RedisAddress::parse(bad).has_value(), bad);
  }
}

TEST_CASE("--redis-password-file fills the password, never the printed URL, and wants --redis") {
  const std::string path = "/tmp/tern-redis-password-test";
  {
    std::ofstream(path) << "s3cret-redis-password\n";
  }
  Config c;
  c.redis = "redis://127.0.0.1:6390/1";
  c.redis_password_file = path;
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  REQUIRE(s->redis.has_value());
  CHECK(s->redis->password == "s3cret-redis-password");
  CHECK(s->redis->toString().find("s3cret") == std::string::npos);

  Config orphan;
  orphan.redis_password_file = path;
  CHECK_FALSE(validate(orphan, 1).has_value());
  Config bad;
  bad.redis = "redis://:pw@127.0.0.1";
  CHECK_FALSE(validate(bad, 1).has_value());
  std::remove(path.c_str());
}
