// Issue 22: the revocation list every worker asks on Allocate. A revocation names a user or a
// TURN REST username's user part, ends at a wall-clock second, is extended but never
// shortened by a second revoke, and can be lifted.
#include <doctest/doctest.h>

#include "relay/io/revocations.hpp"

using tern::io::RevocationList;

TEST_CASE("a revocation holds until its second, for the user and each of its TURN REST usernames") {
  std::int64_t now = 1'700'000'000;
  RevocationList list([&] { return now; });
  CHECK_FALSE(list.revoked("bob"));
  list.revoke("bob", now + 60);
  CHECK(list.revoked("bob"));
  CHECK(list.revoked("1700000600:bob"));
  CHECK_FALSE(list.revoked("bobby"));
  CHECK_FALSE(list.revoked("1700000600:alice"));
  now += 59;
  CHECK(list.revoked("bob"));
  now += 1;
  CHECK_FALSE(list.revoked("bob"));
  CHECK(list.list().empty());
}

TEST_CASE("a REST username revoked by its full name leaves the user's other credentials alone") {
  std::int64_t now = 1'700'000'000;
  RevocationList list([&] { return now; });
  list.revoke("1700000600:bob", now + 60);
  CHECK(list.revoked("1700000600:bob"));
  CHECK_FALSE(list.revoked("1700000900:bob"));
  CHECK_FALSE(list.revoked("bob"));
}

TEST_CASE("a second revoke extends a revocation and never shortens it, lift ends it") {
  std::int64_t now = 1'700'000'000;
  RevocationList list([&] { return now; });
  list.revoke("bob", now + 60);
  list.revoke("bob", now + 10);
  REQUIRE(list.list().size() == 1);
  CHECK(list.list()[0].until_unix == now + 60);
  list.revoke("bob", now + 120);
  CHECK(list.list()[0].until_unix == now + 120);
  CHECK(list.lift("bob"));
  CHECK_FALSE(list.revoked("bob"));
  CHECK_FALSE(list.lift("bob"));
}
