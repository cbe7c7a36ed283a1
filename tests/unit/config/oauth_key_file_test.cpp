// OAuth key files (RFC 7635 AS-RS keys): the line format, every problem at once without ever
// showing a key, duplicates across files, and --oauth-key-file / --oauth-server-name in
// `tern serve`'s validation and printed configuration.
#include "relay/config/oauth_key_file.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "auth/base64.hpp"
#include "relay/config/cli_options.hpp"
#include "relay/config/config.hpp"

using namespace tern::config;
namespace auth = tern::auth;

namespace {

// base64 of 32 bytes 0x00..0x1f and of 16 bytes 0x00..0x0f.
const std::string kKey32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const std::string kKey16 = "AAECAwQFBgcICQoLDA0ODw==";

// A file in the working directory, removed when the test ends.
class TempFile {
 public:
  TempFile(std::string name, const std::string& text) : path_(std::move(name)) {
    std::ofstream(path_, std::ios::binary) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool anyLineHas(const std::vector<std::string>& lines, std::string_view text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE(
    "OAuth key files hold KID BASE64-KEY and an optional AEAD per line, skipping comments, blanks "
    "and CRLF") {
  TempFile f("tern_oauth_keys_ok.txt",
             "# current key first\r\n"
             "north " +
                 kKey32 +
                 "\r\n"
                 "\n"
                 "   \t\n"
                 "  south\t" +
                 kKey16 +
                 "  A128GCM  \n"
                 "east " +
                 kKey32 + " A256GCM");
  auto keys = readOAuthKeyFiles({f.path()});
  REQUIRE(keys.has_value());
  REQUIRE(keys->size() == 3);
  CHECK((*keys)[0].kid == "north");
  CHECK((*keys)[0].aead == auth::OAuthAead::kA256Gcm);
  CHECK((*keys)[0].key.size() == 32);
  CHECK((*keys)[0].key[31] == 0x1f);
  CHECK((*keys)[1].kid == "south");
  CHECK((*keys)[1].aead == auth::OAuthAead::kA128Gcm);
  CHECK((*keys)[2].kid == "east");
  auto store = loadOAuthKeyStore({f.path()});
  REQUIRE(store.has_value());
  CHECK(store->size() == 3);
  CHECK(store->find("south") != nullptr);
}

TEST_CASE("every problem of every OAuth key file is named with its line, never with a key") {
  TempFile a("tern_oauth_keys_a.txt", "north " + kKey32 +
                                          "\n"
                                          "just-a-kid\n"
                                          "bad-base64 AAEC!wQF\n"
                                          "short " +
                                          kKey16 +
                                          "\n"
                                          "wrong-aead " +
                                          kKey32 +
                                          " A192GCM\n"
                                          "too many " +
                                          kKey32 +
                                          " A256GCM\n"
                                          "north " +
                                          kKey32 + "\n" + std::string(513, 'k') + " " + kKey32 +
                                          "\n");
  TempFile b("tern_oauth_keys_b.txt", "north " + kKey32 + "\n");
  TempFile empty("tern_oauth_keys_empty.txt", "# nothing yet\n\n");
  auto keys = readOAuthKeyFiles({a.path(), b.path(), empty.path(), "/nonexistent/oauth.keys"});
  REQUIRE_FALSE(keys.has_value());
  const auto& p = keys.error();
  CHECK(p.size() == 10);
  CHECK(anyLineHas(p, "tern_oauth_keys_a.txt:2: expected KID BASE64-KEY [A256GCM|A128GCM]"));
  CHECK(anyLineHas(p, "tern_oauth_keys_a.txt:3: the key of 'bad-base64' is not base64"));
  CHECK(anyLineHas(p, "tern_oauth_keys_a.txt:4: the key of 'short' is 16 bytes; A256GCM needs 32"));
  CHECK(anyLineHas(p, "tern_oauth_keys_a.txt:5: 'A192GCM' is not A256GCM or A128GCM"));
  CHECK(anyLineHas(p, "tern_oauth_keys_a.txt:6: expected KID"));
  CHECK(anyLineHas(
      p, "tern_oauth_keys_a.txt:7: kid 'north' is already given at tern_oauth_keys_a.txt:1"));
  CHECK(anyLineHas(p, "tern_oauth_keys_a.txt:8: the kid is longer than 512 bytes"));
  CHECK(anyLineHas(
      p, "tern_oauth_keys_b.txt:1: kid 'north' is already given at tern_oauth_keys_a.txt:1"));
  CHECK(anyLineHas(p, "'tern_oauth_keys_empty.txt' holds no key"));
  CHECK(anyLineHas(p, "cannot read '/nonexistent/oauth.keys'"));
  CHECK_FALSE(anyLineHas(p, kKey32));
  CHECK_FALSE(anyLineHas(p, kKey16));
  CHECK_FALSE(anyLineHas(p, "AAEC!wQF"));
}

TEST_CASE("serve: --oauth-key-file loads the store, and the server name defaults to the realm") {
  TempFile f("tern_oauth_keys_serve.txt", "north " + kKey32 + "\n");
  Config c;
  c.realm = "example.org";
  c.oauth_key_files = {f.path()};
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  CHECK(s->hasOAuth());
  CHECK(s->oauth_keys->find("north") != nullptr);
  CHECK(s->oauth_server_name == "example.org");
  c.oauth_server_name = "turn.example.org";
  CHECK(validate(c, 1)->oauth_server_name == "turn.example.org");

  auto none = validate(Config{}, 1);
  REQUIRE(none.has_value());
  CHECK_FALSE(none->hasOAuth());
  REQUIRE(none->oauth_keys != nullptr);
  CHECK(none->oauth_keys->empty());
}

TEST_CASE("serve: OAuth problems are reported with every other problem") {
  TempFile f("tern_oauth_keys_bad.txt", "north " + kKey16 + "\n");
  Config c;
  c.oauth_key_files = {f.path(), "/nonexistent/oauth.keys"};
  c.oauth_server_name = std::string(800, 'n');
  c.workers = "many";
  auto s = validate(c, 1);
  REQUIRE_FALSE(s.has_value());
  const auto& p = s.error();
  CHECK(p.size() == 4);
  CHECK(anyLineHas(p, "oauth-key-file: tern_oauth_keys_bad.txt:1: the key of 'north' is 16 bytes"));
  CHECK(anyLineHas(p, "oauth-key-file: cannot read '/nonexistent/oauth.keys'"));
  CHECK(anyLineHas(p, "oauth-server-name: must be at most 763 bytes"));
  CHECK(anyLineHas(p, "workers:"));

  Config name_only;
  name_only.oauth_server_name = "turn.example.org";
  auto n = validate(name_only, 1);
  REQUIRE_FALSE(n.has_value());
  CHECK(n.error().front() == "oauth-server-name: needs --oauth-key-file");
}

TEST_CASE("serve: --print-config shows the OAuth key file's path, never its keys") {
  TempFile f("tern_oauth_keys_print.txt", "north " + kKey32 + "\n");
  Config config;
  CLI::App app{"test", "tern serve"};
  addServeOptions(app, config);
  const char* argv[] = {"tern serve", "--oauth-key-file", f.path().c_str(), "--oauth-server-name",
                        "turn.example.org"};
  app.parse(5, const_cast<char**>(argv));
  CHECK(config.oauth_key_files == std::vector<std::string>{f.path()});
  const std::string printed = app.config_to_str(true, true);
  CHECK(printed.find("tern_oauth_keys_print.txt") != std::string::npos);
  CHECK(printed.find("turn.example.org") != std::string::npos);
  CHECK(printed.find(kKey32) == std::string::npos);
}
