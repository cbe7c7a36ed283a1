// sd_notify(3) without libsystemd; see service_notifier.hpp.
#include "relay/app/service_notifier.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>

#include "relay/io/log.hpp"

namespace tern::app {

namespace {

std::string statusLine(std::string_view status) {
  std::string line = "STATUS=";
  for (char c : status) line += (c == '\n' || c == '\r') ? ' ' : c;
  return line;
}

std::uint64_t monotonicMicroseconds() noexcept {
  timespec now{};
  // CLOCK_MONOTONIC cannot fail on Linux with a valid pointer; a zero stamp would only make
  // a notify-reload unit ignore this RELOADING=1.
  if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) return 0;
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
         static_cast<std::uint64_t>(now.tv_nsec) / 1000U;
}

}  // namespace

std::string readyMessage(std::string_view status) { return "READY=1\n" + statusLine(status); }

std::string reloadingMessage(std::uint64_t monotonic_usec, std::string_view status) {
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec) + "\n" +
         statusLine(status);
}

std::string stoppingMessage(std::string_view status) { return "STOPPING=1\n" + statusLine(status); }

std::string statusMessage(std::string_view status) { return statusLine(status); }

std::string mainPidMessage(long pid, std::string_view status) {
  return "MAINPID=" + std::to_string(pid) + "\n" + statusLine(status);
}

std::optional<NotifyAddress> parseNotifySocket(std::string_view value) {
  NotifyAddress out;
  out.address.sun_family = AF_UNIX;
  const bool abstract = !value.empty() && value.front() == '@';
  if (value.empty() || (!abstract && value.front() != '/')) return std::nullopt;
  // A path needs room for its terminating NUL; an abstract name is counted by length alone.
  if (value.size() > sizeof(out.address.sun_path) - (abstract ? 0 : 1)) return std::nullopt;
  std::memcpy(out.address.sun_path, value.data(), value.size());
  if (abstract) out.address.sun_path[0] = '\0';
  out.length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + value.size() + (abstract ? 0 : 1));
  return out;
}

ServiceNotifier ServiceNotifier::fromEnvironment() {
  const char* value = std::getenv("NOTIFY_SOCKET");
  if (value == nullptr) return {};
  const std::string copy = value;
  unsetenv("NOTIFY_SOCKET");
  const auto address = parseNotifySocket(copy);
  if (!address) {
    io::log::warn("NOTIFY_SOCKET is not a unix socket address tern can use; not notifying",
                  {{"notify_socket", copy}});
    return {};
  }
  ServiceNotifier notifier(*address);
  notifier.environment_entry_ = "NOTIFY_SOCKET=" + copy;
  return notifier;
}

ServiceNotifier::ServiceNotifier(const NotifyAddress& address) : address_(address) {
  fd_ = io::FileDescriptor(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd_) {
    io::log::warn("cannot open the service manager's notification socket; not notifying",
                  {{"error", std::strerror(errno)}});
  }
}

template <typename Build>
void ServiceNotifier::send(Build build) noexcept {
  if (!fd_) return;
  try {
    const std::string message = build();
    // MSG_NOSIGNAL: a service manager that went away must not raise SIGPIPE.
    const ssize_t sent =
        ::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&address_.address), address_.length);
    if (sent >= 0 || warned_) return;
    warned_ = true;
    io::log::warn("service manager notification failed", {{"error", std::strerror(errno)}});
  } catch (const std::exception&) {  // std::bad_alloc building the text or the log line
  }
}

void ServiceNotifier::ready(std::string_view status) noexcept {
  send([&] { return readyMessage(status); });
}

void ServiceNotifier::reloading(std::string_view status) noexcept {
  send([&] { return reloadingMessage(monotonicMicroseconds(), status); });
}

void ServiceNotifier::stopping(std::string_view status) noexcept {
  send([&] { return stoppingMessage(status); });
}

void ServiceNotifier::status(std::string_view status) noexcept {
  send([&] { return statusMessage(status); });
}

void ServiceNotifier::handOver(long pid, std::string_view status) noexcept {
  send([&] { return mainPidMessage(pid, status); });
  fd_ = io::FileDescriptor{};
}

}  // namespace tern::app
