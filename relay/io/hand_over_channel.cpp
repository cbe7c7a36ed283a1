// Framing, descriptor passing (unix(7) SCM_RIGHTS) and peer checks (SO_PEERCRED) of the
// hand-over channel; see hand_over_channel.hpp for the format.
#include "relay/io/hand_over_channel.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <thread>

namespace tern::io {
namespace {

using Deadline = HandOverChannel::Deadline;
using Clock = std::chrono::steady_clock;

std::string errnoText(const std::string& step, int error) {
  return "hand-over channel: " + step + ": " + std::strerror(error);
}

// Milliseconds left until `deadline`, rounded up so poll never wakes just short of it.
int millisecondsLeft(Deadline deadline) noexcept {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

// Waits until `fd` is ready for `events` (or has an error or hang-up, which the next call
// reports), or the deadline passes: then the text says what was being waited for.
std::optional<std::string> waitReady(int fd, short events, Deadline deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, millisecondsLeft(deadline));
    if (n > 0) return std::nullopt;
    if (n < 0 && errno != EINTR) return errnoText("poll", errno);
    if (n == 0 && Clock::now() >= deadline) {
      return std::string("hand-over channel: timed out ") + what;
    }
  }
}

std::optional<std::string> sendAll(int fd, wire::Bytes bytes, Deadline deadline) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a peer that died is an error text here, not a SIGPIPE for the process.
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto error = waitReady(fd, POLLOUT, deadline, "sending")) return error;
    } else if (n < 0 && errno != EINTR) {
      return errnoText("send", errno);
    }
  }
  return std::nullopt;
}

// One batch record carrying `fds` (at most kMaxFdsPerBatch). The descriptors travel with the
// first byte the kernel accepts; the rest of the record follows as plain bytes.
std::optional<std::string> sendBatch(int fd, std::span<const int> fds, Deadline deadline) {
  std::array<std::uint8_t, HandOverChannel::kBatchRecordSize> record{};
  wire::storeU32(record.data(), static_cast<std::uint32_t>(fds.size()));
  union {
    cmsghdr align;
    std::array<char, CMSG_SPACE(sizeof(int) * HandOverChannel::kMaxFdsPerBatch)> bytes;
  } control{};
  const std::size_t fd_bytes = sizeof(int) * fds.size();
  iovec iov{record.data(), record.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes.data();
  msg.msg_controllen = CMSG_SPACE(fd_bytes);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(fd_bytes);
  std::memcpy(CMSG_DATA(cmsg), fds.data(), fd_bytes);
  for (;;) {
    const ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      return sendAll(fd, wire::Bytes(record).subspan(static_cast<std::size_t>(n)), deadline);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto error = waitReady(fd, POLLOUT, deadline, "sending descriptors")) return error;
    } else if (n < 0 && errno != EINTR) {
      // ETOOMANYREFS: more descriptors in flight than RLIMIT_NOFILE allows (unix(7)).
      return errnoText("sendmsg with descriptors", errno);
    }
  }
}

// Reads exactly the bytes asked for, collecting every descriptor that arrives on the way into
// `fds` (in order). Descriptors are owned from the moment recvmsg returns, so an error later
// closes them with the message being built.
class StreamReader {
 public:
  StreamReader(int fd, Deadline deadline, std::vector<FileDescriptor>& fds) noexcept
      : fd_(fd), deadline_(deadline), fds_(fds) {}

  std::optional<std::string> readExact(wire::MutableBytes out, const char* what);

 private:
  void takeDescriptors(msghdr& msg);

  int fd_;
  Deadline deadline_;
  std::vector<FileDescriptor>& fds_;
};

std::optional<std::string> StreamReader::readExact(wire::MutableBytes out, const char* what) {
  while (!out.empty()) {
    union {
      cmsghdr align;
      std::array<char, CMSG_SPACE(sizeof(int) * HandOverChannel::kMaxFdsPerBatch)> bytes;
    } control{};
    iovec iov{out.data(), out.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes.data();
    msg.msg_controllen = control.bytes.size();
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n >= 0) takeDescriptors(msg);
    // The kernel closes what did not fit; the count and order are lost, so is the message.
    if (n >= 0 && (msg.msg_flags & MSG_CTRUNC) != 0) {
      return std::string("hand-over channel: descriptors lost (MSG_CTRUNC) reading ") + what;
    }
    if (n > 0) {
      out = out.subspan(static_cast<std::size_t>(n));
    } else if (n == 0) {
      return std::string("hand-over channel: peer closed the stream reading ") + what;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      const std::string waiting = std::string("waiting for ") + what;
      if (auto error = waitReady(fd_, POLLIN, deadline_, waiting.c_str())) return error;
    } else if (errno != EINTR) {
      return errnoText(std::string("recvmsg reading ") + what, errno);
    }
  }
  return std::nullopt;
}

void StreamReader::takeDescriptors(msghdr& msg) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
      fds_.emplace_back(received);
    }
  }
}

