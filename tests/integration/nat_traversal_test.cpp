// Callers behind NATs that defeat hole punching reach each other through tern. A lab
// of network namespaces: an "internet" switch on 203.0.113.0/24 with tern on 203.0.113.10,
// and three sites, each a NAT router with a private LAN and one host behind it. The routers
// masquerade with `--random-fully` (a new public port for every destination: RFC 4787
// address-and-port-dependent mapping) and drop whatever arrives from outside without
// conntrack state (address-and-port-dependent filtering). Site C's router also lets out
// nothing but TCP to tern's port 443. Direct UDP between the hosts fails, with hole punching
// (ours and python3-aioice's ICE); through tern it works, for our client and aioice, over
// UDP, TCP and TLS. A control lab whose routers keep the source port shows hole punching
// does work there, so the failure is the NAT's doing and not the test's.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "relay/client/binding.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/channel_data.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_test_client.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::NetworkNamespace;
using test::TurnTestClient;
using Clock = std::chrono::steady_clock;

namespace {

// TEST-NET-3 stands for the internet; tern's peer policy denies documentation ranges by
// default, so it allows this one (the NATs' public addresses are peers). The sites' LANs stay
// denied, as private addresses are on a real relay.
constexpr const char* kInternet = "203.0.113.0/24";
constexpr const char* kTernIp = "203.0.113.10";
constexpr std::uint16_t kTurnPort = 3478;
// A second port of tern's, so one socket can ask two destinations what they see.
constexpr std::uint16_t kSecondPort = 3479;
constexpr std::uint16_t kTlsPort = 443;
constexpr const char* kUser = "nat";
constexpr const char* kPassword = "behind-two-nats";
constexpr const char* kRealm = "nat.test";

// How a site's router picks the public port of a new flow.
enum class Mapping : std::uint8_t {
  // MASQUERADE --random-fully: a random port for every new 5-tuple, so each destination
  // sees another port (RFC 4787 §4.1: address-and-port-dependent mapping, "symmetric NAT").
  kPerDestination,
  // Plain MASQUERADE: Linux keeps the host's source port when it is free, so every
  // destination sees the same one (endpoint-independent mapping). The control.
  kPortPreserving,
};

// One site: a NAT router between the internet switch and a LAN with one host on it.
struct Site {
  // Site `n` (1, 2, 3): router 203.0.113.2n on the switch, LAN 10.n.0.0/24, host 10.n.0.2.
  // With `only_tls_port`, the router lets out nothing but TCP to tern's port 443.
  Site(const std::string& name, int n, const NetworkNamespace& internet, Mapping mapping,
       bool only_tls_port)
      : router(name + "-nat"),
        host(name),
        public_ip("203.0.113.2" + std::to_string(n)),
        host_ip("10." + std::to_string(n) + ".0.2") {
    const std::string lan = "10." + std::to_string(n) + ".0.";
    test::joinBridge(router, "wan0", public_ip + "/24", internet, "br0");
    test::linkNamespaces(router, "lan0", lan + "1/24", host, "eth0", host_ip + "/24");
    host.ip({"route", "add", "default", "via", lan + "1"});
    router.sysctl("net/ipv4/ip_forward", "1");
    std::vector<std::string> masquerade{"-t", "nat",  "-A", "POSTROUTING",
                                        "-o", "wan0", "-j", "MASQUERADE"};
    if (mapping == Mapping::kPerDestination) masquerade.push_back("--random-fully");
    router.iptables(masquerade);
    if (only_tls_port) {
      router.iptables({"-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-p", "tcp", "-d", kTernIp,
                       "--dport", std::to_string(kTlsPort), "-j", "ACCEPT"});
      router.iptables({"-A", "FORWARD", "-i", "lan0", "-m", "comment", "--comment",
                       "outbound-blocked", "-j", "DROP"});
    } else {
      router.iptables({"-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-j", "ACCEPT"});
    }
    // The stateful filter: from outside, only what belongs to a flow the LAN started. A
    // packet for the router's own public address (every hole-punching packet: no NAT state
    // maps it to the LAN) meets INPUT; one for the LAN would meet FORWARD.
    for (const char* chain : {"FORWARD", "INPUT"}) {
      router.iptables({"-A", chain, "-i", "wan0", "-m", "conntrack", "--ctstate",
                       "ESTABLISHED,RELATED", "-j", "ACCEPT"});
      router.iptables(
          {"-A", chain, "-i", "wan0", "-m", "comment", "--comment", "unsolicited", "-j", "DROP"});
    }
  }

