// The hand-over socket (--hand-over-socket, docs/upgrade.md "In a container"): a tern started
// beside the running one, not by it (a new Kubernetes pod on the node, sharing a hostPath
// directory), connects on a Unix socket and takes everything over as a spawned child of
// `tern upgrade` does; only the way the channel of upgrade.hpp comes differs.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "relay/app/upgrade.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/hand_over_channel.hpp"
#include "relay/io/uv_handle.hpp"

namespace tern::app {

// The starting process's side: the old process listening on `path`, connected; nothing when
// nobody listens there (no file, or a stale one left by a process that died): an ordinary
// start, which then listens on `path` itself. Throws std::runtime_error when someone is there
// but cannot be reached (another uid, no permission): starting beside it would split its
// clients' packets between two processes.
std::optional<UpgradeFromOld> connectToOld(const std::string& path);

// The running process's side: listens on the path, on the main loop, and hands each process
// that connects to `on_peer` (which starts the hand-over or drops the channel, refusing it).
class HandOverSocket {
 public:
  using OnPeer = std::function<void(io::HandOverChannel)>;
  explicit HandOverSocket(io::EventLoop& loop) : loop_(loop) {}

  // Replaces a stale socket file at `path` (the connect that found nobody came first) or the
  // file of the process this one took over from, which listens no more. Throws
  // io::SocketError naming the path and the step that failed.
  void listen(const std::string& path, OnPeer on_peer);
  // Stops listening and removes the file unless a newer process has replaced it.
  void close() noexcept;

 private:
  void onReadable() noexcept;

  io::EventLoop& loop_;
  OnPeer on_peer_;
  std::optional<io::HandOverListener> listener_;
  std::optional<io::UvHandle<uv_poll_t>> poll_;
};

}  // namespace tern::app