struct Header {
  std::uint16_t type = 0;
  std::uint32_t fd_count = 0;
  std::uint64_t payload_length = 0;
};

std::array<std::uint8_t, HandOverChannel::kHeaderSize> encodeHeader(const Header& h) noexcept {
  std::array<std::uint8_t, HandOverChannel::kHeaderSize> out{};
  wire::storeU32(out.data(), HandOverChannel::kMagic);
  wire::storeU16(out.data() + 4, h.type);
  wire::storeU16(out.data() + 6, 0);
  wire::storeU32(out.data() + 8, h.fd_count);
  wire::storeU32(out.data() + 12, static_cast<std::uint32_t>(h.payload_length >> 32));
  wire::storeU32(out.data() + 16, static_cast<std::uint32_t>(h.payload_length));
  return out;
}

Expected<Header, std::string> decodeHeader(wire::Bytes in) {
  if (wire::loadU32(in.data()) != HandOverChannel::kMagic) {
    return Unexpected(std::string("hand-over channel: bad framing (magic)"));
  }
  Header h;
  h.type = wire::loadU16(in.data() + 4);
  h.fd_count = wire::loadU32(in.data() + 8);
  h.payload_length =
      (std::uint64_t{wire::loadU32(in.data() + 12)} << 32) | wire::loadU32(in.data() + 16);
  if (h.payload_length > HandOverChannel::kMaxPayload) {
    return Unexpected("hand-over channel: payload of " + std::to_string(h.payload_length) +
                      " bytes is over the limit");
  }
  if (h.fd_count > HandOverChannel::kMaxDescriptors) {
    return Unexpected("hand-over channel: " + std::to_string(h.fd_count) +
                      " descriptors is over the limit");
  }
  return h;
}

// The batch records of a message: each must bring exactly the descriptors it announces, which
// the kernel delivers with the record's first byte.
std::optional<std::string> receiveBatches(StreamReader& reader, std::uint32_t fd_count,
                                          const std::vector<FileDescriptor>& fds) {
  std::size_t expected = 0;
  while (expected < fd_count) {
    std::array<std::uint8_t, HandOverChannel::kBatchRecordSize> record{};
    if (auto error = reader.readExact(record, "a descriptor batch")) return error;
    const std::uint32_t batch = wire::loadU32(record.data());
    if (batch == 0 || batch > HandOverChannel::kMaxFdsPerBatch || batch > fd_count - expected) {
      return std::string("hand-over channel: bad framing (batch of ") + std::to_string(batch) +
             " descriptors)";
    }
    expected += batch;
    if (fds.size() != expected) {
      return "hand-over channel: descriptors lost (" + std::to_string(fds.size()) + " of " +
             std::to_string(expected) + " arrived)";
    }
  }
  return std::nullopt;
}

// SO_PEERCRED: the peer's credentials as of its connect()/listen(). Only a process of our own
// uid may hand us sockets or take ours.
std::optional<std::string> checkPeer(int fd) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    return errnoText("SO_PEERCRED", errno);
  }
  if (cred.uid != ::geteuid()) {
    return "hand-over channel: refused a peer of another user (pid " + std::to_string(cred.pid) +
           ", uid " + std::to_string(cred.uid) + "; this process runs as uid " +
           std::to_string(::geteuid()) + ")";
  }
  return std::nullopt;
}

