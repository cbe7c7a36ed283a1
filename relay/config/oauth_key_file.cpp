// OAuth key files; see oauth_key_file.hpp.
#include "relay/config/oauth_key_file.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string_view>

#include "auth/base64.hpp"

namespace tern::config {

namespace {

constexpr std::string_view kBlanks = " \t";
constexpr const char* kLineFormat = "expected KID BASE64-KEY [A256GCM|A128GCM]";

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  for (std::size_t start = line.find_first_not_of(kBlanks); start != std::string_view::npos;) {
    const std::size_t end = std::min(line.find_first_of(kBlanks, start), line.size());
    out.push_back(line.substr(start, end - start));
    start = line.find_first_not_of(kBlanks, end);
  }
  return out;
}

// Where each kid was first seen, to name both places of a duplicate.
using Seen = std::map<std::string, std::string, std::less<>>;

// One line's key, or nothing with its problems recorded. `where` is "FILE:LINE".
void parseLine(std::string_view line, const std::string& where, std::vector<auth::OAuthKey>& keys,
               Seen& seen, std::vector<std::string>& problems) {
  const auto parts = fields(line);
  // The line itself is never quoted back: it holds a key.
  if (parts.size() < 2 || parts.size() > 3) {
    problems.push_back(where + ": " + kLineFormat);
    return;
  }
  const std::string kid(parts[0]);
  const std::size_t problems_before = problems.size();
  if (kid.size() > auth::kMaxKidSize) {
    problems.push_back(where + ": the kid is longer than " + std::to_string(auth::kMaxKidSize) +
                       " bytes (it travels as USERNAME)");
  }
  auth::OAuthAead aead = auth::OAuthAead::kA256Gcm;
  if (parts.size() == 3) {
    if (auto parsed = auth::parseOAuthAead(parts[2])) {
      aead = *parsed;
    } else {
      problems.push_back(where + ": '" + std::string(parts[2]) + "' is not A256GCM or A128GCM");
    }
  }
  auto key = auth::base64Decode(parts[1]);
  if (!key) {
    problems.push_back(where + ": the key of '" + kid + "' is not base64 (RFC 4648, with padding)");
  } else if (key->size() != auth::oauthKeySize(aead)) {
    problems.push_back(where + ": the key of '" + kid + "' is " + std::to_string(key->size()) +
                       " bytes; " + std::string(auth::oauthAeadName(aead)) + " needs " +
                       std::to_string(auth::oauthKeySize(aead)));
  }
  if (auto [it, fresh] = seen.emplace(kid, where); !fresh) {
    problems.push_back(where + ": kid '" + kid + "' is already given at " + it->second);
  }
  if (problems.size() == problems_before) keys.push_back({kid, std::move(*key), aead});
}

void readFile(const std::string& path, std::vector<auth::OAuthKey>& keys, Seen& seen,
              std::vector<std::string>& problems) {
  std::ifstream in(path);
  if (!in) {
    problems.push_back("cannot read '" + path + "'");
    return;
  }
  std::size_t number = 0;
  std::size_t lines_with_keys = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto start = line.find_first_not_of(kBlanks);
    if (start == std::string::npos || line[start] == '#') continue;
    ++lines_with_keys;
    parseLine(line, path + ":" + std::to_string(number), keys, seen, problems);
  }
  if (lines_with_keys == 0) problems.push_back("'" + path + "' holds no key");
}

}  // namespace

Expected<std::vector<auth::OAuthKey>, std::vector<std::string>> readOAuthKeyFiles(
    const std::vector<std::string>& paths) {
  std::vector<auth::OAuthKey> keys;
  std::vector<std::string> problems;
  Seen seen;
  for (const auto& path : paths) readFile(path, keys, seen, problems);
  if (!problems.empty()) return Unexpected{std::move(problems)};
  return keys;
}

Expected<auth::OAuthKeyStore, std::vector<std::string>> loadOAuthKeyStore(
    const std::vector<std::string>& paths) {
  auto keys = readOAuthKeyFiles(paths);
  if (!keys) return Unexpected{keys.error()};
  try {
    return auth::OAuthKeyStore(std::move(*keys));
  } catch (const std::invalid_argument& e) {
    // Not reached: every rule of the store was checked line by line above.
    return Unexpected{std::vector<std::string>{e.what()}};
  }
}

}  // namespace tern::config