  // Packets the router's rules tagged `comment` have matched so far (all chains).
  std::uint64_t packets(const std::string& comment) const {
    std::istringstream listing(router.run({"/usr/sbin/iptables", "-nvxL"}));
    std::uint64_t total = 0;
    for (std::string line; std::getline(listing, line);) {
      if (line.find("/* " + comment + " */") != std::string::npos) total += std::stoull(line);
    }
    return total;
  }

  // The public port the router gave the flow from `inside` to `destination` (the reply
  // tuple of its conntrack entry), if it has one.
  std::optional<std::uint16_t> mappedPort(const wire::SocketAddress& inside,
                                          const wire::SocketAddress& destination) const {
    std::istringstream table(router.run({"/bin/cat", "/proc/net/nf_conntrack"}));
    for (std::string line; std::getline(table, line);) {
      // "ipv4 2 udp 17 29 src=A dst=B sport=P dport=Q [UNREPLIED] src=B dst=R sport=Q dport=M ..."
      std::istringstream words(line);
      std::vector<std::pair<std::string, std::string>> fields;
      for (std::string w; words >> w;) {
        if (const auto eq = w.find('='); eq != std::string::npos) {
          fields.emplace_back(w.substr(0, eq), w.substr(eq + 1));
        }
      }
      if (fields.size() < 8 || fields[0].first != "src") continue;
      const bool match = fields[0].second == inside.ip.toString() &&
                         fields[1].second == destination.ip.toString() &&
                         fields[2].second == std::to_string(inside.port) &&
                         fields[3].second == std::to_string(destination.port);
      if (match && fields[7].first == "dport") {
        return static_cast<std::uint16_t>(std::stoul(fields[7].second));
      }
    }
    return std::nullopt;
  }

  NetworkNamespace router, host;
  std::string public_ip, host_ip;
};

// The internet: a switch that tern and the sites' routers hang on.
struct Internet {
  Internet() : ns("internet") { ns.addBridge("br0"); }
  NetworkNamespace ns;
};

// The whole lab and tern in it: STUN/TURN on 3478 (and 3479), TURN over TCP or TLS on 443.
struct NatLab {
  explicit NatLab(Mapping mapping)
      : relay_host("tern"),
        a("a", 1, internet.ns, mapping, false),
        b("b", 2, internet.ns, mapping, false),
        c("c", 3, internet.ns, mapping, true) {
    test::joinBridge(relay_host, "eth0", std::string(kTernIp) + "/24", internet.ns, "br0");
    const auto& certs = test::testCertificatesFor(kTernIp);
    const std::string ip = kTernIp;
    tern = std::make_unique<test::TernServer>(
        std::vector<std::string>{
            "--listen", ip + ":" + std::to_string(kTurnPort), "--listen",
            ip + ":" + std::to_string(kSecondPort), "--listen", ip + ":" + std::to_string(kTlsPort),
            "--cert", certs.chain, "--key", certs.key, "--relay-ip", ip, "--user",
            std::string(kUser) + ":" + kPassword, "--realm", kRealm, "--allow-peer", kInternet},
        &relay_host);
  }

  Internet internet;
  NetworkNamespace relay_host;
  Site a, b, c;
  std::unique_ptr<test::TernServer> tern;
};

// A UDP socket of a host in the lab, not connected, so that one socket talks to tern and to
// the other host, as hole punching needs.
class UdpEndpoint {
 public:
  explicit UdpEndpoint(const Site& site) {
    NetworkNamespace::Inside inside(site.host);
    io::SocketOptions options;
    options.reuse_port = false;
    fd_ = io::openBoundSocket(io::SocketKind::kUdp, test::socketAddress(site.host_ip, 0), options);
    local_ = io::localAddress(fd_.get());
  }