Expected<sockaddr_un, std::string> unixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path) {
    return Unexpected("hand-over channel: socket path '" + path + "' is empty or longer than " +
                      std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace

std::pair<HandOverChannel, FileDescriptor> HandOverChannel::pair() {
  int ends[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    throw SocketError(errnoText("socketpair", errno), errno);
  }
  // Both ends close on exec: the spawner copies the child's end onto the descriptor the
  // child expects (dup2 clears close-on-exec on the copy alone), so no other copy of either
  // end outlives exec and the new process holds nothing it does not know of.
  return {HandOverChannel(FileDescriptor(ends[0])), FileDescriptor(ends[1])};
}

std::optional<std::string> HandOverChannel::send(std::uint16_t type, wire::Bytes payload,
                                                 std::span<const int> fds, Deadline deadline) {
  if (payload.size() > kMaxPayload) return "hand-over channel: payload over the limit";
  if (fds.size() > kMaxDescriptors) return "hand-over channel: too many descriptors";
  const auto header = encodeHeader({type, static_cast<std::uint32_t>(fds.size()), payload.size()});
  if (auto error = sendAll(fd_.get(), header, deadline)) return error;
  while (!fds.empty()) {
    const auto batch = fds.first(std::min(fds.size(), kMaxFdsPerBatch));
    if (auto error = sendBatch(fd_.get(), batch, deadline)) return error;
    fds = fds.subspan(batch.size());
  }
  return sendAll(fd_.get(), payload, deadline);
}

Expected<HandOverChannel::Message, std::string> HandOverChannel::receive(Deadline deadline) {
  Message message;
  StreamReader reader(fd_.get(), deadline, message.fds);
  std::array<std::uint8_t, kHeaderSize> header_bytes{};
  if (auto error = reader.readExact(header_bytes, "a message header")) return Unexpected(*error);
  // A header never carries descriptors; any here belong to a peer that does not speak this.
  if (!message.fds.empty()) {
    return Unexpected(std::string("hand-over channel: bad framing (descriptors on a header)"));
  }
  auto header = decodeHeader(header_bytes);
  if (!header) return Unexpected(header.error());
  message.type = header->type;
  message.fds.reserve(std::min<std::size_t>(header->fd_count, 4096));
  if (auto error = receiveBatches(reader, header->fd_count, message.fds)) {
    return Unexpected(*error);
  }
  message.payload.resize(header->payload_length);
  if (auto error = reader.readExact(message.payload, "a message payload")) {
    return Unexpected(*error);
  }
  if (message.fds.size() != header->fd_count) {
    return Unexpected(std::string("hand-over channel: descriptors arrived with the payload"));
  }
  return message;
}

HandOverListener::HandOverListener(std::string path) : path_(std::move(path)) {
  auto address = unixAddress(path_);
  if (!address) throw SocketError(address.error(), EINVAL);
  // A socket file left by a process that died is stale; anything else at the path is not ours
  // to delete.
  struct stat existing {};
  if (::lstat(path_.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      throw SocketError("hand-over channel: '" + path_ + "' exists and is not a socket", EEXIST);
    }
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      throw SocketError(errnoText("removing stale '" + path_ + "'", errno), errno);
    }
  }
  fd_ = FileDescriptor(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw SocketError(errnoText("socket", errno), errno);
  if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(sockaddr_un)) != 0) {
    throw SocketError(errnoText("binding '" + path_ + "'", errno), errno);
  }
  // Until chmod the file has the umask's mode; the uid check on accept covers that window.
  struct stat bound {};
  if (::chmod(path_.c_str(), 0600) != 0 || ::lstat(path_.c_str(), &bound) != 0) {
    const int error = errno;
    ::unlink(path_.c_str());
    throw SocketError(errnoText("chmod 0600 '" + path_ + "'", error), error);
  }
  device_ = bound.st_dev;
  inode_ = bound.st_ino;
  if (::listen(fd_.get(), 4) != 0) {
    const int error = errno;
    ::unlink(path_.c_str());
    throw SocketError(errnoText("listening on '" + path_ + "'", error), error);
  }
}

HandOverListener::HandOverListener(HandOverListener&& o) noexcept
    : path_(std::exchange(o.path_, {})),
      fd_(std::move(o.fd_)),
      device_(o.device_),
      inode_(o.inode_) {}

HandOverListener::~HandOverListener() {
  if (path_.empty()) return;
  // A newer listener may have replaced our file (it unlinks stale ones): leave its file be.
  struct stat now {};
  if (::lstat(path_.c_str(), &now) == 0 && now.st_dev == device_ && now.st_ino == inode_) {
    ::unlink(path_.c_str());
  }
}

Expected<HandOverChannel, std::string> HandOverListener::accept(Deadline deadline) {
  for (;;) {
    if (auto error = waitReady(fd_.get(), POLLIN, deadline, "waiting for a hand-over peer")) {
      return Unexpected(*error);
    }
    FileDescriptor peer(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!peer) {
      // ECONNABORTED and the like: the peer gave up before we took it; wait for the next.
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) {
        continue;
      }
      return Unexpected(errnoText("accept", errno));
    }
    if (auto error = checkPeer(peer.get())) return Unexpected(*error);
    // Every call on the channel passes MSG_DONTWAIT itself; the socket stays plainly blocking.
    if (::fcntl(peer.get(), F_SETFL, 0) != 0) return Unexpected(errnoText("fcntl", errno));
    return HandOverChannel(std::move(peer));
  }
}

Expected<HandOverChannel, std::string> connectHandOver(const std::string& path, Deadline deadline,
                                                       bool* nobody_listens) {
  if (nobody_listens != nullptr) *nobody_listens = false;
  auto address = unixAddress(path);
  if (!address) return Unexpected(address.error());
  FileDescriptor fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Unexpected(errnoText("socket", errno));
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(sockaddr_un)) ==
            0 ||
        errno == EISCONN) {
      break;
    }
    // A non-blocking AF_UNIX connect says EAGAIN while the listener's backlog is full and
    // cannot be polled for: retry until the deadline.
    if (errno == EAGAIN && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } else if (errno == EAGAIN) {
      return Unexpected("hand-over channel: timed out connecting to '" + path + "'");
    } else if (errno != EINTR) {
      if (nobody_listens != nullptr) *nobody_listens = errno == ENOENT || errno == ECONNREFUSED;
      return Unexpected(errnoText("connecting to '" + path + "'", errno));
    }
  }
  if (auto error = checkPeer(fd.get())) return Unexpected(*error);
  if (::fcntl(fd.get(), F_SETFL, 0) != 0) return Unexpected(errnoText("fcntl", errno));
  return HandOverChannel(std::move(fd));
}

}  // namespace tern::io
