// tern-load: the load generator of bench/compare. It opens N TURN allocations (UDP, or TCP
// control connections) with relay/client's TurnSession, binds a channel on each to one of its
// own peer sockets, and drives media both ways: at a fixed rate per allocation (voice: 160 B
// at 50 packets/s) or closed-loop at the maximum rate (a window of packets in flight per
// flow). Every payload carries its flow, sequence number and send time, so the receiving side
// measures loss and one-way latency (both ends are on this host, one clock).
//
// With --raw it talks to bench/forwarder instead: no TURN, the payload's first 6 bytes name
// where the forwarder sends it. The same payloads, sockets and pacing make the rows comparable.
//
// Its own I/O is batched (recvmmsg everywhere, sendmmsg on peer sockets and for bursts) and
// single-threaded on epoll: a generator on libuv would pay per-datagram callbacks it does not
// need. It prints one JSON object (the numbers bench/compare reads) and a readable summary.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "bench/load/latency_histogram.hpp"
#include "bench/load/process_stats.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/channel_data.hpp"
#include "relay/wire/message.hpp"
#include "relay/wire/stream_framer.hpp"

namespace {

using namespace tern;
using Clock = std::chrono::steady_clock;
using Outcome = client::TurnSession::Outcome;

constexpr std::uint16_t kChannel = 0x4000;
constexpr std::size_t kHeader = 32;  // see Payload
constexpr unsigned kBatch = 64;
constexpr std::size_t kSlot = 2048;

std::uint64_t nowNs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        Clock::now().time_since_epoch())
                                        .count());
}

std::int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Payload layout (host byte order except the forwarder address):
//   0-5 forwarder destination (IPv4, port; --raw only)  6-7 zero
//   8-11 flow (allocation index)  12-15 direction (0 client->peer, 1 peer->client)
//   16-23 sequence number  24-31 send time, steady clock ns
struct Stamp {
  std::uint32_t flow;
  std::uint32_t direction;
  std::uint64_t seq;
  std::uint64_t sent_ns;
};

void writeStamp(std::uint8_t* p, const Stamp& s) {
  std::memcpy(p + 8, &s.flow, 4);
  std::memcpy(p + 12, &s.direction, 4);
  std::memcpy(p + 16, &s.seq, 8);
  std::memcpy(p + 24, &s.sent_ns, 8);
}

Stamp readStamp(const std::uint8_t* p) {
  Stamp s{};
  std::memcpy(&s.flow, p + 8, 4);
  std::memcpy(&s.direction, p + 12, 4);
  std::memcpy(&s.seq, p + 16, 8);
  std::memcpy(&s.sent_ns, p + 24, 8);
  return s;
}

sockaddr_in toSockaddr(const wire::SocketAddress& a) {
  sockaddr_in out{};
  out.sin_family = AF_INET;
  out.sin_port = htons(a.port);
  std::memcpy(&out.sin_addr, a.ip.data(), 4);
  return out;
}

wire::SocketAddress fromSockaddr(const sockaddr_in& in) {
  std::array<std::uint8_t, 4> b{};
  std::memcpy(b.data(), &in.sin_addr, 4);
  return {wire::IpAddress::v4(b), ntohs(in.sin_port)};
}

wire::SocketAddress boundAddress(int fd) {
  sockaddr_in in{};
  socklen_t len = sizeof in;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&in), &len);
  return fromSockaddr(in);
}

int openSocket(int type, const wire::SocketAddress& local, int buffer) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  }
  const sockaddr_in in = toSockaddr(local);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&in), sizeof in) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("bind ") + local.toString() + ": " + std::strerror(errno));
  }
  return fd;
}

void connectTo(int fd, const wire::SocketAddress& to) {
  const sockaddr_in in = toSockaddr(to);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&in), sizeof in) != 0) {
    throw std::runtime_error(std::string("connect ") + to.toString() + ": " + std::strerror(errno));
  }
}

void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct Options {
  std::string server = "127.0.0.1:3478";
  std::string transport = "udp";
  bool raw = false;
  unsigned allocations = 10;
  std::string secret;
  std::string user = "load";
  std::string password;
  std::vector<std::string> client_ips{"127.0.0.1"};
  std::string peer_ip = "127.0.0.2";
  std::string peer_netns;  // open the peer sockets in this network namespace (ip netns name)
  std::vector<std::string> own_kernel_threads;  // name prefixes of kernel threads doing our receive work
  unsigned peer_sockets = 16;
  double rate = 50;  // packets/s per allocation and direction; 0 = closed loop
  unsigned window = 32;
  unsigned size = 160;
  double warmup = 1;
  double duration = 5;
  std::string direction = "both";
  int server_pid = 0;
  unsigned concurrency = 64;
  int socket_buffer = 1 << 20;
  double churn = 0;  // seconds of create-use-delete cycles; 0 = one run
  unsigned idle = 0;  // allocations besides --allocations that carry no media
  bool refresh_at_end = false;
  std::string label;
};

enum class State : std::uint8_t {
  kIdle,
  kAllocating,
  kAllocated,
  kBinding,
  kReady,
  kRefreshing,
  kGone,
  kFailed
};

