// Network namespaces for tests that need more than loopback: callers behind NATs, a fleet of
// relay nodes on a "public" network, a monitoring host. Built with iproute2 and iptables, so
// they need CAP_NET_ADMIN (root, as CI runs); without it the constructor throws and says so.
// Every namespace is deleted when its owner goes away, and namespaces that a killed test run
// left behind (their owner's PID is gone) are deleted by the next run.
#pragma once

#include <string>
#include <vector>

namespace tern::test {

class NetworkNamespace {
 public:
  // A new namespace named "tern-<pid>-<role>" with its loopback up.
  explicit NetworkNamespace(const std::string& role);
  ~NetworkNamespace();
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;

  const std::string& name() const noexcept { return name_; }

  // `argv` prefixed with `ip netns exec NAME`, for a ChildProcess that runs inside.
  std::vector<std::string> command(std::vector<std::string> argv) const;
  // Runs a command inside to completion; throws with its output if it fails.
  std::string run(std::vector<std::string> argv) const;
  // `ip -n NAME ARGS...` (configures links, addresses and routes of this namespace).
  void ip(std::vector<std::string> args) const;
  // `iptables ARGS...` inside.
  void iptables(std::vector<std::string> args) const;
  // Writes a sysctl of this namespace, e.g. sysctl("net/ipv4/ip_forward", "1").
  void sysctl(const std::string& key, const std::string& value) const;
  // A bridge (a switch) inside this namespace, up; hosts join it with joinBridge().
  void addBridge(const std::string& bridge) const;

  // While alive, the calling thread lives in `ns`: sockets it opens meanwhile belong to the
  // namespace (and stay there afterwards), so test code can act as a host inside it.
  class Inside {
   public:
    explicit Inside(const NetworkNamespace& ns);
    ~Inside();
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;

   private:
    int previous_ = -1;
  };

 private:
  std::string name_;
};

// Connects two namespaces with a veth pair: interface `a_if` with `a_cidr` (e.g.
// "10.1.0.2/24") in `a`, `b_if` with `b_cidr` in `b`; both up.
void linkNamespaces(const NetworkNamespace& a, const std::string& a_if, const std::string& a_cidr,
                    const NetworkNamespace& b, const std::string& b_if, const std::string& b_cidr);

// Puts `host` on the bridge `bridge` of `hub` (see addBridge) through interface `host_if`
// with `host_cidr`.
void joinBridge(const NetworkNamespace& host, const std::string& host_if, const std::string& host_cidr,
                const NetworkNamespace& hub, const std::string& bridge);

}  // namespace tern::test
