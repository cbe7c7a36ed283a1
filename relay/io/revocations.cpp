#include "relay/io/revocations.hpp"

#include <chrono>

#include "relay/core/server_options.hpp"

namespace tern::io {

RevocationList::RevocationList(std::function<std::int64_t()> unix_now) : unix_now_(std::move(unix_now)) {}

std::int64_t RevocationList::systemUnixSeconds() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t RevocationList::revoke(const std::string& user, std::int64_t until_unix) {
  std::lock_guard lock(mutex_);
  prune(unix_now_());
  auto [it, added] = until_.try_emplace(user, until_unix);
  if (!added && it->second < until_unix) it->second = until_unix;
  return it->second;
}

bool RevocationList::lift(const std::string& user) {
  std::lock_guard lock(mutex_);
  prune(unix_now_());
  return until_.erase(user) > 0;
}

std::vector<RevocationList::Entry> RevocationList::list() const {
  const std::int64_t now = unix_now_();
  std::lock_guard lock(mutex_);
  std::vector<Entry> live;
  for (const auto& [user, until] : until_) {
    if (until > now) live.push_back({user, until});
  }
  return live;
}

bool RevocationList::revoked(std::string_view username) const noexcept {
  std::lock_guard lock(mutex_);
  if (until_.empty()) return false;
  const std::int64_t now = unix_now_();
  // The name itself, then a TURN REST username's user part: either may have been revoked.
  for (std::string_view key : {username, core::quotaKey(username)}) {
    const auto it = until_.find(key);
    if (it != until_.end() && it->second > now) return true;
  }
  return false;
}

void RevocationList::prune(std::int64_t now) {
  std::erase_if(until_, [now](const auto& entry) { return entry.second <= now; });
}

}  // namespace tern::io