struct Flow {
  int fd = -1;
  wire::SocketAddress local;
  wire::SocketAddress relayed;
  unsigned peer = 0;
  client::TurnSession session{"", ""};
  State state = State::kIdle;
  std::vector<std::uint8_t> pending;  // the request in flight, for retransmission
  Clock::time_point sent_at;
  int attempts = 0;
  std::uint16_t error = 0;
  // Per direction: 0 client->peer, 1 peer->client.
  std::uint64_t sent[2] = {0, 0};
  std::uint64_t received[2] = {0, 0};
  std::uint64_t written_off[2] = {0, 0};  // closed loop: packets given up for lost
  Clock::time_point progress[2];
  std::vector<std::uint8_t> stream;  // TCP: bytes not yet framed
};

struct Peer {
  int fd = -1;
  wire::SocketAddress address;
  // A sendmmsg batch being filled.
  std::vector<std::uint8_t> slots = std::vector<std::uint8_t>(kBatch * kSlot);
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  sockaddr_in to[kBatch]{};
  unsigned queued = 0;
};

class LoadGenerator {
 public:
  explicit LoadGenerator(Options options) : o_(std::move(options)) {
    auto server = wire::SocketAddress::parse(o_.server);
    if (!server || !server->ip.isV4()) throw std::runtime_error("--server must be IPv4:PORT");
    server_ = *server;
    tcp_ = o_.transport == "tcp";
    if (o_.size < kHeader) throw std::runtime_error("--size must be at least 32");
    up_ = o_.direction != "down";
    down_ = o_.direction != "up";
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    rx_slots_.resize(kBatch * kSlot);
    for (unsigned i = 0; i < kBatch; ++i) {
      rx_iov_[i] = {rx_slots_.data() + i * kSlot, kSlot};
      rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
      rx_msgs_[i].msg_hdr.msg_iovlen = 1;
      rx_msgs_[i].msg_hdr.msg_name = &rx_from_[i];
      rx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    }
  }

  int run() {
    raiseFileLimit();
    openPeers();
    if (o_.churn > 0) return churn();
    const double cpu_before_setup = serverCpu();
    const long rss_before = o_.server_pid ? bench::residentKiB(o_.server_pid) : -1;
    const auto setup_started = Clock::now();
    openClients();
    if (!o_.raw) {
      allocateAll();
      bindAll();
    }
    const double setup_seconds = std::chrono::duration<double>(Clock::now() - setup_started).count();
    const long rss_after_setup = o_.server_pid ? bench::residentKiB(o_.server_pid) : -1;
    const double setup_cpu = serverCpu() - cpu_before_setup;
    std::size_t ready = 0;
    for (const auto& f : flows_) ready += (o_.raw || f.state == State::kReady) ? 1u : 0u;
    std::fprintf(stderr, "%s: %zu/%zu allocations ready in %.2f s (%.0f allocations/s)\n",
                 o_.label.c_str(), ready, flows_.size(), setup_seconds, allocate_rate_);

    Window window;
    if (o_.duration > 0 && ready > 0) window = traffic();
    const long fds = o_.server_pid ? bench::openFileDescriptors(o_.server_pid) : -1;
    const long rss_end = o_.server_pid ? bench::residentKiB(o_.server_pid) : -1;
    if (!o_.raw && o_.refresh_at_end) refreshAll();
    if (!o_.raw) releaseAll();
    report(ready, setup_seconds, setup_cpu, rss_before, rss_after_setup, rss_end, fds, window);
    return ready == flows_.size() ? 0 : 1;
  }

