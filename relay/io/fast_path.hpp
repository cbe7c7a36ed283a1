// The kernel fast path's program, maps and attachments (issue 21, docs/fast-path.md): loaded
// once per process from the skeleton built with it (relay/io/bpf/channel_data.bpf.c), shared
// by the workers, which fill the maps (FastPathCache). RAII: the TCX links and the program go
// when this goes, and the kernel detaches them by itself if the process dies, so a crashed or
// killed tern leaves nothing relaying.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "relay/io/fast_path_maps.h"
#include "relay/wire/address.hpp"

struct tern_fast_path_bpf;

namespace tern::io {

class FastPath {
 public:
  // Loads the program with maps for `capacity` allocations and attaches it to the ingress of
  // each of `interfaces` (by name). Throws std::runtime_error saying what failed and what an
  // operator can do (no CAP_BPF/CAP_NET_ADMIN, kernel without TCX, unknown interface).
  FastPath(const std::vector<std::string>& interfaces, std::uint32_t capacity);
  ~FastPath();
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;

  int channelsFd() const noexcept;
  int peersFd() const noexcept;
  int usageFd() const noexcept;
  // Allocations the usage map has room for; the workers share its slots.
  std::uint32_t capacity() const noexcept { return capacity_; }
  // CPUs the per-CPU maps hold a value for.
  unsigned cpus() const noexcept { return cpus_; }
  const std::vector<std::string>& interfaces() const noexcept { return interfaces_; }

  // The program's own totals over every CPU (misses and fallbacks); zeros if unreadable.
  tern_fp_stats stats() const noexcept;

 private:
  struct Link;
  tern_fast_path_bpf* skeleton_ = nullptr;
  std::vector<Link> links_;
  std::vector<std::string> interfaces_;
  std::uint32_t capacity_ = 0;
  unsigned cpus_ = 1;
};

// The interfaces the fast path attaches to when none are named: those holding one of
// `addresses` (every up, non-loopback interface if one of them is a wildcard). Names only.
std::vector<std::string> fastPathInterfacesFor(const std::vector<wire::IpAddress>& addresses);

}  // namespace tern::io
