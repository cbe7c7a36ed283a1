// The "physical limit" row of bench/compare: a bare UDP forwarder with no protocol at all.
// Each thread owns one SO_REUSEPORT socket on the same port, receives with recvmmsg, reads the
// destination from the first 6 bytes of each payload (IPv4 address, port; written there by
// bench/load --raw) and sends the batch back out with one sendmmsg. What a TURN relay must do
// beyond this (STUN, ChannelData, permissions, a socket per allocation) is what it costs.
//
//   tern-forwarder --listen 127.0.0.1:3479 [--threads 2]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr unsigned kBatch = 64;
constexpr std::size_t kSlot = 2048;

std::atomic<bool> g_stop{false};

bool parseAddress(const std::string& text, sockaddr_in& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::memset(&out, 0, sizeof out);
  out.sin_family = AF_INET;
  out.sin_port = htons(static_cast<std::uint16_t>(std::atoi(text.c_str() + colon + 1)));
  return inet_pton(AF_INET, text.substr(0, colon).c_str(), &out.sin_addr) == 1;
}

int openSocket(const sockaddr_in& address) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  const int buffer = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  // A receive timeout lets the thread notice SIGTERM without another file descriptor.
  const timeval tick{0, 200 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    std::perror("bind");
    std::exit(1);
  }
  return fd;
}

void forward(int fd) {
  std::vector<char> slots(kBatch * kSlot);
  mmsghdr in[kBatch]{};
  mmsghdr out[kBatch]{};
  iovec in_iov[kBatch]{};
  iovec out_iov[kBatch]{};
  sockaddr_in destinations[kBatch]{};
  for (unsigned i = 0; i < kBatch; ++i) {
    in_iov[i] = {slots.data() + i * kSlot, kSlot};
    in[i].msg_hdr.msg_iov = &in_iov[i];
    in[i].msg_hdr.msg_iovlen = 1;
  }
  while (!g_stop.load(std::memory_order_relaxed)) {
    const int n = ::recvmmsg(fd, in, kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;  // timeout (a chance to see g_stop) or EINTR
    unsigned count = 0;
    for (int i = 0; i < n; ++i) {
      const unsigned length = in[i].msg_len;
      if (length < 6) continue;
      const char* data = static_cast<const char*>(in_iov[i].iov_base);
      sockaddr_in& to = destinations[count];
      to.sin_family = AF_INET;
      std::memcpy(&to.sin_addr, data, 4);
      std::memcpy(&to.sin_port, data + 4, 2);
      out_iov[count] = {in_iov[i].iov_base, length};
      out[count].msg_hdr = {};
      out[count].msg_hdr.msg_name = &to;
      out[count].msg_hdr.msg_namelen = sizeof to;
      out[count].msg_hdr.msg_iov = &out_iov[count];
      out[count].msg_hdr.msg_iovlen = 1;
      ++count;
    }
    unsigned sent = 0;
    while (sent < count) {
      const int r = ::sendmmsg(fd, out + sent, count - sent, 0);
      if (r <= 0) break;  // a full send buffer drops the rest, as a relay would
      sent += static_cast<unsigned>(r);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:3479";
  unsigned threads = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = static_cast<unsigned>(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--listen IPV4:PORT] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  sockaddr_in address{};
  if (!parseAddress(listen, address) || threads == 0) {
    std::fprintf(stderr, "bad --listen or --threads\n");
    return 2;
  }
  struct sigaction stop {};
  stop.sa_handler = [](int) { g_stop.store(true); };
  ::sigaction(SIGTERM, &stop, nullptr);
  ::sigaction(SIGINT, &stop, nullptr);
  std::vector<int> sockets;
  for (unsigned t = 0; t < threads; ++t) sockets.push_back(openSocket(address));
  std::printf("forwarding on %s with %u threads\n", listen.c_str(), threads);
  std::fflush(stdout);
  std::vector<std::thread> workers;
  for (int fd : sockets) workers.emplace_back(forward, fd);
  for (auto& w : workers) w.join();
  for (int fd : sockets) ::close(fd);
  return 0;
}