 private:
  // Cycles until --churn seconds have passed (at least three): open the client sockets,
  // allocate, bind, send media for --duration seconds, delete the allocations (Refresh 0),
  // close the sockets. The server's RSS and open descriptors are read after the first
  // cycle (warm-up) and once everything of the last has ended; a server that leaks per
  // allocation shows it as growth between the two.
  int churn() {
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.churn));
    long rss_warm = -1, fds_warm = -1, rss_peak = -1;
    unsigned cycles = 0;
    std::uint64_t allocated = 0, failed = 0, delivered = 0, lost = 0;
    while (cycles < 3 || Clock::now() < until) {
      flows_.clear();
      openClients();
      allocateAll();
      bindAll();
      for (const auto& f : flows_) {
        if (f.state == State::kReady) {
          ++allocated;
        } else {
          ++failed;
        }
      }
      if (o_.duration > 0) {
        const Window w = traffic();
        for (int d = 0; d < 2; ++d) {
          delivered += w.received_total[d];
          lost += w.sent_total[d] - w.received_total[d];
        }
      }
      rss_peak = std::max(rss_peak, bench::residentKiB(o_.server_pid));
      releaseAll();
      ++cycles;
      settle();
      const long rss = bench::residentKiB(o_.server_pid);
      std::fprintf(stderr, "%s: cycle %u: RSS %ld KiB, %ld descriptors\n", o_.label.c_str(), cycles, rss,
                   bench::openFileDescriptors(o_.server_pid));
      if (cycles == 1) {
        rss_warm = rss;
        fds_warm = bench::openFileDescriptors(o_.server_pid);
      }
    }
    settle();
    const long rss_end = bench::residentKiB(o_.server_pid);
    const long fds_end = bench::openFileDescriptors(o_.server_pid);
    std::printf(
        "{\"label\":\"%s\",\"churn_seconds\":%.0f,\"cycles\":%u,\"allocations_per_cycle\":%u,"
        "\"allocated\":%llu,\"failed\":%llu,\"delivered\":%llu,\"lost\":%llu,"
        "\"rss_warm_kib\":%ld,\"rss_peak_kib\":%ld,\"rss_end_kib\":%ld,\"fds_warm\":%ld,\"fds_end\":%ld}\n",
        o_.label.c_str(), o_.churn, cycles, o_.allocations, static_cast<unsigned long long>(allocated),
        static_cast<unsigned long long>(failed), static_cast<unsigned long long>(delivered),
        static_cast<unsigned long long>(lost), rss_warm, rss_peak, rss_end, fds_warm, fds_end);
    std::fprintf(stderr, "%s: %u cycles of %u allocations; RSS %ld KiB after warm-up, %ld at the end (peak %ld); "
                 "descriptors %ld -> %ld\n", o_.label.c_str(), cycles, o_.allocations, rss_warm, rss_end, rss_peak,
                 fds_warm, fds_end);
    return failed == 0 ? 0 : 1;
  }

  // Until the server's descriptor count stops falling (its deletes and closes are done).
  void settle() const {
    long last = -2;
    for (int i = 0; i < 50; ++i) {
      ::usleep(100 * 1000);
      const long now = bench::openFileDescriptors(o_.server_pid);
      if (now == last) return;
      last = now;
    }
  }

  struct Window {
    double seconds = 0;
    double server_cpu = 0;
    double own_cpu = 0;
    double machine_cpu = 0;  // busy CPU seconds of the whole machine (/proc/stat)
    double own_kthreads_cpu = 0;  // of the --own-kernel-threads
    std::uint64_t delivered[2] = {0, 0};
    std::uint64_t sent_total[2] = {0, 0};
    std::uint64_t received_total[2] = {0, 0};
    bench::LatencyHistogram latency[2];
    // The longest time between two packets one flow received in one direction while
    // measuring (and from a flow's last packet to the end): what a call hears as a gap.
    std::uint64_t max_gap_us[2] = {0, 0};
    std::int64_t max_gap_from_unix_ms[2] = {0, 0};  // when it began, to line up with a server log
  };

  static void raiseFileLimit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }

  double serverCpu() const { return o_.server_pid ? bench::cpuSeconds(o_.server_pid) : 0; }

  void watch(int fd, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }

  static constexpr std::uint64_t kPeerTag = 1ull << 40;

  // Joins the network namespace `path` for this thread; returns a descriptor of the one it
  // left, to come back with setns(). A socket stays in the namespace it was created in.
  static int enterNamespace(const std::string& path) {
    const int home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (home < 0 || target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
      const std::string error = std::strerror(errno);
      if (home >= 0) ::close(home);
      if (target >= 0) ::close(target);
      throw std::runtime_error("--peer-netns " + path + ": " + error);
    }
    ::close(target);
    return home;
  }

  void openPeers() {
    const auto ip = wire::IpAddress::parse(o_.peer_ip);
    if (!ip || !ip->isV4()) throw std::runtime_error("--peer-ip must be IPv4");
    // --peer-netns: the peers live in their own namespace behind the relay (bench/compare.py
    // --topology veth), while the clients and the one clock stay in this process.
    const int home = o_.peer_netns.empty() ? -1 : enterNamespace("/run/netns/" + o_.peer_netns);
    peers_.resize(std::max(1u, std::min(o_.peer_sockets, o_.allocations)));
    for (std::size_t i = 0; i < peers_.size(); ++i) {
      Peer& p = peers_[i];
      p.fd = openSocket(SOCK_DGRAM, {*ip, 0}, o_.socket_buffer);
      setNonBlocking(p.fd);
      p.address = boundAddress(p.fd);
      for (unsigned m = 0; m < kBatch; ++m) {
        p.msgs[m].msg_hdr.msg_iov = &p.iov[m];
        p.msgs[m].msg_hdr.msg_iovlen = 1;
        p.msgs[m].msg_hdr.msg_name = &p.to[m];
        p.msgs[m].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
      watch(p.fd, kPeerTag | i);
    }
    if (home >= 0) {
      const bool back = ::setns(home, CLONE_NEWNET) == 0;
      ::close(home);
      if (!back) throw std::runtime_error(std::string("setns back: ") + std::strerror(errno));
    }
  }

  void openClients() {
    std::vector<wire::IpAddress> ips;
    for (const auto& text : o_.client_ips) {
      auto ip = wire::IpAddress::parse(text);
      if (!ip || !ip->isV4()) throw std::runtime_error("--client-ip must be IPv4: " + text);
      ips.push_back(*ip);
    }
    const auto now_unix = static_cast<std::int64_t>(std::time(nullptr));
    std::string username = o_.user, password = o_.password;
    if (!o_.secret.empty()) {
      const auto credential = auth::mintRestCredential(o_.secret, o_.user, now_unix, 3600);
      username = credential.username;
      password = credential.password;
    }
    flows_.resize(o_.allocations + o_.idle);
    for (unsigned i = 0; i < flows_.size(); ++i) {
      Flow& f = flows_[i];
      f.fd = openSocket(tcp_ ? SOCK_STREAM : SOCK_DGRAM, {ips[i % ips.size()], 0}, tcp_ ? 0 : o_.socket_buffer);
      if (tcp_) {
        const int one = 1;
        ::setsockopt(f.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      connectTo(f.fd, server_);
      setNonBlocking(f.fd);
      f.local = boundAddress(f.fd);
      f.peer = i % static_cast<unsigned>(peers_.size());
      f.session = client::TurnSession(username, password);
      watch(f.fd, i);
    }
  }

  // --- Set-up: requests with at most --concurrency in flight, retransmitted after 1 s.

  void send(Flow& f, std::vector<std::uint8_t> request) {
    f.pending = std::move(request);
    f.sent_at = Clock::now();
    ++f.attempts;
    (void)::send(f.fd, f.pending.data(), f.pending.size(), MSG_NOSIGNAL);
  }

  template <class Start, class OnResponse>
  void transactAll(State from, State busy, Start start, OnResponse on_response) {
    std::size_t next = 0, in_flight = 0, done = 0;
    const std::size_t total = flows_.size();
    epoll_event events[256];
    while (done < total) {
      while (in_flight < o_.concurrency && next < total) {
        Flow& f = flows_[next++];
        if (f.state != from) {
          ++done;
          continue;
        }
        f.state = busy;
        f.attempts = 0;
        send(f, start(f));
        ++in_flight;
      }
      const int n = ::epoll_wait(epoll_, events, 256, 50);
      for (int e = 0; e < n; ++e) {
        if (events[e].data.u64 & kPeerTag) continue;
        Flow& f = flows_[events[e].data.u64];
        readResponses(f, [&](const wire::MessageView& response) {
          if (f.state != busy) return;
          if (response.transactionId() != wire::MessageView::parse(f.pending)->transactionId()) return;
          const State before = f.state;
          on_response(f, response);
          if (f.state != before) --in_flight, ++done;
        });
      }
      const auto now = Clock::now();
      for (std::size_t i = 0; i < next; ++i) {
        Flow& f = flows_[i];
        if (f.state != busy || now - f.sent_at < std::chrono::seconds(1)) continue;
        if (f.attempts >= 5) {
          f.state = State::kFailed;
          --in_flight, ++done;
          continue;
        }
        f.sent_at = now;
        ++f.attempts;
        (void)::send(f.fd, f.pending.data(), f.pending.size(), MSG_NOSIGNAL);
      }
    }
  }

  template <class F>
  void readResponses(Flow& f, F&& each) {
    std::uint8_t buf[4096];
    while (true) {
      const ssize_t n = ::recv(f.fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      if (!tcp_) {
        if (auto view = wire::MessageView::parse({buf, static_cast<std::size_t>(n)})) each(*view);
        continue;
      }
      f.stream.insert(f.stream.end(), buf, buf + n);
      takeFrames(f, [&](wire::FrameKind kind, wire::Bytes frame) {
        if (kind != wire::FrameKind::kStun) return;
        if (auto view = wire::MessageView::parse(frame)) each(*view);
      });
    }
  }

  // Hands every whole frame (RFC 8656 §6.2 framing) buffered from a TCP stream to `each` and
  // keeps the partial rest.
  template <class F>
  static void takeFrames(Flow& f, F&& each) {
    std::size_t used = 0;
    while (true) {
      const wire::Bytes rest{f.stream.data() + used, f.stream.size() - used};
      const auto info = wire::peekFrame(rest);
      if (info.status != wire::FrameInfo::Status::kComplete) break;
      each(info.kind, rest.first(info.size));
      used += info.size;
    }
    f.stream.erase(f.stream.begin(), f.stream.begin() + static_cast<std::ptrdiff_t>(used));
  }

  void allocateAll() {
    client::TurnSession::AllocateOptions options;
    const double cpu_before = serverCpu();
    const auto started = Clock::now();
    Clock::time_point last = started;
    std::size_t allocated = 0;
    transactAll(
        State::kIdle, State::kAllocating, [&](Flow& f) { return f.session.allocate(options); },
        [&](Flow& f, const wire::MessageView& response) {
          switch (f.session.onResponse(response)) {
            case Outcome::kRetry: send(f, f.session.allocate(options)); break;
            case Outcome::kSuccess:
              f.state = State::kAllocated;
              f.relayed = *f.session.relayed();
              ++allocated;
              last = Clock::now();
              break;
            case Outcome::kError:
              f.state = State::kFailed;
              f.error = f.session.lastErrorCode();
              break;
          }
        });
    const double seconds = std::chrono::duration<double>(last - started).count();
    allocate_rate_ = seconds > 0 ? static_cast<double>(allocated) / seconds : 0;
    allocate_cpu_ = serverCpu() - cpu_before;
  }

  void bindAll() {
    transactAll(
        State::kAllocated, State::kBinding,
        [&](Flow& f) { return f.session.channelBind(kChannel, peers_[f.peer].address); },
        [&](Flow& f, const wire::MessageView& response) {
          switch (f.session.onResponse(response)) {
            case Outcome::kRetry: send(f, f.session.channelBind(kChannel, peers_[f.peer].address)); break;
            case Outcome::kSuccess: f.state = State::kReady; break;
            case Outcome::kError:
              f.state = State::kFailed;
              f.error = f.session.lastErrorCode();
              break;
          }
        });
  }

  // One Refresh per allocation, answered or given up after five tries: `kept_` counts the
  // allocations the server still knows (say after `tern serve` upgraded itself in place).
  void refreshAll() {
    kept_ = 0;
    refresh_error_ = 0;
    transactAll(
        State::kReady, State::kRefreshing, [&](Flow& f) { return f.session.refresh(std::nullopt); },
        [&](Flow& f, const wire::MessageView& response) {
          switch (f.session.onResponse(response)) {
            case Outcome::kRetry:
              send(f, f.session.refresh(std::nullopt));
              break;
            case Outcome::kSuccess:
              f.state = State::kReady;
              ++kept_;
              break;
            case Outcome::kError:
              f.state = State::kGone;
              if (refresh_error_ == 0) refresh_error_ = f.session.lastErrorCode();
              break;
          }
        });
  }

  void releaseAll() {
    for (auto& f : flows_) {
      if (f.state != State::kReady && f.state != State::kAllocated) continue;
      const auto request = f.session.refresh(0);
      (void)::send(f.fd, request.data(), request.size(), MSG_NOSIGNAL);
    }
    // Give the server a moment to read them before the sockets close.
    ::usleep(200 * 1000);
    for (auto& f : flows_) ::close(f.fd);
  }

  // --- Traffic

  bool active(const Flow& f) const { return o_.raw || f.state == State::kReady; }
  bool carriesMedia(std::size_t i) const { return i < o_.allocations && active(flows_[i]); }

  // Builds the client->peer packet of flow `i` into `out`; returns its size.
  std::size_t buildUp(std::uint32_t i, std::uint8_t* out) {
    Flow& f = flows_[i];
    std::uint8_t* payload = out;
    std::size_t extra = 0;
    if (!o_.raw) {
      wire::writeChannelDataHeader(out, kChannel, static_cast<std::uint16_t>(o_.size));
      payload = out + wire::kChannelDataHeaderSize;
      extra = wire::kChannelDataHeaderSize + (tcp_ ? wire::padTo4(o_.size) - o_.size : 0);
    } else {
      const sockaddr_in to = toSockaddr(peers_[f.peer].address);
      std::memcpy(payload, &to.sin_addr, 4);
      std::memcpy(payload + 4, &to.sin_port, 2);
    }
    writeStamp(payload, {i, 0, f.sent[0]++, nowNs()});
    return o_.size + extra;
  }

  void sendUp(std::uint32_t i, unsigned count) {
    Flow& f = flows_[i];
    std::uint8_t buf[kBatch][kSlot];
    mmsghdr msgs[kBatch]{};
    iovec iov[kBatch]{};
    count = std::min(count, kBatch);
    for (unsigned k = 0; k < count; ++k) {
      std::memset(buf[k], 0, kHeader + 8);
      iov[k] = {buf[k], buildUp(i, buf[k])};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    if (tcp_) {
      // One write for the burst: frames back to back on the stream.
      std::vector<std::uint8_t> all;
      for (unsigned k = 0; k < count; ++k) all.insert(all.end(), buf[k], buf[k] + iov[k].iov_len);
      const ssize_t n = ::send(f.fd, all.data(), all.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(all.size())) {
        // A stream cannot drop half a frame; count the unsent frames as not sent.
        const std::size_t written = n > 0 ? static_cast<std::size_t>(n) : 0;
        if (written % iov[0].iov_len != 0) throw std::runtime_error("partial TCP frame write");
        f.sent[0] -= count - written / iov[0].iov_len;
      }
      return;
    }
    if (count == 1) {
      (void)::send(f.fd, buf[0], iov[0].iov_len, 0);
    } else {
      (void)::sendmmsg(f.fd, msgs, count, 0);
    }
  }

  void queueDown(std::uint32_t i) {
    Flow& f = flows_[i];
    Peer& p = peers_[f.peer];
    if (p.queued == kBatch) flushPeer(p);
    std::uint8_t* payload = p.slots.data() + p.queued * kSlot;
    std::memset(payload, 0, kHeader);
    sockaddr_in to = toSockaddr(o_.raw ? f.local : f.relayed);
    if (o_.raw) {
      std::memcpy(payload, &to.sin_addr, 4);
      std::memcpy(payload + 4, &to.sin_port, 2);
      to = toSockaddr(server_);
    }
    writeStamp(payload, {i, 1, f.sent[1]++, nowNs()});
    p.iov[p.queued] = {payload, o_.size};
    p.to[p.queued] = to;
    ++p.queued;
  }

  void flushPeer(Peer& p) {
    unsigned done = 0;
    while (done < p.queued) {
      const int n = ::sendmmsg(p.fd, p.msgs + done, p.queued - done, 0);
      if (n <= 0) break;  // buffer full: the rest is lost, and counted as lost
      done += static_cast<unsigned>(n);
    }
    p.queued = 0;
  }

  void onPayload(const std::uint8_t* payload, std::size_t size, Window& w, bool measuring) {
    if (size < kHeader) return;
    const Stamp s = readStamp(payload);
    if (s.flow >= flows_.size() || s.direction > 1) return;
    Flow& f = flows_[s.flow];
    ++f.received[s.direction];
    const auto arrived = Clock::now();
    if (measuring) {
      const auto gap =
          std::chrono::duration_cast<std::chrono::microseconds>(arrived - f.progress[s.direction]);
      if (static_cast<std::uint64_t>(gap.count()) > w.max_gap_us[s.direction]) {
        w.max_gap_us[s.direction] = static_cast<std::uint64_t>(gap.count());
        w.max_gap_from_unix_ms[s.direction] = unixMs() - gap.count() / 1000;
      }
    }
    f.progress[s.direction] = arrived;
    if (measuring) {
      ++w.delivered[s.direction];
      const auto now = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(arrived.time_since_epoch()).count());
      w.latency[s.direction].record(now > s.sent_ns ? (now - s.sent_ns) / 1000 : 0);
    }
  }

  void receive(std::uint64_t tag, Window& w, bool measuring) {
    if (tag & kPeerTag) {
      Peer& p = peers_[tag & ~kPeerTag];
      while (true) {
        const int n = ::recvmmsg(p.fd, rx_msgs_, kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) return;
        for (int k = 0; k < n; ++k) onPayload(rx_slots_.data() + static_cast<std::size_t>(k) * kSlot, rx_msgs_[k].msg_len, w, measuring);
        // epoll is level-triggered: a short batch means drained, and saves a call that
        // would only say EAGAIN (the generator shares the cores with the server).
        if (n < static_cast<int>(kBatch)) return;
      }
    }
    Flow& f = flows_[tag];
    if (tcp_) {
      std::uint8_t buf[65536];
      while (true) {
        const ssize_t n = ::recv(f.fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        f.stream.insert(f.stream.end(), buf, buf + n);
      }
      takeFrames(f, [&](wire::FrameKind kind, wire::Bytes frame) {
        if (kind != wire::FrameKind::kChannelData) return;
        onPayload(frame.data() + wire::kChannelDataHeaderSize, frame.size() - wire::kChannelDataHeaderSize, w,
                  measuring);
      });
      return;
    }
    while (true) {
      const int n = ::recvmmsg(f.fd, rx_msgs_, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      const bool drained = n < static_cast<int>(kBatch);
      for (int k = 0; k < n; ++k) {
        const std::uint8_t* data = rx_slots_.data() + static_cast<std::size_t>(k) * kSlot;
        const std::size_t size = rx_msgs_[k].msg_len;
        if (o_.raw) {
          onPayload(data, size, w, measuring);
        } else if (auto cd = wire::ChannelDataView::parse({data, size})) {
          onPayload(cd->data.data(), cd->data.size(), w, measuring);
        }
      }
      if (drained) return;
    }
  }

  Window traffic() {
    Window w;
    std::vector<std::uint32_t> order;
    for (std::uint32_t i = 0; i < flows_.size(); ++i) {
      if (carriesMedia(i)) order.push_back(i);
    }
    const auto start = Clock::now();
    const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.warmup));
    const auto measure_to =
        measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.duration));
    for (auto& f : flows_) f.progress[0] = f.progress[1] = start;
    // Fixed rate: every flow sends once per interval, staggered evenly across it; a cursor
    // walks the flows in order, so each tick costs only the packets it sends.
    const double interval = o_.rate > 0 ? 1.0 / o_.rate : 0;
    std::uint64_t slots_done = 0;
    bool measuring = false;
    double cpu_from = 0, machine_from = 0, kthreads_from = 0;
    rusage own_from{};
    epoll_event events[256];
    while (true) {
      const auto now = Clock::now();
      if (!measuring && now >= measure_from) {
        measuring = true;
        cpu_from = serverCpu();
        machine_from = bench::machineBusySeconds();
        kthreads_from = bench::threadsCpuSeconds(o_.own_kernel_threads);
        ::getrusage(RUSAGE_SELF, &own_from);
      }
      if (now >= measure_to) {
        trailingGaps(now, w);
        break;
      }
      if (o_.rate > 0) {
        const double elapsed = std::chrono::duration<double>(now - start).count();
        const auto due = static_cast<std::uint64_t>(elapsed / interval * static_cast<double>(order.size()));
        for (; slots_done < due; ++slots_done) {
          const std::uint32_t i = order[slots_done % order.size()];
          if (up_) sendUp(i, 1);
          if (down_) queueDown(i);
        }
      } else {
        // Closed loop: keep `window` packets in flight per flow and direction; a flow that
        // made no progress for 100 ms writes its outstanding packets off as lost.
        for (std::uint32_t i : order) {
          Flow& f = flows_[i];
          for (int d = 0; d < 2; ++d) {
            if ((d == 0 && !up_) || (d == 1 && !down_)) continue;
            std::uint64_t outstanding = f.sent[d] - f.received[d] - f.written_off[d];
            if (outstanding >= o_.window && now - f.progress[d] > std::chrono::milliseconds(100)) {
              f.written_off[d] += outstanding;
              f.progress[d] = now;
              outstanding = 0;
            }
            if (outstanding >= o_.window) continue;
            const auto room = static_cast<unsigned>(o_.window - outstanding);
            if (d == 0) {
              sendUp(i, room);
            } else {
              for (unsigned k = 0; k < room; ++k) queueDown(i);
            }
          }
        }
      }
      for (auto& p : peers_) {
        if (p.queued > 0) flushPeer(p);
      }
      const int n = ::epoll_wait(epoll_, events, 256, o_.rate > 0 ? 1 : 0);
      for (int e = 0; e < n; ++e) receive(events[e].data.u64, w, measuring);
    }
    w.seconds = o_.duration;
    w.server_cpu = serverCpu() - cpu_from;
    w.machine_cpu = bench::machineBusySeconds() - machine_from;
    w.own_kthreads_cpu = bench::threadsCpuSeconds(o_.own_kernel_threads) - kthreads_from;
    rusage own_to{};
    ::getrusage(RUSAGE_SELF, &own_to);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    w.own_cpu = seconds(own_to.ru_utime) + seconds(own_to.ru_stime) - seconds(own_from.ru_utime) -
                seconds(own_from.ru_stime);
    // Drain: what is still on its way counts as received, not lost.
    const auto drain_until = Clock::now() + std::chrono::milliseconds(500);
    while (Clock::now() < drain_until) {
      const int n = ::epoll_wait(epoll_, events, 256, 20);
      for (int e = 0; e < n; ++e) receive(events[e].data.u64, w, false);
    }
    for (const auto& f : flows_) {
      for (int d = 0; d < 2; ++d) {
        w.sent_total[d] += f.sent[d];
        w.received_total[d] += f.received[d];
      }
    }
    return w;
  }

  // A flow that went silent shows no gap between packets: count from its last packet to now.
  void trailingGaps(Clock::time_point now, Window& w) const {
    for (std::size_t i = 0; i < flows_.size(); ++i) {
      if (!carriesMedia(i)) continue;
      for (int d = 0; d < 2; ++d) {
        if ((d == 0 && !up_) || (d == 1 && !down_)) continue;
        const auto gap =
            std::chrono::duration_cast<std::chrono::microseconds>(now - flows_[i].progress[d]);
        if (static_cast<std::uint64_t>(gap.count()) > w.max_gap_us[d]) {
          w.max_gap_us[d] = static_cast<std::uint64_t>(gap.count());
          w.max_gap_from_unix_ms[d] = unixMs() - gap.count() / 1000;
        }
      }
    }
  }

  void report(std::size_t ready, double setup_seconds, double setup_cpu, long rss_before, long rss_after_setup,
              long rss_end, long fds, const Window& w) {
    // Set-up failures only: a final Refresh that went unanswered is counted by kept_.
    const std::size_t failed = flows_.size() - ready;
    std::uint16_t first_error = 0;
    for (const auto& f : flows_) {
      if (first_error == 0) first_error = f.error;
    }
    const double pps_up = w.seconds > 0 ? static_cast<double>(w.delivered[0]) / w.seconds : 0;
    const double pps_down = w.seconds > 0 ? static_cast<double>(w.delivered[1]) / w.seconds : 0;
    const double per_cpu = w.server_cpu > 0 ? static_cast<double>(w.delivered[0] + w.delivered[1]) / w.server_cpu : 0;
    const auto loss = [&](int d) {
      return w.sent_total[d] > 0 ? 1.0 - static_cast<double>(w.received_total[d]) / static_cast<double>(w.sent_total[d])
                                 : 0.0;
    };
    const double rss_per_allocation =
        rss_before >= 0 && ready > 0 ? static_cast<double>(rss_after_setup - rss_before) * 1024.0 / static_cast<double>(ready) : -1;
    std::printf(
        "{\"label\":\"%s\",\"transport\":\"%s\",\"raw\":%s,\"allocations\":%u,\"ready\":%zu,\"failed\":%zu,"
        "\"first_error\":%u,\"setup_seconds\":%.3f,\"allocations_per_second\":%.1f,\"setup_server_cpu\":%.3f,\"allocate_server_cpu\":%.3f,"
        "\"size\":%u,\"rate\":%.1f,\"seconds\":%.2f,\"pps_up\":%.1f,\"pps_down\":%.1f,"
        "\"server_cpu\":%.3f,\"generator_cpu\":%.3f,\"machine_cpu\":%.3f,\"generator_kthreads_cpu\":%.3f,\"packets_per_server_cpu_second\":%.1f,"
        "\"sent_up\":%llu,\"sent_down\":%llu,\"received_up\":%llu,\"received_down\":%llu,"
        "\"loss_up\":%.6f,\"loss_down\":%.6f,"
        "\"latency_up_us\":{\"p50\":%llu,\"p99\":%llu,\"max\":%llu},"
        "\"latency_down_us\":{\"p50\":%llu,\"p99\":%llu,\"max\":%llu},"
        "\"rss_before_kib\":%ld,\"rss_after_setup_kib\":%ld,\"rss_end_kib\":%ld,\"rss_per_allocation_bytes\":%.0f,"
        "\"server_fds\":%ld,\"idle\":%u,\"max_gap_up_us\":%llu,\"max_gap_down_us\":%llu,\"kept\":%ld,"
        "\"refresh_error\":%u,\"max_gap_up_from_unix_ms\":%lld,\"max_gap_down_from_unix_ms\":%lld}\n",
        o_.label.c_str(), o_.transport.c_str(), o_.raw ? "true" : "false", o_.allocations, ready, failed, first_error,
        setup_seconds, allocate_rate_, setup_cpu, allocate_cpu_, o_.size, o_.rate, w.seconds, pps_up, pps_down, w.server_cpu,
        w.own_cpu, w.machine_cpu, w.own_kthreads_cpu, per_cpu, static_cast<unsigned long long>(w.sent_total[0]),
        static_cast<unsigned long long>(w.sent_total[1]), static_cast<unsigned long long>(w.received_total[0]),
        static_cast<unsigned long long>(w.received_total[1]), loss(0), loss(1),
        static_cast<unsigned long long>(w.latency[0].quantile(0.5)),
        static_cast<unsigned long long>(w.latency[0].quantile(0.99)), static_cast<unsigned long long>(w.latency[0].max()),
        static_cast<unsigned long long>(w.latency[1].quantile(0.5)),
        static_cast<unsigned long long>(w.latency[1].quantile(0.99)), static_cast<unsigned long long>(w.latency[1].max()),
        rss_before, rss_after_setup, rss_end, rss_per_allocation, fds, o_.idle,
        static_cast<unsigned long long>(w.max_gap_us[0]), static_cast<unsigned long long>(w.max_gap_us[1]), kept_,
        static_cast<unsigned>(refresh_error_), static_cast<long long>(w.max_gap_from_unix_ms[0]),
        static_cast<long long>(w.max_gap_from_unix_ms[1]));
    std::fflush(stdout);
    std::fprintf(stderr,
                 "%s: up %.0f pps, down %.0f pps, loss %.4f%%/%.4f%%, p99 %llu/%llu us, server %.2f cpu-s, "
                 "%.0f packets per server cpu-s, generator %.2f cpu-s\n",
                 o_.label.c_str(), pps_up, pps_down, 100 * loss(0), 100 * loss(1),
                 static_cast<unsigned long long>(w.latency[0].quantile(0.99)),
                 static_cast<unsigned long long>(w.latency[1].quantile(0.99)), w.server_cpu, per_cpu, w.own_cpu);
  }

  Options o_;
  wire::SocketAddress server_;
  bool tcp_ = false;
  bool up_ = true, down_ = true;
  int epoll_ = -1;
  std::vector<Flow> flows_;
  std::vector<Peer> peers_;
  double allocate_rate_ = 0;
  double allocate_cpu_ = 0;  // the server's CPU seconds during allocateAll()
  long kept_ = -1;           // allocations that answered the final Refresh; -1: not asked
  std::uint16_t refresh_error_ = 0;
  std::vector<std::uint8_t> rx_slots_;
  mmsghdr rx_msgs_[kBatch]{};
  iovec rx_iov_[kBatch]{};
  sockaddr_in rx_from_[kBatch]{};
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"tern-load: TURN load generator (see bench/README.md)"};
  app.add_option("--server", o.server, "TURN server (or forwarder with --raw), IPv4:PORT")->capture_default_str();
  app.add_option("--transport", o.transport, "Client transport")->check(CLI::IsMember({"udp", "tcp"}))->capture_default_str();
  app.add_flag("--raw", o.raw, "Talk to bench/forwarder: no TURN, destination in the payload");
  app.add_option("--allocations", o.allocations, "Allocations (one client socket each)")->capture_default_str();
  app.add_option("--secret", o.secret, "TURN REST API secret (else --user/--password)");
  app.add_option("--user", o.user, "Username (with --secret: the REST user part)")->capture_default_str();
  app.add_option("--password", o.password, "Password for a static user");
  app.add_option("--client-ip", o.client_ips, "Local IPs for client sockets, used in turn (repeatable)");
  app.add_option("--peer-ip", o.peer_ip, "Local IP of the peer sockets")->capture_default_str();
  app.add_option("--own-kernel-threads", o.own_kernel_threads,
                 "Kernel threads (name prefix, repeatable) whose CPU time is the generator's own: its "
                 "interfaces' threaded NAPI receive work, reported as generator_kthreads_cpu");
  app.add_option("--peer-netns", o.peer_netns,
                 "Open the peer sockets in this network namespace (a name under /run/netns; needs "
                 "CAP_SYS_ADMIN); the clients stay in the current one");
  app.add_option("--peer-sockets", o.peer_sockets, "Peer sockets the allocations share")->capture_default_str();
  app.add_option("--rate", o.rate, "Packets/s per allocation and direction; 0 = closed loop at the maximum")
      ->capture_default_str();
  app.add_option("--window", o.window, "Closed loop: packets in flight per flow and direction")->capture_default_str();
  app.add_option("--size", o.size, "Payload bytes (at least 32)")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Seconds of traffic before measuring")->capture_default_str();
  app.add_option("--duration", o.duration, "Seconds measured; 0 = set up, report memory, release")->capture_default_str();
  app.add_option("--direction", o.direction, "Traffic direction")->check(CLI::IsMember({"both", "up", "down"}))
      ->capture_default_str();
  app.add_option("--server-pid", o.server_pid, "PID of the server, for its CPU seconds, RSS and open files");
  app.add_option("--concurrency", o.concurrency, "Set-up requests in flight")->capture_default_str();
  app.add_option("--socket-buffer", o.socket_buffer, "SO_RCVBUF/SO_SNDBUF of UDP sockets")->capture_default_str();
  app.add_option("--churn", o.churn,
                 "Seconds of cycles: allocate, bind, send for --duration, delete; reports the server's RSS and "
                 "descriptors after the first cycle and at the end (needs --server-pid)");
  app.add_option("--idle", o.idle, "Allocations set up besides --allocations that carry no media")
      ->capture_default_str();
  app.add_flag("--refresh-at-end", o.refresh_at_end,
               "After the traffic, one Refresh on every allocation: reports how many the server "
               "still knows (kept)");
  app.add_option("--label", o.label, "Name of this run in the output");
  CLI11_PARSE(app, argc, argv);
  if (o.label.empty()) o.label = o.raw ? "forwarder" : "turn";
  try {
    LoadGenerator generator(o);
    return generator.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tern-load: %s\n", e.what());
    return 2;
  }
}
