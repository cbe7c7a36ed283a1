// Network namespaces for tests; see netns.hpp.
#include "support/netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "support/process.hpp"

namespace tern::test {
namespace {

constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kIptables = "/usr/sbin/iptables";
constexpr const char* kPrefix = "tern-";

std::string check(std::vector<std::string> argv) {
  std::string shown;
  for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  auto r = runCommand(std::move(argv), std::chrono::seconds(20));
  if (r.status != 0) {
    throw std::runtime_error("`" + shown + "` failed (status " + std::to_string(r.status) + "): " + r.output +
                             (::geteuid() != 0 ? "\nnetwork namespace tests need root (CAP_NET_ADMIN)" : ""));
  }
  return r.output;
}

// Namespaces named tern-<pid>-... whose process is gone: a killed run cannot clean up (its
// destructors never ran), so the first namespace of the next run does it.
void removeOrphans() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::istringstream names(check({kIp, "netns", "list"}));
    for (std::string line; std::getline(names, line);) {
      const std::string name = line.substr(0, line.find(' '));
      if (name.rfind(kPrefix, 0) != 0) continue;
      const auto dash = name.find('-', std::strlen(kPrefix));
      if (dash == std::string::npos) continue;
      const pid_t owner = static_cast<pid_t>(std::atol(name.substr(std::strlen(kPrefix), dash).c_str()));
      if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) runCommand({kIp, "netns", "delete", name});
    }
  });
}

// Bridge ports need names unique within the hub, of at most 15 bytes.
std::string bridgePortName() {
  static std::atomic<unsigned> next{0};
  return "port" + std::to_string(next++);
}

// A veth pair made inside the namespaces themselves (nothing ever appears in the root
// namespace): `a_if` in `a`, `b_if` in `b`, each given its address (if any) and brought up.
void vethPair(const NetworkNamespace& a, const std::string& a_if, const std::string& a_cidr,
              const NetworkNamespace& b, const std::string& b_if, const std::string& b_cidr) {
  a.ip({"link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name()});
  if (!a_cidr.empty()) a.ip({"addr", "add", a_cidr, "dev", a_if});
  if (!b_cidr.empty()) b.ip({"addr", "add", b_cidr, "dev", b_if});
  a.ip({"link", "set", a_if, "up"});
  b.ip({"link", "set", b_if, "up"});
}

}  // namespace

NetworkNamespace::NetworkNamespace(const std::string& role) : name_(kPrefix + std::to_string(::getpid()) + "-" + role) {
  removeOrphans();
  check({kIp, "netns", "add", name_});
  ip({"link", "set", "lo", "up"});
}

NetworkNamespace::~NetworkNamespace() { runCommand({kIp, "netns", "delete", name_}); }

std::vector<std::string> NetworkNamespace::command(std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {kIp, "netns", "exec", name_});
  return argv;
}

std::string NetworkNamespace::run(std::vector<std::string> argv) const { return check(command(std::move(argv))); }

void NetworkNamespace::ip(std::vector<std::string> args) const {
  args.insert(args.begin(), {kIp, "-n", name_});
  check(std::move(args));
}

void NetworkNamespace::iptables(std::vector<std::string> args) const {
  args.insert(args.begin(), kIptables);
  run(std::move(args));
}

void NetworkNamespace::sysctl(const std::string& key, const std::string& value) const {
  // /proc/sys/net shows the namespace of the thread that opens it.
  Inside inside(*this);
  std::ofstream out("/proc/sys/" + key);
  out << value << "\n";
  out.flush();
  if (!out) throw std::runtime_error("cannot set " + key + " in " + name_);
}

void NetworkNamespace::addBridge(const std::string& bridge) const {
  ip({"link", "add", bridge, "type", "bridge"});
  ip({"link", "set", bridge, "up"});
}

NetworkNamespace::Inside::Inside(const NetworkNamespace& ns) {
  previous_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = ::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
  if (previous_ < 0 || target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
    const std::string why = std::strerror(errno);
    if (target >= 0) ::close(target);
    if (previous_ >= 0) ::close(previous_);
    throw std::runtime_error("cannot enter network namespace " + ns.name() + ": " + why);
  }
  ::close(target);
}

NetworkNamespace::Inside::~Inside() {
  // Back to where the thread was; failing here would leave every later test in the wrong
  // network, so it is fatal.
  if (::setns(previous_, CLONE_NEWNET) != 0) std::abort();
  ::close(previous_);
}

void linkNamespaces(const NetworkNamespace& a, const std::string& a_if, const std::string& a_cidr,
                    const NetworkNamespace& b, const std::string& b_if, const std::string& b_cidr) {
  vethPair(a, a_if, a_cidr, b, b_if, b_cidr);
}

void joinBridge(const NetworkNamespace& host, const std::string& host_if, const std::string& host_cidr,
                const NetworkNamespace& hub, const std::string& bridge) {
  const std::string port = bridgePortName();
  vethPair(host, host_if, host_cidr, hub, port, "");
  hub.ip({"link", "set", port, "master", bridge});
}

}  // namespace tern::test
