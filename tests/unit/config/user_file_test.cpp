// --user-file (issue 18): static users from a file, so passwords stay out of argv; every
// mistake is reported with its file and line, never with the line's text.
#include "relay/config/user_file.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "relay/config/config.hpp"

using namespace tern::config;

namespace {

// A file under the test's working directory that is removed when the object goes.
struct TempFile {
  explicit TempFile(const std::string& text, std::string name = "tern_user_file_test.txt")
      : path(std::move(name)) {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

}  // namespace

TEST_CASE(
    "a user file holds NAME:PASSWORD lines: comments, blank lines, CRLF and outer blanks are "
    "skipped") {
  const TempFile file(
      "# operators\r\nalice:first-secret\r\n\n   \n  bob:pa ss:with:colons  \n\t# carol:retired\n");
  std::vector<std::string> problems;
  const auto users = readUserFile(file.path, problems);
  CHECK(problems.empty());
  REQUIRE(users.size() == 2);
  CHECK(users[0].name == "alice");
  CHECK(users[0].password == "first-secret");
  CHECK(users[1].name == "bob");
  CHECK(users[1].password == "pa ss:with:colons");
}

TEST_CASE("every malformed line is reported with its number, never with its text") {
  const TempFile file("alice:ok\nno-colon-secret\n:nameless-secret\ndave:\nerin:fine\n");
  std::vector<std::string> problems;
  const auto users = readUserFile(file.path, problems);
  CHECK(users.size() == 2);
  REQUIRE(problems.size() == 3);
  CHECK(problems[0] == "user-file: '" + file.path + "' line 2: not NAME:PASSWORD");
  CHECK(problems[1] == "user-file: '" + file.path + "' line 3: not NAME:PASSWORD");
  CHECK(problems[2] == "user-file: '" + file.path + "' line 4: not NAME:PASSWORD");
  for (const auto& p : problems) CHECK(p.find("secret") == std::string::npos);
}

TEST_CASE(
    "validate() adds the file's users to --user's and reports a missing file with the other "
    "problems") {
  const TempFile file("alice:from-file\n");
  Config c;
  c.users = {"bob:from-argv"};
  c.user_files = {file.path};
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  REQUIRE(s->users.size() == 2);
  CHECK(s->users[0].name == "bob");
  CHECK(s->users[1].name == "alice");
  CHECK(s->users[1].password == "from-file");
  CHECK(s->hasCredentials());

  c.user_files = {"/nonexistent/users"};
  c.realm = "";
  auto bad = validate(c, 1);
  REQUIRE_FALSE(bad.has_value());
  const auto& p = bad.error();
  CHECK(std::find(p.begin(), p.end(), "user-file: cannot read '/nonexistent/users'") != p.end());
  CHECK(p.size() == 2);  // and the realm
}

TEST_CASE("redactedUser keeps the name and hides the password") {
  CHECK(redactedUser("alice:secret") == "alice:<redacted>");
  CHECK(redactedUser("bob:a:b") == "bob:<redacted>");
  CHECK(redactedUser("no-colon") == "<redacted>");
  CHECK(redactedUser("").empty());  // the empty entry --print-config writes for "no users"
}