  const wire::SocketAddress& local() const { return local_; }

  void sendTo(const wire::SocketAddress& to, const std::vector<std::uint8_t>& bytes) const {
    sockaddr_storage ss{};
    const socklen_t len = io::toSockaddr(to, ss);
    // What arrives is what the tests look at; a send error is no more than a lost datagram.
    (void)::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
  }

  struct Datagram {
    std::vector<std::uint8_t> bytes;
    wire::SocketAddress from;
  };
  // The next datagram within `timeout`.
  std::optional<Datagram> receive(std::chrono::milliseconds timeout) const {
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

  // RFC 8489 §3: the address `server` sees this socket's datagrams come from (XOR-MAPPED-
  // ADDRESS of a Binding response), or nothing if no answer comes within 1.5 s (three sends).
  std::optional<wire::SocketAddress> reflexiveAddress(const wire::SocketAddress& server) const {
    const auto request = client::makeBindingRequest(true);
    const auto give_up = Clock::now() + 1500ms;
    for (auto next_send = Clock::now(); Clock::now() < give_up;) {
      if (Clock::now() >= next_send) {
        sendTo(server, request);
        next_send = Clock::now() + 500ms;
      }
      const auto d = receive(50ms);
      if (!d || d->from != server || d->bytes.size() < 20) continue;
      // The same transaction ID (bytes 8-19).
      if (!std::equal(request.begin() + 8, request.begin() + 20, d->bytes.begin() + 8)) continue;
      const auto view = wire::MessageView::parse(d->bytes);
      if (!view) continue;
      const auto result = client::interpretBindingResponse(*view);
      if (const auto* ok = std::get_if<client::BindingSuccess>(&result)) return ok->mapped;
      return std::nullopt;
    }
    return std::nullopt;
  }

 private:
  io::FileDescriptor fd_;
  wire::SocketAddress local_;
};

std::vector<std::uint8_t> bytesOf(const std::string& text) { return {text.begin(), text.end()}; }

// What a round of hole punching between sites A and B showed.
struct Punching {
  // Each host's address as tern's port 3478 and port 3479 saw it, from the same socket.
  std::optional<wire::SocketAddress> a_reflexive, a_second, b_reflexive, b_second;
  int sent_each_way = 0;
  int a_received = 0, b_received = 0;  // punches that got through
  // The public port each router gave the flow toward the other's reflexive address.
  std::optional<std::uint16_t> a_port_toward_b, b_port_toward_a;
  // Unsolicited packets each router dropped meanwhile.
  std::uint64_t a_dropped = 0, b_dropped = 0;
};

// ICE's server-reflexive candidates done by hand (RFC 8445 §5.1.1.2): each host learns its
// public address from tern over the socket it will punch from, the two swap them (the
// signalling), then both send to each other's address at the same time, 20 times 50 ms
// apart, as hole punching does (RFC 5128 §3.3), and count what arrives from the other.
Punching punchHoles(NatLab& lab) {
  Punching p;
  UdpEndpoint a(lab.a), b(lab.b);
  const auto stun = test::socketAddress(kTernIp, kTurnPort), second = test::socketAddress(kTernIp, kSecondPort);
  p.a_reflexive = a.reflexiveAddress(stun);
  p.a_second = a.reflexiveAddress(second);
  p.b_reflexive = b.reflexiveAddress(stun);
  p.b_second = b.reflexiveAddress(second);
  REQUIRE(p.a_reflexive.has_value());
  REQUIRE(p.b_reflexive.has_value());

  const auto a_dropped = lab.a.packets("unsolicited"), b_dropped = lab.b.packets("unsolicited");
  auto count = [](const UdpEndpoint& socket, const std::string& expected, int& received) {
    while (auto d = socket.receive(0ms)) {
      const std::string text(d->bytes.begin(), d->bytes.end());
      if (text.rfind(expected, 0) == 0) ++received;
    }
  };
  constexpr int kPunches = 20;
  for (int i = 0; i < kPunches; ++i) {
    a.sendTo(*p.b_reflexive, bytesOf("punch a to b " + std::to_string(i)));
    b.sendTo(*p.a_reflexive, bytesOf("punch b to a " + std::to_string(i)));
    const auto until = Clock::now() + 50ms;
    while (Clock::now() < until) {
      count(a, "punch b to a ", p.a_received);
      count(b, "punch a to b ", p.b_received);
      std::this_thread::sleep_for(5ms);
    }
  }
  std::this_thread::sleep_for(300ms);
  count(a, "punch b to a ", p.a_received);
  count(b, "punch a to b ", p.b_received);
  p.sent_each_way = kPunches;
  p.a_dropped = lab.a.packets("unsolicited") - a_dropped;
  p.b_dropped = lab.b.packets("unsolicited") - b_dropped;
  p.a_port_toward_b = lab.a.mappedPort(a.local(), *p.b_reflexive);
  p.b_port_toward_a = lab.b.mappedPort(b.local(), *p.a_reflexive);
  return p;
}

// A TURN client of ours on a host of the lab: allocated, over UDP to 3478 or over TCP to 443.
std::unique_ptr<TurnTestClient> allocatedClient(const Site& site, bool tcp_443) {
  std::unique_ptr<TurnTestClient> c;
  {
    NetworkNamespace::Inside inside(site.host);
    c = std::make_unique<TurnTestClient>(test::socketAddress(site.host_ip, 0),
                                         test::socketAddress(kTernIp, tcp_443 ? kTlsPort : kTurnPort), kUser,
                                         kPassword, tcp_443);
  }
  REQUIRE(c->transact([&] { return c->session.allocate({}); }) ==
          TurnTestClient::Outcome::kSuccess);
  REQUIRE(c->session.relayed().has_value());
  REQUIRE(c->session.mapped().has_value());
  // tern relays on its public address and sees the client as its NAT's public address.
  CHECK(c->session.relayed()->ip.toString() == kTernIp);
  CHECK(c->session.mapped()->ip.toString() == site.public_ip);
  return c;
}

// What reached a TURN client from a peer: in a Data indication or on a channel.
struct Delivery {
  std::optional<wire::SocketAddress> peer;  // Data indication
  std::uint16_t channel = 0;                // ChannelData
  std::vector<std::uint8_t> data;
};

std::optional<Delivery> receiveFromPeer(TurnTestClient& c,
                                        std::chrono::milliseconds timeout = 2000ms) {
  std::vector<std::uint8_t> bytes;
  if (c.tcp) {
    // A stream of STUN messages and ChannelData padded to four bytes (RFC 8656 §12.5).
    bytes = test::readBytes(c.fd.get(), 4, timeout);
    if (bytes.size() < 4) return std::nullopt;
    const std::size_t length = (std::size_t{bytes[2]} << 8) | bytes[3];
    const bool channel = bytes[0] >= 0x40 && bytes[0] <= 0x7F;
    const std::size_t rest = channel ? ((length + 3) & ~std::size_t{3}) : 16 + length;
    const auto more = test::readBytes(c.fd.get(), rest, timeout);
    if (more.size() < rest) return std::nullopt;
    bytes.insert(bytes.end(), more.begin(), more.end());
  } else {
    bytes = test::receiveDatagram(c.fd.get(), timeout);
    if (bytes.empty()) return std::nullopt;
  }
  Delivery d;
  if (bytes[0] >= 0x40 && bytes[0] <= 0x7F) {
    const auto view = wire::ChannelDataView::parse(bytes);
    if (!view) return std::nullopt;
    d.channel = view->channel;
    d.data.assign(view->data.begin(), view->data.end());
    return d;
  }
  const auto view = wire::MessageView::parse(bytes);
  if (!view) return std::nullopt;
  const auto message = client::TurnSession::readDataIndication(*view);
  if (!message || !message->data) return std::nullopt;
  d.peer = message->peer;
  d.data.assign(message->data->begin(), message->data->end());
  return d;
}

std::vector<std::uint8_t> payload(const std::string& tag, std::size_t size) {
  std::vector<std::uint8_t> p = bytesOf(tag);
  for (std::size_t i = p.size(); i < size; ++i) {
    p.push_back(static_cast<std::uint8_t>(i * 7 + tag.size()));
  }
  p.resize(size);
  return p;
}

// Two of our TURN clients on different sites talk relay to relay: Send/Data indications
// after CreatePermission, then ChannelData after ChannelBind, both ways, several sizes; every
// datagram arrives intact and names the other's relayed address or the bound channel.
void exchangeThroughTern(TurnTestClient& x, TurnTestClient& y) {
  const auto x_relayed = *x.session.relayed(), y_relayed = *y.session.relayed();
  const wire::SocketAddress to_y[] = {y_relayed}, to_x[] = {x_relayed};
  REQUIRE(x.transact([&] { return x.session.createPermission(to_y); }) ==
          TurnTestClient::Outcome::kSuccess);
  REQUIRE(y.transact([&] { return y.session.createPermission(to_x); }) ==
          TurnTestClient::Outcome::kSuccess);
  for (const std::size_t size : {1u, 160u, 1200u}) {
    CAPTURE(size);
    const auto one = payload("send x to y", size), other = payload("send y to x", size);
    test::sendRaw(x.fd.get(), client::TurnSession::sendIndication(y_relayed, one));
    auto got = receiveFromPeer(y);
    REQUIRE(got.has_value());
    CHECK(got->peer == x_relayed);
    CHECK(got->data == one);
    test::sendRaw(y.fd.get(), client::TurnSession::sendIndication(x_relayed, other));
    got = receiveFromPeer(x);
    REQUIRE(got.has_value());
    CHECK(got->peer == y_relayed);
    CHECK(got->data == other);
  }
  constexpr std::uint16_t kXChannel = 0x4000, kYChannel = 0x4321;
  REQUIRE(x.transact([&] { return x.session.channelBind(kXChannel, y_relayed); }) ==
          TurnTestClient::Outcome::kSuccess);
  REQUIRE(y.transact([&] { return y.session.channelBind(kYChannel, x_relayed); }) ==
          TurnTestClient::Outcome::kSuccess);
  for (const std::size_t size : {1u, 161u, 1200u}) {
    CAPTURE(size);
    const auto one = payload("channel x to y", size), other = payload("channel y to x", size);
    test::sendRaw(x.fd.get(), client::TurnSession::channelData(kXChannel, one, x.tcp));
    auto got = receiveFromPeer(y);
    REQUIRE(got.has_value());
    CHECK(got->channel == kYChannel);
    CHECK(got->data == one);
    test::sendRaw(y.fd.get(), client::TurnSession::channelData(kYChannel, other, y.tcp));
    got = receiveFromPeer(x);
    REQUIRE(got.has_value());
    CHECK(got->channel == kXChannel);
    CHECK(got->data == other);
  }
}

// Whether a TCP connection from `site`'s host to `server` comes up within `timeout`.
bool tcpConnects(const Site& site, const wire::SocketAddress& server,
                 std::chrono::milliseconds timeout) {
  io::FileDescriptor fd;
  {
    NetworkNamespace::Inside inside(site.host);
    fd = io::FileDescriptor{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  }
  REQUIRE(fd);
  sockaddr_storage ss{};
  const socklen_t len = io::toSockaddr(server, ss);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  int error = 0;
  socklen_t error_len = sizeof error;
  return ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &error_len) == 0 && error == 0;
}

// A directory for the ICE agents' candidate files (their signalling), removed afterwards.
struct SignallingDirectory {
  SignallingDirectory() {
    char name[] = "/tmp/tern-ice-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = name;
  }
  ~SignallingDirectory() { std::filesystem::remove_all(path); }
  std::string path;
};

// What one aioice agent reported: its exit status and its RESULT line's fields.
struct IceOutcome {
  int status = -1;
  std::map<std::string, std::string> fields;
  std::string output;

