// See fast_path_topology.hpp.
#include "fast_path_topology.hpp"

#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "relay/app/http_request.hpp"
#include "support/stun_socket.hpp"

namespace tern::test {
namespace {

constexpr const char* kIp6tables = "/usr/sbin/ip6tables";
constexpr const char* kEthtool = "/usr/sbin/ethtool";

// A veth end's checksums done in software both ways: `tx off` so what it sends carries a full
// checksum (a veth otherwise leaves it partial, for the receiver to trust), `rx off` so what
// it receives is verified (a veth otherwise marks it CHECKSUM_UNNECESSARY).
void softwareChecksums(const NetworkNamespace& ns, const std::string& interface) {
  ns.run({kEthtool, "-K", interface, "tx", "off", "rx", "off"});
}

// An address that is usable at once: `nodad` skips IPv6 duplicate address detection, during
// which the address is tentative and cannot be bound.
void addAddress(const NetworkNamespace& ns, const std::string& interface, const std::string& cidr) {
  std::vector<std::string> args{"addr", "add", cidr, "dev", interface};
  if (cidr.find(':') != std::string::npos) args.emplace_back("nodad");
  ns.ip(args);
}

// The labels of one exposition line `name{a="x",b="y"} value` (values hold no quotes here).
std::map<std::string, std::string> labelsOf(const std::string& inside_braces) {
  std::map<std::string, std::string> labels;
  std::size_t at = 0;
  while (at < inside_braces.size()) {
    const auto eq = inside_braces.find("=\"", at);
    if (eq == std::string::npos) break;
    const auto close = inside_braces.find('"', eq + 2);
    if (close == std::string::npos) break;
    labels[inside_braces.substr(at, eq - at)] = inside_braces.substr(eq + 2, close - eq - 2);
    at = close + 1;
    if (at < inside_braces.size() && inside_braces[at] == ',') ++at;
  }
  return labels;
}

// linux/bpf.h of Debian 12 predates TCX (Linux 6.6): its attach type and the query's layout.
constexpr std::uint32_t kBpfProgQuery = 16;   // BPF_PROG_QUERY
constexpr std::uint32_t kBpfTcxIngress = 46;  // BPF_TCX_INGRESS
struct BpfProgQuery {
  std::uint32_t target_ifindex;
  std::uint32_t attach_type;
  std::uint32_t query_flags;
  std::uint32_t attach_flags;
  alignas(8) std::uint64_t prog_ids;
  std::uint32_t prog_cnt;
  std::uint32_t pad;
  alignas(8) std::uint64_t prog_attach_flags;
};

}  // namespace

const LabAddresses& labAddresses(Family family) {
  static const LabAddresses v4{"192.0.2.2",    "192.0.2.1",    "198.51.100.1",
                               "198.51.100.2", "198.51.100.3", 0x01};
  static const LabAddresses v6{"2001:db8:1::2", "2001:db8:1::1", "2001:db8:2::1",
                               "2001:db8:2::2", "2001:db8:2::3", 0x02};
  return family == Family::kIpv4 ? v4 : v6;
}

ChecksumErrors udpChecksumErrors(const NetworkNamespace& ns) {
  ChecksumErrors errors;
  // Two "Udp:" lines: the field names, then the values.
  std::istringstream snmp(ns.run({"/bin/cat", "/proc/net/snmp"}));
  std::vector<std::string> names;
  for (std::string line; std::getline(snmp, line);) {
    if (line.rfind("Udp: ", 0) != 0) continue;
    std::istringstream words(line.substr(5));
    std::vector<std::string> fields;
    for (std::string w; words >> w;) fields.push_back(w);
    if (names.empty()) {
      names = fields;
      continue;
    }
    for (std::size_t i = 0; i < names.size() && i < fields.size(); ++i) {
      if (names[i] == "InCsumErrors") errors.udp = std::stoull(fields[i]);
    }
  }
  std::istringstream snmp6(ns.run({"/bin/cat", "/proc/net/snmp6"}));
  for (std::string name, value; snmp6 >> name >> value;) {
    if (name == "Udp6InCsumErrors") errors.udp6 = std::stoull(value);
  }
  return errors;
}

FastPathTopology::FastPathTopology() : client("fp-client"), relay("fp-relay"), peer("fp-peer") {
  const auto& v4 = labAddresses(Family::kIpv4);
  const auto& v6 = labAddresses(Family::kIpv6);
  linkNamespaces(client, kClientIf, v4.client + "/24", relay, kRelayClientIf,
                 v4.relay_client + "/24");
  linkNamespaces(relay, kRelayPeerIf, v4.relay_peer + "/24", peer, kPeerIf, v4.peer + "/24");
  addAddress(peer, kPeerIf, v4.other_peer + "/24");
  addAddress(client, kClientIf, v6.client + "/64");
  addAddress(relay, kRelayClientIf, v6.relay_client + "/64");
  addAddress(relay, kRelayPeerIf, v6.relay_peer + "/64");
  addAddress(peer, kPeerIf, v6.peer + "/64");
  addAddress(peer, kPeerIf, v6.other_peer + "/64");
  softwareChecksums(client, kClientIf);
  softwareChecksums(peer, kPeerIf);
  // Issue 21: the program's bpf_fib_lookup answers only where the namespace forwards; the
  // FORWARD chains keep the kernel's own routing from joining the two sides.
  relay.sysctl("net/ipv4/ip_forward", "1");
  relay.sysctl("net/ipv6/conf/all/forwarding", "1");
  relay.iptables({"-P", "FORWARD", "DROP"});
  relay.run({kIp6tables, "-P", "FORWARD", "DROP"});
}

std::unique_ptr<TernServer> FastPathTopology::startTern(bool fast_path,
                                                        std::vector<std::string> extra,
                                                        std::string binary) const {
  const auto& v4 = labAddresses(Family::kIpv4);
  const auto& v6 = labAddresses(Family::kIpv6);
  const std::string port = std::to_string(kTurnPort);
  std::vector<std::string> args{"--listen",         v4.relay_client + ":" + port,
                                "--listen",         "[" + v6.relay_client + "]:" + port,
                                "--relay-ip",       v4.relay_peer,
                                "--relay-ip",       v6.relay_peer,
                                "--relay-ports",    "50000-50999",
                                "--allow-peer",     "198.51.100.0/24",
                                "--allow-peer",     "2001:db8:2::/64",
                                "--user",           std::string(kLabUser) + ":" + kLabPassword,
                                "--realm",          kLabRealm,
                                "--metrics-listen", "127.0.0.1:0"};
  // Off is the default; the lab leaves the flag out then, so the user-space runs also show
  // what an operator who never heard of the fast path gets.
  if (fast_path) {
    args.insert(args.end(), {"--fast-path", "on", "--fast-path-interface", kRelayClientIf,
                             "--fast-path-interface", kRelayPeerIf});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<TernServer>(args, &relay, std::move(binary));
}

void FastPathTopology::setRelayClientMtu(int mtu) const {
  relay.ip({"link", "set", kRelayClientIf, "mtu", std::to_string(mtu)});
}

std::uint64_t FastPathTopology::metricSum(
    const TernServer& tern, const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& labels) const {
  if (!tern.http()) throw std::runtime_error("tern has no --metrics-listen");
  app::HttpResponse response;
  {
    // The metrics listener is on the relay namespace's loopback.
    NetworkNamespace::Inside inside(relay);
    response = app::httpRequest(*tern.http(), "GET", "/metrics", std::chrono::seconds(5));
  }
  if (response.status != 200)
    throw std::runtime_error("GET /metrics answered " + std::to_string(response.status));
  double sum = 0;
  std::istringstream lines(response.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != '{' && next != ' ') continue;
    std::map<std::string, std::string> have;
    if (next == '{')
      have = labelsOf(line.substr(name.size() + 1, line.find('}') - name.size() - 1));
    bool match = true;
    for (const auto& [key, value] : labels)
      match = match && have.count(key) != 0 && have.at(key) == value;
    if (match) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return static_cast<std::uint64_t>(sum);
}

std::uint64_t FastPathTopology::relayedPackets(const TernServer& tern, const std::string& direction,
                                               const std::string& path) const {
  std::vector<std::pair<std::string, std::string>> labels;
  if (!direction.empty()) labels.emplace_back("direction", direction);
  if (!path.empty()) labels.emplace_back("path", path);
  return metricSum(tern, "tern_relayed_packets_total", labels);
}

std::uint64_t FastPathTopology::settledRelayedPackets(const TernServer& tern, const std::string& direction,
                                                      const std::string& path) const {
  std::uint64_t last = relayedPackets(tern, direction, path);
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // more than one tick
    const std::uint64_t now = relayedPackets(tern, direction, path);
    if (now == last) return now;
    last = now;
  }
  return last;
}

std::size_t FastPathTopology::tcxIngressPrograms(const std::string& interface) const {
  return tcxIngressProgramIds(interface).size();
}

std::vector<std::uint32_t> FastPathTopology::tcxIngressProgramIds(
    const std::string& interface) const {
  NetworkNamespace::Inside inside(relay);
  const unsigned index = ::if_nametoindex(interface.c_str());
  if (index == 0) throw std::runtime_error("no interface " + interface + " in " + relay.name());
  std::uint32_t ids[16] = {};
  BpfProgQuery query{};
  query.target_ifindex = index;
  query.attach_type = kBpfTcxIngress;
  query.prog_ids = reinterpret_cast<std::uintptr_t>(ids);
  query.prog_cnt = 16;
  if (::syscall(SYS_bpf, kBpfProgQuery, &query, sizeof query) != 0) {
    throw std::runtime_error(std::string("BPF_PROG_QUERY (TCX ingress) failed: ") +
                             std::strerror(errno));
  }
  return {ids, ids + std::min<std::uint32_t>(query.prog_cnt, 16)};
}

LabSocket::LabSocket(const NetworkNamespace* ns, const std::string& ip, std::uint16_t port) {
  std::optional<NetworkNamespace::Inside> inside;
  if (ns != nullptr) inside.emplace(*ns);
  io::SocketOptions options;
  options.reuse_port = false;
  fd_ = io::openBoundSocket(io::SocketKind::kUdp, socketAddress(ip, port), options);
  local_ = io::localAddress(fd_.get());
}

void LabSocket::sendTo(const wire::SocketAddress& to,
                       const std::vector<std::uint8_t>& bytes) const {
  sockaddr_storage ss{};
  const socklen_t len = io::toSockaddr(to, ss);
  if (::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) <
      0) {
    throw std::runtime_error(std::string("sendto failed: ") + std::strerror(errno));
  }
}

std::optional<Datagram> LabSocket::receive(std::chrono::milliseconds timeout) const {
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  std::vector<std::uint8_t> buf(65536);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const ssize_t n =
      ::recvfrom(fd_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<std::size_t>(n));
  return Datagram{std::move(buf), io::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))};
}

std::vector<std::uint8_t> patternPayload(std::uint32_t seed, std::size_t size) {
  std::vector<std::uint8_t> bytes(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : bytes) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return bytes;
}

}  // namespace tern::test
