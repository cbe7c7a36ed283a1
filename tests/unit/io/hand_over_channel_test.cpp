// The hand-over channel (issue 20): framed messages with descriptors (SCM_RIGHTS) between two
// processes, over socketpairs and a socket path in a temp dir; raw frames for the bad cases.
#include "relay/io/hand_over_channel.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using tern::io::FileDescriptor;
using tern::io::HandOverChannel;
using tern::io::HandOverListener;
using Clock = std::chrono::steady_clock;

TEST_SUITE_BEGIN("io/hand_over_channel");

namespace {

HandOverChannel::Deadline in(std::chrono::milliseconds ms) { return Clock::now() + ms; }
constexpr auto kGenerous = std::chrono::seconds(30);

// Open descriptors of this process: equal counts before and after show nothing leaked.
std::size_t openDescriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

bool sameFile(int a, int b) {
  struct stat sa {};
  struct stat sb {};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

struct Pipe {
  FileDescriptor read;
  FileDescriptor write;
  Pipe() {
    int ends[2] = {-1, -1};
    REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
    read = FileDescriptor(ends[0]);
    write = FileDescriptor(ends[1]);
  }
};

std::array<std::uint8_t, HandOverChannel::kHeaderSize> rawHeader(std::uint32_t magic,
                                                                 std::uint32_t fd_count,
                                                                 std::uint64_t length) {
  std::array<std::uint8_t, HandOverChannel::kHeaderSize> h{};
  tern::wire::storeU32(h.data(), magic);
  tern::wire::storeU16(h.data() + 4, 9);
  tern::wire::storeU32(h.data() + 8, fd_count);
  tern::wire::storeU32(h.data() + 12, static_cast<std::uint32_t>(length >> 32));
  tern::wire::storeU32(h.data() + 16, static_cast<std::uint32_t>(length));
  return h;
}

void writeRaw(int fd, tern::wire::Bytes bytes) {
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
}

// Bytes with one descriptor attached, as a peer of its own making would send them.
void writeRawWithFd(int fd, tern::wire::Bytes bytes, int passed) {
  iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
  union {
    cmsghdr align;
    std::array<char, CMSG_SPACE(sizeof(int))> bytes;
  } control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes.data();
  msg.msg_controllen = control.bytes.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &passed, sizeof passed);
  REQUIRE(::sendmsg(fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

std::array<std::uint8_t, 4> batchRecord(std::uint32_t count) {
  std::array<std::uint8_t, 4> r{};
  tern::wire::storeU32(r.data(), count);
  return r;
}

std::string receiveError(HandOverChannel& channel) {
  auto message = channel.receive(in(std::chrono::seconds(5)));
  REQUIRE_FALSE(message.has_value());
  return message.error();
}

}  // namespace

TEST_CASE("a 10 MiB payload and 1,000 descriptors cross in one message, close-on-exec") {
  Pipe pipe;
  const std::size_t before = openDescriptors();
  {
    auto [sender, child_end] = HandOverChannel::pair();
    HandOverChannel receiver(std::move(child_end));
    std::vector<std::uint8_t> payload(10u << 20);
    for (std::size_t i = 0; i < payload.size(); ++i) {
      payload[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
    }
    // The same descriptor 1,000 times: the kernel installs 1,000 new ones at the receiver, in
    // more than one SCM_RIGHTS batch (at most 253 each).
    const std::vector<int> fds(1000, pipe.write.get());
    std::optional<std::string> send_error{"not sent"};
    std::thread thread([&] { send_error = sender.send(0x0102, payload, fds, in(kGenerous)); });
    auto message = receiver.receive(in(kGenerous));
    thread.join();
    CHECK_FALSE(send_error.has_value());
    REQUIRE_MESSAGE(message.has_value(), (message ? "" : message.error()));
    CHECK(message->type == 0x0102);
    CHECK(message->payload == payload);
    REQUIRE(message->fds.size() == 1000);
    std::size_t same = 0;
    std::size_t cloexec = 0;
    for (const auto& fd : message->fds) {
      if (sameFile(fd.get(), pipe.write.get())) ++same;
      if ((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0) ++cloexec;
    }
    CHECK(same == 1000);
    CHECK(cloexec == 1000);
  }
  CHECK(openDescriptors() == before);
}

TEST_CASE("messages in a row keep their boundaries and their own descriptors") {
  Pipe first;
  Pipe second;
  auto [sender, child_end] = HandOverChannel::pair();
  HandOverChannel receiver(std::move(child_end));
  const std::string a = "allocation snapshot";
  const std::vector<int> a_fds{first.read.get()};
  const std::vector<int> b_fds(300, second.write.get());  // two batches: 253 + 47
  const std::string c = "ack";
  REQUIRE_FALSE(sender.send(1, tern::wire::asBytes(a), a_fds, in(kGenerous)).has_value());
  REQUIRE_FALSE(sender.send(2, {}, b_fds, in(kGenerous)).has_value());
  REQUIRE_FALSE(sender.send(3, tern::wire::asBytes(c), {}, in(kGenerous)).has_value());

  auto ma = receiver.receive(in(kGenerous));
  REQUIRE(ma.has_value());
  CHECK(ma->type == 1);
  CHECK(tern::wire::asText(ma->payload) == a);
  REQUIRE(ma->fds.size() == 1);
  CHECK(sameFile(ma->fds[0].get(), first.read.get()));

  auto mb = receiver.receive(in(kGenerous));
  REQUIRE(mb.has_value());
  CHECK(mb->type == 2);
  CHECK(mb->payload.empty());
  REQUIRE(mb->fds.size() == 300);
  CHECK(sameFile(mb->fds.front().get(), second.write.get()));
  CHECK(sameFile(mb->fds.back().get(), second.write.get()));

  auto mc = receiver.receive(in(kGenerous));
  REQUIRE(mc.has_value());
  CHECK(mc->type == 3);
  CHECK(tern::wire::asText(mc->payload) == c);
  CHECK(mc->fds.empty());
}

TEST_CASE("receive with nobody sending gives up at its deadline") {
  auto [receiver, other_end] = HandOverChannel::pair();
  const auto start = Clock::now();
  auto message = receiver.receive(in(std::chrono::milliseconds(200)));
  const auto took = Clock::now() - start;
  REQUIRE_FALSE(message.has_value());
  CHECK(message.error().find("timed out") != std::string::npos);
  CHECK(took >= std::chrono::milliseconds(200));
  CHECK(took < std::chrono::seconds(2));
}

TEST_CASE("send to a peer that does not read gives up at its deadline") {
  auto [sender, other_end] = HandOverChannel::pair();
  const std::vector<std::uint8_t> payload(10u << 20);  // more than the socket buffers hold
  const auto start = Clock::now();
  const auto error = sender.send(1, payload, {}, in(std::chrono::milliseconds(200)));
  REQUIRE(error.has_value());
  CHECK(error->find("timed out") != std::string::npos);
  CHECK(Clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("send to a peer that closed is an error, not SIGPIPE") {
  auto [sender, other_end] = HandOverChannel::pair();
  other_end = FileDescriptor();
  const std::vector<std::uint8_t> payload(1u << 20);
  const auto error = sender.send(1, payload, {}, in(kGenerous));
  REQUIRE(error.has_value());
  CHECK(error->find("send") != std::string::npos);
}

TEST_CASE("a peer that closes mid-message gives an error, not a hang") {
  SUBCASE("half a header") {
    auto [receiver, other_end] = HandOverChannel::pair();
    const auto header = rawHeader(HandOverChannel::kMagic, 0, 100);
    writeRaw(other_end.get(), tern::wire::Bytes(header).first(10));
    other_end = FileDescriptor();
    CHECK(receiveError(receiver).find("peer closed") != std::string::npos);
  }
  SUBCASE("descriptors already received are closed") {
    Pipe pipe;
    const std::size_t before = openDescriptors();
    {
      auto [receiver, other_end] = HandOverChannel::pair();
      writeRaw(other_end.get(), rawHeader(HandOverChannel::kMagic, 2, 0));
      writeRawWithFd(other_end.get(), batchRecord(1), pipe.read.get());
      other_end = FileDescriptor();
      CHECK(receiveError(receiver).find("peer closed") != std::string::npos);
    }
    CHECK(openDescriptors() == before);
  }
}

TEST_CASE("garbage framing is an error") {
  auto [receiver, other_end] = HandOverChannel::pair();
  SUBCASE("bad magic") {
    writeRaw(other_end.get(), rawHeader(0x47455420, 0, 0));  // "GET "
    CHECK(receiveError(receiver).find("magic") != std::string::npos);
  }
  SUBCASE("a payload over kMaxPayload") {
    writeRaw(other_end.get(),
             rawHeader(HandOverChannel::kMagic, 0, HandOverChannel::kMaxPayload + 1));
    CHECK(receiveError(receiver).find("over the limit") != std::string::npos);
  }
  SUBCASE("a batch that announces no descriptors") {
    writeRaw(other_end.get(), rawHeader(HandOverChannel::kMagic, 1, 0));
    writeRaw(other_end.get(), batchRecord(0));
    CHECK(receiveError(receiver).find("bad framing") != std::string::npos);
  }
  SUBCASE("a batch whose descriptors did not come") {
    writeRaw(other_end.get(), rawHeader(HandOverChannel::kMagic, 1, 0));
    writeRaw(other_end.get(), batchRecord(1));
    CHECK(receiveError(receiver).find("descriptors lost") != std::string::npos);
  }
  SUBCASE("descriptors on a header") {
    Pipe pipe;
    const std::size_t before = openDescriptors();
    writeRawWithFd(other_end.get(), rawHeader(HandOverChannel::kMagic, 0, 0), pipe.read.get());
    CHECK(receiveError(receiver).find("bad framing") != std::string::npos);
    CHECK(openDescriptors() == before);
  }
}

namespace {

// A private directory for socket files, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tern-hand-over-XXXXXX");
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Leaves a socket file at `path` the way a process that died leaves it.
void leaveStaleSocket(const std::string& path) {
  FileDescriptor fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
}

}  // namespace

TEST_CASE("a new process connects to the old one's socket path and they exchange descriptors") {
  TempDir dir;
  const std::string path = dir.path / "hand-over.sock";
  leaveStaleSocket(path);
  Pipe pipe;
  {
    HandOverListener listener(path);
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);

    auto new_side = tern::io::connectHandOver(path, in(kGenerous));
    REQUIRE_MESSAGE(new_side.has_value(), (new_side ? "" : new_side.error()));
    auto old_side = listener.accept(in(kGenerous));
    REQUIRE_MESSAGE(old_side.has_value(), (old_side ? "" : old_side.error()));

    const std::vector<int> fds{pipe.read.get()};
    REQUIRE_FALSE(old_side->send(4, tern::wire::asBytes("hello"), fds, in(kGenerous)).has_value());
    auto message = new_side->receive(in(kGenerous));
    REQUIRE(message.has_value());
    CHECK(tern::wire::asText(message->payload) == "hello");
    REQUIRE(message->fds.size() == 1);
    CHECK(sameFile(message->fds[0].get(), pipe.read.get()));
    REQUIRE_FALSE(new_side->send(5, tern::wire::asBytes("ack"), {}, in(kGenerous)).has_value());
    auto ack = old_side->receive(in(kGenerous));
    REQUIRE(ack.has_value());
    CHECK(ack->type == 5);

    auto nobody = listener.accept(in(std::chrono::milliseconds(100)));
    REQUIRE_FALSE(nobody.has_value());
    CHECK(nobody.error().find("timed out") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a listener refuses to replace a path that is not a socket") {
  TempDir dir;
  const std::string path = dir.path / "not-a-socket";
  { FileDescriptor file(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
  CHECK_THROWS_AS(HandOverListener{path}, tern::io::SocketError);
  CHECK(std::filesystem::is_regular_file(path));
  auto refused = tern::io::connectHandOver(path, in(kGenerous));
  CHECK_FALSE(refused.has_value());
}

TEST_CASE("connecting to a listener of another uid is refused (SO_PEERCRED)") {
  if (::geteuid() != 0) {
    MESSAGE("needs root to run a listener as another uid; skipped");
    return;
  }
  TempDir dir;
  REQUIRE(::chmod(dir.path.c_str(), 0777) == 0);
  const std::string path = dir.path / "foreign.sock";
  int ready[2] = {-1, -1};
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // As nobody: listen on the path, say so, then wait for the parent to close the pipe.
    ::close(ready[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) ::_exit(3);
    if (::listen(fd, 1) != 0 || ::chmod(path.c_str(), 0666) != 0) ::_exit(4);
    char byte = 1;
    if (::write(ready[1], &byte, 1) != 1) ::_exit(5);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  const bool listening = ::read(ready[0], &byte, 1) == 1;
  std::optional<tern::Expected<HandOverChannel, std::string>> refused;
  if (listening) refused.emplace(tern::io::connectHandOver(path, in(kGenerous)));
  ::close(ready[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(listening);
  REQUIRE_FALSE(refused->has_value());
  CHECK(refused->error().find("another user") != std::string::npos);
  CHECK(refused->error().find("uid 65534") != std::string::npos);
}

TEST_CASE("a connect that finds no file or a stale socket file says nobody listens there") {
  TempDir dir;
  const std::string path = dir.path / "hand-over.sock";
  bool nobody = false;
  auto missing = tern::io::connectHandOver(path, in(kGenerous), &nobody);
  REQUIRE_FALSE(missing.has_value());
  CHECK(nobody);  // ENOENT
  leaveStaleSocket(path);
  nobody = false;
  auto stale = tern::io::connectHandOver(path, in(kGenerous), &nobody);
  REQUIRE_FALSE(stale.has_value());
  CHECK(nobody);  // ECONNREFUSED
}

TEST_SUITE_END();