  bool connected() const { return fields.count("connected") != 0 && fields.at("connected") == "1"; }
  std::string field(const std::string& key) const {
    return fields.count(key) != 0 ? fields.at(key) : "";
  }
  // The selected pair runs through tern: its local candidate is a relayed address or its
  // remote end is one (what the peer sends from is then tern's relay address).
  bool throughTern() const {
    const std::string relay_prefix = std::string(kTernIp) + ":";
    return field("local_type") == "relay" || field("local").rfind(relay_prefix, 0) == 0 ||
           field("remote").rfind(relay_prefix, 0) == 0;
  }
};

IceOutcome parseIceOutcome(int status, std::string output) {
  IceOutcome o{status, {}, std::move(output)};
  const auto at_result = o.output.rfind("RESULT ");
  if (at_result == std::string::npos) return o;
  std::istringstream words(
      o.output.substr(at_result + 7, o.output.find('\n', at_result) - at_result - 7));
  for (std::string w; words >> w;) {
    if (const auto eq = w.find('='); eq != std::string::npos) {
      o.fields[w.substr(0, eq)] = w.substr(eq + 1);
    }
  }
  return o;
}

// The arguments of an agent that gathers host and server-reflexive candidates with tern's
// STUN, and with `turn` a relayed one: "udp" (3478), "tls" (443, verifying tern's
// certificate against the test CA) or "" for none.
std::vector<std::string> agentOptions(const std::string& turn) {
  std::vector<std::string> args;
  if (turn != "tls") {
    args = {"--stun", std::string(kTernIp) + ":" + std::to_string(kTurnPort)};
  }
  if (turn.empty()) return args;
  args.insert(args.end(), {"--username", kUser, "--password", kPassword});
  if (turn == "udp") {
    args.insert(args.end(), {"--turn", std::string(kTernIp) + ":" + std::to_string(kTurnPort)});
  } else {
    // The site of this agent can reach nothing but 443: no STUN, TURN over TLS only.
    args.insert(args.end(),
                {"--turn", std::string(kTernIp) + ":" + std::to_string(kTlsPort),
                 "--turn-transport", "tcp", "--cafile", test::testCertificatesFor(kTernIp).ca});
  }
  return args;
}

// Two aioice ICE agents (RFC 8445), the controlling one on `x`'s host and the controlled one
// on `y`'s, each a process of its own in its namespace, trade candidates through files and
// run their checks; then ten pings go from x to y and back over the selected pair.
std::pair<IceOutcome, IceOutcome> runIce(const Site& x, const std::string& x_turn, const Site& y,
                                         const std::string& y_turn) {
  SignallingDirectory signalling;
  auto agent = [&](const Site& site, const std::string& turn, const std::string& name,
                   const std::string& peer, bool controlling) {
    // Each step (signalling, checks, pings) gives up after 15 s, so a stuck agent ends.
    std::vector<std::string> argv{"/usr/bin/python3", TERN_CLIENTS_DIR "/ice_agent.py", "--timeout",
                                  "15"};
    argv.insert(argv.end(),
                {"--name", name, "--peer-name", peer, "--exchange-dir", signalling.path});
    argv.push_back(controlling ? "--controlling" : "--controlled");
    const auto options = agentOptions(turn);
    argv.insert(argv.end(), options.begin(), options.end());
    return std::make_unique<test::ChildProcess>(site.host.command(argv));
  };
  auto controlling = agent(x, x_turn, "x", "y", true);
  auto controlled = agent(y, y_turn, "y", "x", false);
  const int x_status = controlling->wait(30s);
  const int y_status = controlled->wait(30s);
  return {parseIceOutcome(x_status, controlling->output()),
          parseIceOutcome(y_status, controlled->output())};
}

// Whether tern's log has an allocation made for a client at `ip` over `transport`.
bool loggedAllocation(const std::string& log, const std::string& ip, const std::string& transport) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("allocation created client=" + ip + ":") != std::string::npos &&
        line.find(" transport=" + transport + " ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("NATs that map each destination to a new port defeat UDP hole punching") {
  NatLab lab(Mapping::kPerDestination);
  const auto p = punchHoles(lab);
  INFO("a seen as " << p.a_reflexive->toString() << " and "
                    << (p.a_second ? p.a_second->toString() : "-") << ", b seen as "
                    << p.b_reflexive->toString() << " and "
                    << (p.b_second ? p.b_second->toString() : "-"));
  // tern sees each host as its router's public address...
  CHECK(p.a_reflexive->ip.toString() == lab.a.public_ip);
  CHECK(p.b_reflexive->ip.toString() == lab.b.public_ip);
  // ...and a second destination sees the same socket on another port: the mapping depends on
  // where a packet goes (RFC 4787 §4.1), so the address one peer learns is useless to another.
  REQUIRE(p.a_second.has_value());
  REQUIRE(p.b_second.has_value());
  CHECK(p.a_second->port != p.a_reflexive->port);
  CHECK(p.b_second->port != p.b_reflexive->port);
  // Both sent to each other's reflexive address at once, and nothing got through.
  CHECK(p.a_received == 0);
  CHECK(p.b_received == 0);
  // Why: A's punches left its router from yet another port, so B's router, expecting replies
  // to B's punches from A's reflexive port, holds no state for them, and the reverse; each
  // router dropped the other's punches as unsolicited.
  REQUIRE(p.a_port_toward_b.has_value());
  REQUIRE(p.b_port_toward_a.has_value());
  CHECK(*p.a_port_toward_b != p.a_reflexive->port);
  CHECK(*p.b_port_toward_a != p.b_reflexive->port);
  CHECK(p.a_dropped >= static_cast<std::uint64_t>(p.sent_each_way));
  CHECK(p.b_dropped >= static_cast<std::uint64_t>(p.sent_each_way));
  CHECK(lab.tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "control: the same hole punching and aioice ICE without TURN work behind port-preserving NATs") {
  NatLab lab(Mapping::kPortPreserving);
  const auto p = punchHoles(lab);
  REQUIRE(p.a_second.has_value());
  REQUIRE(p.b_second.has_value());
  // One public port per socket, whatever the destination...
  CHECK(p.a_second->port == p.a_reflexive->port);
  CHECK(p.b_second->port == p.b_reflexive->port);
  CHECK(p.a_port_toward_b == p.a_reflexive->port);
  CHECK(p.b_port_toward_a == p.b_reflexive->port);
  // ...so once both have sent, each router has the state that lets the other's punches in.
  // Only the first punch or so may come before the receiving side has sent its own.
  CHECK(p.a_received >= p.sent_each_way - 2);
  CHECK(p.b_received >= p.sent_each_way - 2);

  // aioice's ICE finds the same direct path with host and server-reflexive candidates alone.
  const auto ice = runIce(lab.a, "", lab.b, "");
  const IceOutcome &x = ice.first, &y = ice.second;
  INFO(x.output);
  INFO(y.output);
  CHECK(x.status == 0);
  CHECK(y.status == 0);
  CHECK(x.connected());
  CHECK(y.connected());
  CHECK_FALSE(x.throughTern());
  CHECK_FALSE(y.throughTern());
  CHECK(lab.tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "our TURN clients behind two such NATs exchange Send/Data and ChannelData through tern") {
  NatLab lab(Mapping::kPerDestination);
  auto a = allocatedClient(lab.a, false);
  auto b = allocatedClient(lab.b, false);
  exchangeThroughTern(*a, *b);
  INFO(lab.tern->process().output());
  CHECK(lab.tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "python3-aioice ICE behind two such NATs fails with STUN only and connects through tern's relay") {
  NatLab lab(Mapping::kPerDestination);
  {
    // Host and server-reflexive candidates: every check is a hole-punching attempt, and each
    // router drops the other's as unsolicited.
    const auto a_dropped = lab.a.packets("unsolicited"), b_dropped = lab.b.packets("unsolicited");
    const auto ice = runIce(lab.a, "", lab.b, "");
    const IceOutcome &x = ice.first, &y = ice.second;
    INFO(x.output);
    INFO(y.output);
    CHECK(x.status == 2);
    CHECK(y.status == 2);
    CHECK_FALSE(x.connected());
    CHECK_FALSE(y.connected());
    CHECK(x.field("local_types") == "host,srflx");
    CHECK(y.field("local_types") == "host,srflx");
    CHECK(lab.a.packets("unsolicited") > a_dropped);
    CHECK(lab.b.packets("unsolicited") > b_dropped);
  }
  {
    // With tern's TURN as well, each agent adds a relayed candidate and ICE picks a path
    // through tern; the pings cross it both ways.
    const auto ice = runIce(lab.a, "udp", lab.b, "udp");
    const IceOutcome &x = ice.first, &y = ice.second;
    INFO(x.output);
    INFO(y.output);
    CHECK(x.status == 0);
    CHECK(y.status == 0);
    CHECK(x.connected());
    CHECK(y.connected());
    CHECK(x.field("exchanged") == "10");
    CHECK(y.field("exchanged") == "10");
    CHECK(x.throughTern());
    CHECK(y.throughTern());
  }
  CHECK(lab.tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "a host that may only reach tern over TCP or TLS on 443 talks to a host behind a NAT") {
  NatLab lab(Mapping::kPerDestination);
  const auto blocked_before = lab.c.packets("outbound-blocked");
  {
    // Its network lets out no UDP: no STUN answer from tern's 3478 or 443, no datagram to the
    // other host's public address, and no TCP to 3478 either.
    UdpEndpoint c(lab.c), b(lab.b);
    CHECK_FALSE(c.reflexiveAddress(test::socketAddress(kTernIp, kTurnPort)).has_value());
    CHECK_FALSE(c.reflexiveAddress(test::socketAddress(kTernIp, kTlsPort)).has_value());
    const auto b_public = b.reflexiveAddress(test::socketAddress(kTernIp, kTurnPort));
    REQUIRE(b_public.has_value());
    // B tries the other way too, at the port C's router would have used had it let C out.
    for (int i = 0; i < 5; ++i) {
      c.sendTo(*b_public, bytesOf("direct c to b"));
      b.sendTo(test::socketAddress(lab.c.public_ip, c.local().port), bytesOf("direct b to c"));
    }
    CHECK_FALSE(b.receive(500ms).has_value());
    CHECK_FALSE(c.receive(0ms).has_value());
    CHECK_FALSE(tcpConnects(lab.c, test::socketAddress(kTernIp, kTurnPort), 1000ms));
    CHECK(tcpConnects(lab.c, test::socketAddress(kTernIp, kTlsPort), 2000ms));
    // Three Binding requests to each port, five datagrams and at least one SYN.
    CHECK(lab.c.packets("outbound-blocked") - blocked_before >= 3 + 3 + 5 + 1);
  }
  {
    // Our client over TCP to 443 and one over UDP behind the other NAT.
    auto c = allocatedClient(lab.c, true);
    auto b = allocatedClient(lab.b, false);
    exchangeThroughTern(*c, *b);
  }
  {
    // aioice over TLS to 443, verifying tern's certificate, with ICE against an aioice agent
    // behind the other NAT (STUN and TURN over UDP): the only way is through tern.
    const auto ice = runIce(lab.c, "tls", lab.b, "udp");
    const IceOutcome &x = ice.first, &y = ice.second;
    INFO(x.output);
    INFO(y.output);
    CHECK(x.status == 0);
    CHECK(y.status == 0);
    CHECK(x.field("local_type") == "relay");
    CHECK(x.field("exchanged") == "10");
    CHECK(y.field("exchanged") == "10");
    CHECK(y.throughTern());
  }
  // tern saw site C's clients come over TCP and TLS from its router's public address.
  const auto log = lab.tern->process().output();
  INFO(log);
  CHECK(loggedAllocation(log, lab.c.public_ip, "tcp"));
  CHECK(loggedAllocation(log, lab.c.public_ip, "tls"));
  CHECK(lab.tern->process().stop(SIGTERM) == 0);
}
