// The fast path's loader: libbpf's skeleton for the program and its maps, TCX links for the
// attachments (see fast_path.hpp).
#include "relay/io/fast_path.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <stdexcept>

// bpftool's generated C: its casts and sign conversions are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#include "channel_data.skel.h"
#pragma GCC diagnostic pop
#include "relay/io/log.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/address.hpp"

namespace tern::io {
namespace {

// Attach types of kernel 6.6's TCX (BPF links on a device's TC hooks), newer than the uapi
// headers Debian 12 builds against; the running kernel's own values (its BTF says the same).
constexpr int kTcxIngress = 46;

// libbpf explains a failed load (the verifier's log among it) through this callback: kept for
// the error an operator reads, and logged at debug level.
thread_local std::string* libbpf_messages = nullptr;

int libbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  char line[1024];
  const int n = std::vsnprintf(line, sizeof line, format, args);
  if (n <= 0) return n;
  if (level != LIBBPF_DEBUG && libbpf_messages != nullptr && libbpf_messages->size() < 8192) {
    libbpf_messages->append(line);
  }
  if (log::enabled(log::LogLevel::kDebug)) {
    std::string text(line);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    log::write(log::LogLevel::kDebug, "libbpf", {{"message", text}});
  }
  return n;
}

std::string lastLines(const std::string& text, std::size_t lines) {
  std::size_t at = text.size();
  while (lines > 0 && at > 0) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) return text;
    --lines;
  }
  return text.substr(at + 1);
}

}  // namespace

// One TCX attachment: the link's descriptor. Closing it detaches the program from the device.
struct FastPath::Link {
  int fd = -1;
  explicit Link(int link_fd) noexcept : fd(link_fd) {}
  Link(Link&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  Link& operator=(Link&&) = delete;
  Link(const Link&) = delete;
  ~Link() {
    if (fd >= 0) ::close(fd);
  }
};

FastPath::FastPath(const std::vector<std::string>& interfaces, std::uint32_t capacity)
    : interfaces_(interfaces), capacity_(capacity) {
  if (interfaces.empty())
    throw std::runtime_error("no interface to attach to (see --fast-path-interface)");
  libbpf_set_print(libbpfPrint);
  std::string messages;
  libbpf_messages = &messages;
  struct Reset {
    ~Reset() { libbpf_messages = nullptr; }
  } reset;
  const int cpus = libbpf_num_possible_cpus();
  cpus_ = cpus > 0 ? static_cast<unsigned>(cpus) : 1;
  skeleton_ = tern_fast_path_bpf__open();
  if (skeleton_ == nullptr)
    throw std::runtime_error("cannot open the fast path program: " + messages);
  // A channel per allocation is the usual call; room for four, and more stay in user space.
  bpf_map__set_max_entries(skeleton_->maps.usage, capacity);
  bpf_map__set_max_entries(skeleton_->maps.channels, capacity * 4);
  bpf_map__set_max_entries(skeleton_->maps.peers, capacity * 4);
  if (const int rc = tern_fast_path_bpf__load(skeleton_); rc != 0) {
    const int error = -rc;
    tern_fast_path_bpf__destroy(skeleton_);
    skeleton_ = nullptr;
    std::string why = error == EPERM || error == EACCES
                          ? "not permitted (tern needs CAP_BPF and CAP_NET_ADMIN, or root)"
                          : std::strerror(error);
    throw std::runtime_error("cannot load the fast path program: " + why + "; " +
                             lastLines(messages, 4));
  }
  const int prog = bpf_program__fd(skeleton_->progs.tern_fast_path);
  for (const std::string& name : interfaces) {
    const unsigned ifindex = if_nametoindex(name.c_str());
    const int fd = ifindex == 0
                       ? -ENODEV
                       : bpf_link_create(prog, static_cast<int>(ifindex),
                                         static_cast<bpf_attach_type>(kTcxIngress), nullptr);
    if (fd < 0) {
      links_.clear();
      tern_fast_path_bpf__destroy(skeleton_);
      skeleton_ = nullptr;
      const std::string why = ifindex == 0 ? "no such interface"
                              : fd == -EINVAL
                                  ? "the kernel has no TCX links (Linux 6.6 or later is needed)"
                                  : std::strerror(-fd);
      throw std::runtime_error("cannot attach the fast path to " + name + ": " + why);
    }
    links_.emplace_back(fd);
  }
}

FastPath::~FastPath() {
  links_.clear();  // detach first: no packet meets a program whose maps are going
  if (skeleton_ != nullptr) tern_fast_path_bpf__destroy(skeleton_);
}

int FastPath::channelsFd() const noexcept { return bpf_map__fd(skeleton_->maps.channels); }
int FastPath::peersFd() const noexcept { return bpf_map__fd(skeleton_->maps.peers); }
int FastPath::usageFd() const noexcept { return bpf_map__fd(skeleton_->maps.usage); }

tern_fp_stats FastPath::stats() const noexcept {
  tern_fp_stats total{};
  std::vector<tern_fp_stats> per_cpu;
  try {
    per_cpu.resize(cpus_);
  } catch (const std::bad_alloc&) {
    return total;
  }
  const std::uint32_t key = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.stats), &key, per_cpu.data()) != 0)
    return total;
  for (const tern_fp_stats& s : per_cpu) {
    total.misses += s.misses;
    for (std::size_t r = 0; r < TERN_FP_FALLBACK_COUNT; ++r) total.fallbacks[r] += s.fallbacks[r];
  }
  return total;
}

std::vector<std::string> fastPathInterfacesFor(const std::vector<wire::IpAddress>& addresses) {
  std::vector<std::string> names;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return names;
  const bool any = std::any_of(addresses.begin(), addresses.end(),
                               [](const wire::IpAddress& a) { return a.isUnspecified(); });
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_LOOPBACK) != 0 ||
        (i->ifa_flags & IFF_UP) == 0)
      continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    const wire::IpAddress held = fromSockaddr(i->ifa_addr).ip;
    const bool wanted =
        any || std::find(addresses.begin(), addresses.end(), held) != addresses.end();
    if (wanted && std::find(names.begin(), names.end(), i->ifa_name) == names.end())
      names.emplace_back(i->ifa_name);
  }
  freeifaddrs(list);
  return names;
}

}  // namespace tern::io
