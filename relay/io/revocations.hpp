// Users an operator revoked (`tern admin revoke`, POST /admin/revoke), shared by every worker:
// each Allocate asks (core::Revocations), so a mutex guards the table; never on the packet
// path. Wall-clock ends, so that a revocation names the same moment on every node.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "relay/core/server_output.hpp"

namespace tern::io {

class RevocationList final : public core::Revocations {
 public:
  struct Entry {
    std::string user;
    std::int64_t until_unix = 0;  // refused while the clock reads less
  };
  // `unix_now`: the wall clock in seconds (tests give their own).
  explicit RevocationList(std::function<std::int64_t()> unix_now = systemUnixSeconds);

  // Revokes `user` (a username, or a TURN REST username's user part) until `until_unix`; a
  // later end extends one in force, an earlier one never shortens it. Returns the end in force.
  std::int64_t revoke(const std::string& user, std::int64_t until_unix);
  // Ends a revocation early; false if there was none in force.
  bool lift(const std::string& user);
  // The revocations in force, by user.
  std::vector<Entry> list() const;
  bool revoked(std::string_view username) const noexcept override;

  static std::int64_t systemUnixSeconds() noexcept;

 private:
  void prune(std::int64_t now);  // with mutex_ held
  std::function<std::int64_t()> unix_now_;
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t, std::less<>> until_;
};

}  // namespace tern::io
