// The channel an old and a new tern process talk over during an upgrade (issue 20): framed
// messages with descriptors passed by SCM_RIGHTS (unix(7)) over a connected AF_UNIX stream.
// Blocking calls with deadlines (poll), used from a thread of their own, never a worker's loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "relay/io/socket_util.hpp"
#include "relay/wire/bytes.hpp"
#include "relay/wire/expected.hpp"

namespace tern::io {

// One message on the stream, all integers big-endian:
//   header  magic u32 "TnHo" | type u16 | reserved u16 (0) | fd count u32 | payload length u64
//   then, while fewer than `fd count` descriptors came: a batch record, count u32 (1-253), sent
//        by one sendmsg with that many descriptors in its SCM_RIGHTS (the kernel takes at most
//        253 per sendmsg: SCM_MAX_FD), so each batch rides on bytes of its own
//   then    `payload length` bytes.
// Descriptors arrive in the order they were given. The header carries none, so a receiver
// that reads exactly the bytes it expects never pulls in the next message's descriptors.
class HandOverChannel {
 public:
  explicit HandOverChannel(FileDescriptor fd) noexcept : fd_(std::move(fd)) {}

  // A connected pair: the first end for this process, the second for a child, which the
  // spawner copies onto the child's descriptor (both ends close on exec, so no stray copy
  // outlives it). Throws SocketError if the kernel refuses (out of descriptors).
  static std::pair<HandOverChannel, FileDescriptor> pair();

  struct Message {
    std::uint16_t type = 0;
    std::vector<std::uint8_t> payload;
    std::vector<FileDescriptor> fds;
  };
  using Deadline = std::chrono::steady_clock::time_point;

  static constexpr std::uint32_t kMagic = 0x546e486f;  // "TnHo"
  static constexpr std::size_t kHeaderSize = 20;
  static constexpr std::size_t kBatchRecordSize = 4;
  static constexpr std::size_t kMaxFdsPerBatch = 253;  // SCM_MAX_FD in the kernel
  static constexpr std::size_t kMaxPayload = 256u << 20;
  // More than any worker holds; bounds what a corrupt header can make the receiver expect.
  static constexpr std::size_t kMaxDescriptors = 1u << 22;

  // One message: a payload up to kMaxPayload and any number (up to kMaxDescriptors) of
  // descriptors, which stay open here (the kernel passes duplicates). Empty on success, else
  // why. After an error the stream is out of step: close the channel.
  std::optional<std::string> send(std::uint16_t type, wire::Bytes payload, std::span<const int> fds,
                                  Deadline deadline);

  // The next message. Error text on end of stream, deadline, bad framing, a payload over
  // kMaxPayload, or descriptors lost (MSG_CTRUNC); descriptors received before the error are
  // closed. Received descriptors are close-on-exec (MSG_CMSG_CLOEXEC) and owned by Message.
  Expected<Message, std::string> receive(Deadline deadline);

  int fd() const noexcept { return fd_.get(); }

 private:
  FileDescriptor fd_;
};

// For a new process started by something other than the old one (Kubernetes: a new pod on the
// same node, sharing a volume): the old process listens on a path and the new one connects.
class HandOverListener {
 public:
  // Replaces a stale socket file at `path` (never a file of another kind), binds, listens and
  // makes the file 0600. Throws SocketError naming the path and the step that failed.
  explicit HandOverListener(std::string path);
  // Removes the socket file, unless something else has replaced it meanwhile.
  ~HandOverListener();
  HandOverListener(HandOverListener&& o) noexcept;
  HandOverListener& operator=(HandOverListener&&) = delete;
  HandOverListener(const HandOverListener&) = delete;
  HandOverListener& operator=(const HandOverListener&) = delete;

  // The next peer, refused (with the reason, worth a log line) if it runs as another uid.
  Expected<HandOverChannel, std::string> accept(HandOverChannel::Deadline deadline);

  const std::string& path() const noexcept { return path_; }
  // Readable when a peer waits: for an event loop to watch.
  int fd() const noexcept { return fd_.get(); }

 private:
  std::string path_;
  FileDescriptor fd_;
  std::uint64_t device_ = 0;
  std::uint64_t inode_ = 0;
};

// Connects to a HandOverListener at `path`; refused if the listener runs as another uid.
// `nobody_listens`, when given, says whether a failure means no process listens there (no
// file, or a stale one: ENOENT, ECONNREFUSED) rather than one that could not be reached.
Expected<HandOverChannel, std::string> connectHandOver(const std::string& path,
                                                       HandOverChannel::Deadline deadline,
                                                       bool* nobody_listens = nullptr);

}  // namespace tern::io
