// Tells systemd what `tern serve` is doing (Type=notify), with the sd_notify(3) datagram
// protocol and without libsystemd: READY=1 once every listener is bound, RELOADING=1 and
// READY=1 around a SIGHUP reload, STOPPING=1 when a drain or a stop begins, and STATUS= lines
// that `systemctl status` shows.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relay/io/socket_util.hpp"

namespace tern::app {

// The datagrams, built apart from any socket so their text is plain to check. sd_notify(3):
// newline-separated VARIABLE=VALUE assignments; a STATUS= value is one line, so newlines in
// it become spaces.
std::string readyMessage(std::string_view status);
// MONOTONIC_USEC is CLOCK_MONOTONIC when the reload began: systemd 253's Type=notify-reload
// requires it beside RELOADING=1; systemd 252 reads RELOADING=1 alone and ignores it.
std::string reloadingMessage(std::uint64_t monotonic_usec, std::string_view status);
std::string stoppingMessage(std::string_view status);
std::string statusMessage(std::string_view status);
// An upgrade: the process that serves the unit from now on (docs/upgrade.md).
std::string mainPidMessage(long pid, std::string_view status);

// The address in $NOTIFY_SOCKET: a filesystem path ("/run/systemd/notify") or an abstract
// socket ("@name", the '@' standing for the leading NUL). Empty for anything else (relative
// paths, vsock addresses, names too long for sun_path).
struct NotifyAddress {
  sockaddr_un address{};
  socklen_t length = 0;
};
std::optional<NotifyAddress> parseNotifySocket(std::string_view value);

// One unix datagram socket, opened only when $NOTIFY_SOCKET names a usable address; every
// call does nothing otherwise (tern started by hand, by a container runtime, by a test). A
// datagram that cannot be sent is logged once and never stops the relay: the notifications
// tell the service manager about the relay, they are not part of relaying.
class ServiceNotifier {
 public:
  // Reads $NOTIFY_SOCKET and removes it from the environment, as sd_notify's
  // unset_environment does, so no child process could speak for tern.
  static ServiceNotifier fromEnvironment();
  ServiceNotifier() = default;
  explicit ServiceNotifier(const NotifyAddress& address);

  bool enabled() const noexcept { return static_cast<bool>(fd_); }
  // noexcept: they run in libuv callbacks, and a notification lost to std::bad_alloc costs
  // only a line in `systemctl status`.
  void ready(std::string_view status) noexcept;
  void reloading(std::string_view status) noexcept;
  void stopping(std::string_view status) noexcept;
  void status(std::string_view status) noexcept;
  // An upgrade: names the new process as the unit's main process, then falls silent; the
  // new process speaks for the unit from here on.
  void handOver(long pid, std::string_view status) noexcept;
  // NOTIFY_SOCKET=... as this process found it, for the new process of an upgrade; empty if
  // it had none.
  const std::string& environmentEntry() const noexcept { return environment_entry_; }

 private:
  template <typename Build>
  void send(Build build) noexcept;

  io::FileDescriptor fd_;
  NotifyAddress address_{};
  bool warned_ = false;
  std::string environment_entry_;
};

}  // namespace tern::app
