// The lab of the eBPF fast path's tests (issue 21): three network namespaces in a row,
//
//   client  cl0 ==== rc0  relay  rp0 ==== pe0  peer
//   192.0.2.2        192.0.2.1   198.51.100.1  198.51.100.2 (and .3)
//   2001:db8:1::2    2001:db8:1::1  2001:db8:2::1  2001:db8:2::2 (and ::3)
//
// tern runs in the relay namespace, listening on its client-side addresses and relaying from
// its peer-side ones. The client and the peer have routes to their own link only, and the
// relay namespace forwards (bpf_fib_lookup needs forwarding on) but its FORWARD chains drop
// everything: the two sides meet only through tern, in user space or in its TC program. A
// bpf_redirect from TC ingress hands the packet to the other device's transmit path
// (skb_do_redirect -> dev_queue_xmit), before the IP layer, so netfilter's FORWARD never sees
// it (checked in this lab's shape with a tc program that redirects rc0's ingress to rp0: the
// datagram arrives and the DROP policy's counter stays). The client's and peer's veth ends compute
// and verify checksums in software (offloads off), as behind a real NIC, so a wrong checksum
// written by the relay is dropped and counted in their /proc/net/snmp InCsumErrors.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "relay/io/socket_util.hpp"
#include "relay/wire/address.hpp"
#include "support/netns.hpp"
#include "support/tern_server.hpp"

namespace tern::test {

enum class Family : std::uint8_t { kIpv4, kIpv6 };

// The lab's addresses of one family.
struct LabAddresses {
  std::string client;             // the client host
  std::string relay_client;       // tern's listen address
  std::string relay_peer;         // tern's relay address
  std::string peer;               // the peer host
  std::string other_peer;         // a second address of the peer host (no permission for it)
  std::uint8_t requested_family;  // REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.10)
};
const LabAddresses& labAddresses(Family family);

constexpr std::uint16_t kTurnPort = 3478;
constexpr const char* kLabUser = "fast";
constexpr const char* kLabPassword = "fast-path-password";
constexpr const char* kLabRealm = "fastpath.test";

// /proc/net/snmp's Udp InCsumErrors and /proc/net/snmp6's Udp6InCsumErrors of a namespace.
struct ChecksumErrors {
  std::uint64_t udp = 0, udp6 = 0;
};
ChecksumErrors udpChecksumErrors(const NetworkNamespace& ns);

class FastPathTopology {
 public:
  static constexpr const char* kClientIf = "cl0";
  static constexpr const char* kRelayClientIf = "rc0";
  static constexpr const char* kRelayPeerIf = "rp0";
  static constexpr const char* kPeerIf = "pe0";

  FastPathTopology();

  // tern in the relay namespace with the lab's user, peers allowed on the peer side, metrics
  // on the relay's loopback; with `fast_path` `--fast-path on` attached to rc0 and rp0.
  // `extra` is appended; `binary` as TernServer's (an upgrade test's own copy).
  std::unique_ptr<TernServer> startTern(bool fast_path, std::vector<std::string> extra = {},
                                        std::string binary = {}) const;

  // The MTU of the relay's client-side interface (rc0).
  void setRelayClientMtu(int mtu) const;

  // The sum of every series of metric `name` whose labels include all of `labels`, scraped
  // from inside the relay namespace (0 when none matches).
  std::uint64_t metricSum(
      const TernServer& tern, const std::string& name,
      const std::vector<std::pair<std::string, std::string>>& labels = {}) const;
  // tern_relayed_packets_total of `direction` ("client_to_peer", "peer_to_client"; empty for
  // both) and `path` ("kernel", "user"; empty for both).
  std::uint64_t relayedPackets(const TernServer& tern, const std::string& direction,
                               const std::string& path) const;
  // relayedPackets once it stops moving: tern credits what the kernel relayed on its worker
  // tick (every second), so a baseline taken right after traffic may still lack some of it.
  std::uint64_t settledRelayedPackets(const TernServer& tern, const std::string& direction,
                                      const std::string& path) const;

  // Programs attached at TCX ingress of `interface` in the relay namespace (BPF_PROG_QUERY).
  std::size_t tcxIngressPrograms(const std::string& interface) const;
  // Their ids, first to run first: a reload must keep the same one, an upgrade end with one.
  std::vector<std::uint32_t> tcxIngressProgramIds(const std::string& interface) const;

  NetworkNamespace client, relay, peer;
};

// A datagram and where it came from.
struct Datagram {
  std::vector<std::uint8_t> bytes;
  wire::SocketAddress from;
};

// A UDP socket of a host in the lab, bound in its namespace, talking to anyone.
class LabSocket {
 public:
  LabSocket(const NetworkNamespace& ns, const std::string& ip, std::uint16_t port = 0)
      : LabSocket(&ns, ip, port) {}
  // With no `ns`, in the caller's own namespace (a loopback test's peer).
  LabSocket(const NetworkNamespace* ns, const std::string& ip, std::uint16_t port = 0);
  const wire::SocketAddress& local() const { return local_; }
  int fd() const { return fd_.get(); }
  void sendTo(const wire::SocketAddress& to, const std::vector<std::uint8_t>& bytes) const;
  // The next datagram within `timeout` (0: only one already queued).
  std::optional<Datagram> receive(std::chrono::milliseconds timeout) const;

 private:
  io::FileDescriptor fd_;
  wire::SocketAddress local_;
};

// `size` bytes, each a function of `seed` and its position, so a byte moved, lost or changed
// on the way shows.
std::vector<std::uint8_t> patternPayload(std::uint32_t seed, std::size_t size);

}  // namespace tern::test
