// The conversation between the old and the new process of an upgrade; see upgrade.hpp.
#include "relay/app/upgrade.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <stdexcept>

#include "metrics/counter_snapshot.hpp"
#include "relay/io/log.hpp"

namespace tern::app {

namespace {

enum class Message : std::uint16_t {
  kHello = 1,
  kNode,
  kBundle,
  kEnd,
  kTaken,
  kCommit,
  kPrecopied
};
// 2: the pre-copy (PRECOPIED, a second NODE and BUNDLE round).
constexpr std::uint32_t kProtocolVersion = 2;

using Clock = std::chrono::steady_clock;

std::uint16_t code(Message m) noexcept { return static_cast<std::uint16_t>(m); }

// Big-endian, as everything else on the wire between the processes.
void putU32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::uint32_t getU32(const std::vector<std::uint8_t>& in, std::size_t at) {
  if (in.size() < at + 4) throw std::runtime_error("hand-over: a message is too short");
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | in[at + i];
  return v;
}

std::vector<std::uint8_t> encodeNode(const NodeState& node) {
  std::vector<std::uint8_t> out;
  out.reserve(4 + node.nonce_key.size() + 12 + 8 * node.counters.size());
  putU32(out, kProtocolVersion);
  // Byte by byte: GCC 12 at -O3 sees a false overflow in a range insert here.
  for (std::uint8_t b : node.nonce_key) out.push_back(b);
  putU32(out, node.workers);
  putU32(out, node.old_pid);
  putU32(out, static_cast<std::uint32_t>(node.counters.size()));
  for (std::uint64_t v : node.counters) {
    putU32(out, static_cast<std::uint32_t>(v >> 32));
    putU32(out, static_cast<std::uint32_t>(v));
  }
  return out;
}

NodeState decodeNode(const std::vector<std::uint8_t>& in) {
  if (getU32(in, 0) != kProtocolVersion)
    throw std::runtime_error("hand-over: the old process speaks another version");
  NodeState node;
  const std::size_t fixed = 4 + node.nonce_key.size() + 12;
  if (in.size() < fixed) throw std::runtime_error("hand-over: bad NODE message");
  std::copy_n(in.begin() + 4, node.nonce_key.size(), node.nonce_key.begin());
  node.workers = getU32(in, 4 + node.nonce_key.size());
  node.old_pid = getU32(in, 8 + node.nonce_key.size());
  const std::uint32_t counters = getU32(in, fixed - 4);
  if (in.size() != fixed + std::size_t{counters} * 8)
    throw std::runtime_error("hand-over: bad NODE message");
  node.counters.resize(counters);
  for (std::size_t i = 0; i < counters; ++i) {
    node.counters[i] =
        (std::uint64_t{getU32(in, fixed + 8 * i)} << 32) | getU32(in, fixed + 8 * i + 4);
  }
  if (node.workers == 0 || node.workers > 1024)
    throw std::runtime_error("hand-over: bad worker count");
  return node;
}

io::HandOverChannel::Message expect(io::HandOverChannel& channel, Message type,
                                    Clock::time_point deadline) {
  auto message = channel.receive(deadline);
  if (!message) throw std::runtime_error("hand-over: " + message.error());
  if (message->type != code(type)) {
    throw std::runtime_error("hand-over: unexpected message " + std::to_string(message->type));
  }
  return std::move(*message);
}

void sendOrThrow(io::HandOverChannel& channel, Message type, wire::Bytes payload,
                 std::span<const int> fds, Clock::time_point deadline) {
  if (auto problem = channel.send(code(type), payload, fds, deadline)) {
    throw std::runtime_error("hand-over: " + *problem);
  }
}

// Freezes every worker and collects their bundles; rethrows a worker's failure.
std::vector<io::OutgoingBundle> freezeAll(const std::vector<io::Worker*>& workers,
                                          const std::shared_future<bool>& decision) {
  std::vector<std::future<io::OutgoingBundle>> pending;
  pending.reserve(workers.size());
  for (io::Worker* w : workers) pending.push_back(w->freezeForUpgrade(decision));
  std::vector<io::OutgoingBundle> bundles;
  for (auto& f : pending) bundles.push_back(f.get());
  return bundles;
}

void sendBundle(io::HandOverChannel& channel, const io::OutgoingBundle& bundle,
                HandOverOutcome& outcome, Clock::time_point deadline) {
  const io::EncodedBundle encoded = io::encodeBundle(bundle);
  outcome.allocations += bundle.allocations.size();
  outcome.allocations -= std::min(outcome.allocations, bundle.removed.size());
  outcome.descriptors += encoded.fds.size();
  sendOrThrow(channel, Message::kBundle, encoded.payload, encoded.fds, deadline);
}

// The pre-copy: NODE, every worker's listeners, then its UDP allocations while it serves on,
// a slice at a time (the workers in parallel), each slice a BUNDLE of its own sent at once:
// its duplicated descriptors close with it, so the process never holds two of each. END.
void sendPrecopy(io::HandOverChannel& channel, const NodeState& node,
                 const std::vector<io::Worker*>& workers, HandOverOutcome& outcome,
                 Clock::time_point deadline) {
  sendOrThrow(channel, Message::kNode, encodeNode(node), {}, deadline);
  for (io::Worker* w : workers) sendBundle(channel, w->precopyBegin().get(), outcome, deadline);
  std::vector<io::Worker*> busy = workers;
  while (!busy.empty()) {
    std::vector<std::future<std::optional<io::OutgoingBundle>>> slices;
    for (io::Worker* w : busy) slices.push_back(w->precopySlice());
    std::vector<io::Worker*> still;
    for (std::size_t i = 0; i < busy.size(); ++i) {
      std::optional<io::OutgoingBundle> slice = slices[i].get();
      if (!slice) continue;
      sendBundle(channel, *slice, outcome, deadline);
      still.push_back(busy[i]);
    }
    busy = std::move(still);
  }
  sendOrThrow(channel, Message::kEnd, {}, {}, deadline);
}

// NODE, then a BUNDLE per worker, then END.
void sendRound(io::HandOverChannel& channel, const NodeState& node,
               const std::vector<io::OutgoingBundle>& bundles, HandOverOutcome& outcome,
               Clock::time_point deadline) {
  sendOrThrow(channel, Message::kNode, encodeNode(node), {}, deadline);
  for (const io::OutgoingBundle& bundle : bundles) sendBundle(channel, bundle, outcome, deadline);
  sendOrThrow(channel, Message::kEnd, {}, {}, deadline);
}

}  // namespace

std::optional<UpgradeFromOld> UpgradeFromOld::fromEnvironment() {
  const char* value = std::getenv(kHandOverFdVariable);
  if (value == nullptr) return std::nullopt;
  const int fd = std::atoi(value);
  ::unsetenv(kHandOverFdVariable);
  if (fd < 3)
    throw std::runtime_error(std::string(kHandOverFdVariable) + " does not name a descriptor");
  return UpgradeFromOld(io::HandOverChannel(io::FileDescriptor(fd)));
}

UpgradeFromOld::Received UpgradeFromOld::receive(const UpgradeTimeouts& timeouts) {
  const auto deadline = Clock::now() + timeouts.start;
  std::vector<std::uint8_t> hello;
  putU32(hello, kProtocolVersion);
  putU32(hello, static_cast<std::uint32_t>(::getpid()));
  sendOrThrow(channel_, Message::kHello, hello, {}, deadline);
  return receiveRound(Clock::now() + timeouts.take_over);
}

UpgradeFromOld::Received UpgradeFromOld::receiveRest(const UpgradeTimeouts& timeouts) {
  const auto deadline = Clock::now() + timeouts.take_over;
  sendOrThrow(channel_, Message::kPrecopied, {}, {}, deadline);
  return receiveRound(deadline);
}

UpgradeFromOld::Received UpgradeFromOld::receiveRound(Clock::time_point deadline) {
  Received received;
  received.node = decodeNode(expect(channel_, Message::kNode, deadline).payload);
  for (;;) {
    auto message = channel_.receive(deadline);
    if (!message) throw std::runtime_error("hand-over: " + message.error());
    if (message->type == code(Message::kEnd)) break;
    if (message->type != code(Message::kBundle))
      throw std::runtime_error("hand-over: unexpected message");
    auto bundle = io::decodeBundle(message->payload, std::move(message->fds));
    if (!bundle) throw std::runtime_error("hand-over: " + bundle.error());
    received.bundles.push_back(std::move(*bundle));
  }
  // A worker may send several (the pre-copy's slices); each must send one at least.
  std::vector<bool> heard(received.node.workers, false);
  for (const io::IncomingBundle& b : received.bundles) {
    if (b.worker >= heard.size())
      throw std::runtime_error("hand-over: a bundle of an unknown worker");
    heard[b.worker] = true;
  }
  if (std::find(heard.begin(), heard.end(), false) != heard.end())
    throw std::runtime_error("hand-over: bundles missing");
  return received;
}

io::FileDescriptor UpgradeFromOld::confirm(const UpgradeTimeouts& timeouts) {
  const auto deadline = Clock::now() + timeouts.take_over;
  sendOrThrow(channel_, Message::kTaken, {}, {}, deadline);
  auto commit = expect(channel_, Message::kCommit, deadline);
  if (commit.fds.size() > 1)
    throw std::runtime_error("hand-over: COMMIT carries more than the metrics listener");
  return commit.fds.empty() ? io::FileDescriptor{} : std::move(commit.fds.front());
}

namespace {

// A deadline that passed names the setting behind it, so the operator knows what to raise.
std::string namingTimeout(std::string problem, std::chrono::milliseconds timeout) {
  if (problem.find("timed out") == std::string::npos) return problem;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  return problem + " (--upgrade-timeout " + std::to_string(seconds) + " s)";
}

}  // namespace

HandOverOutcome handOverToNew(io::HandOverChannel& channel, const std::vector<io::Worker*>& workers,
                              const std::function<NodeState()>& node,
                              const UpgradeTimeouts& timeouts,
                              const std::shared_future<bool>& decision) {
  HandOverOutcome outcome;
  std::chrono::milliseconds in_effect = timeouts.start;
  try {
    auto hello = channel.receive(Clock::now() + timeouts.start);
    if (!hello) throw std::runtime_error("the new process did not start: " + hello.error());
    if (hello->type != code(Message::kHello) || getU32(hello->payload, 0) != kProtocolVersion) {
      throw std::runtime_error("the new process speaks another hand-over version");
    }
    in_effect = timeouts.take_over;
    const auto deadline = Clock::now() + timeouts.take_over;
    sendPrecopy(channel, node(), workers, outcome, deadline);
    (void)expect(channel, Message::kPrecopied, deadline);
    outcome.frozen_at = Clock::now();
    const std::vector<io::OutgoingBundle> rest = freezeAll(workers, decision);
    outcome.frozen = true;
    sendRound(channel, node(), rest, outcome, deadline);
    (void)expect(channel, Message::kTaken, deadline);
    outcome.taken = true;
  } catch (const std::exception& e) {
    outcome.problem = namingTimeout(e.what(), in_effect);
  }
  return outcome;
}

std::optional<std::string> sendCommit(io::HandOverChannel& channel, int metrics_fd) {
  std::vector<int> fds;
  if (metrics_fd >= 0) fds.push_back(metrics_fd);
  return channel.send(code(Message::kCommit), {}, fds, Clock::now() + std::chrono::seconds(5));
}

void takeOverRest(UpgradeFromOld& from_old, const std::vector<io::Worker*>& workers,
                  metrics::WorkerCounters& carried, const UpgradeTimeouts& timeouts) {
  std::vector<std::future<void>> applied;
  try {
    UpgradeFromOld::Received rest = from_old.receiveRest(timeouts);
    if (!metrics::restoreCounterValues(carried, rest.node.counters)) {
      io::log::warn("upgrade: the old process counts other series; counters start from zero");
    }
    std::vector<io::WorkerSockets> parts =
        regroup(std::move(rest.bundles), static_cast<unsigned>(workers.size()));
    for (std::size_t i = 0; i < workers.size(); ++i)
      applied.push_back(workers[i]->applyRest(std::move(parts[i])));
    for (auto& a : applied) a.get();
  } catch (...) {
    for (io::Worker* w : workers) w->run(false);
    throw;
  }
}

std::vector<io::WorkerSockets> regroup(std::vector<io::IncomingBundle> bundles,
                                       unsigned new_count) {
  std::vector<io::WorkerSockets> sockets(new_count);
  for (io::IncomingBundle& b : bundles) {
    io::WorkerSockets& to = sockets[io::newWorkerOf(b.worker, new_count)];
    auto append = [](auto& into, auto& from) {
      for (auto& item : from) into.push_back(std::move(item));
    };
    // The old worker's DTLS listeners land after those already here.
    for (auto& f : b.sockets.dtls_forward) {
      for (auto& session : f.sessions) session.socket += static_cast<std::uint32_t>(to.dtls.size());
    }
    append(to.dtls_forward, b.sockets.dtls_forward);
    append(to.udp, b.sockets.udp);
    append(to.tcp, b.sockets.tcp);
    append(to.tls, b.sockets.tls);
    append(to.dtls, b.sockets.dtls);
    append(to.restored, b.sockets.restored);
    append(to.connections, b.sockets.connections);
    append(to.updated, b.sockets.updated);
    append(to.removed, b.sockets.removed);
    append(to.reservations, b.sockets.reservations);
    append(to.peer_connections, b.sockets.peer_connections);
  }
  return sockets;
}

}  // namespace tern::app
