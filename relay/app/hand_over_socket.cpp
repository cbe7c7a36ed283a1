// Both ends of the hand-over socket; see hand_over_socket.hpp.
#include "relay/app/hand_over_socket.hpp"

#include <chrono>
#include <stdexcept>

#include "relay/io/log.hpp"

namespace tern::app {

std::optional<UpgradeFromOld> connectToOld(const std::string& path) {
  bool nobody_listens = false;
  // A listener's backlog full for five seconds means several processes are at it at once.
  auto channel = io::connectHandOver(
      path, std::chrono::steady_clock::now() + std::chrono::seconds(5), &nobody_listens);
  if (channel) {
    io::log::info("taking over through the hand-over socket", {{"path", path}});
    return UpgradeFromOld(std::move(*channel));
  }
  if (nobody_listens) {
    io::log::info("no process on the hand-over socket: starting afresh",
                  {{"path", path}, {"reason", channel.error()}});
    return std::nullopt;
  }
  throw std::runtime_error("hand-over socket: " + channel.error());
}

void HandOverSocket::listen(const std::string& path, OnPeer on_peer) {
  listener_.emplace(path);
  on_peer_ = std::move(on_peer);
  poll_.emplace();
  io::checkUv(uv_poll_init(loop_.get(), poll_->get(), listener_->fd()), "uv_poll_init");
  poll_->initialized(this);
  io::checkUv(uv_poll_start(poll_->get(), UV_READABLE,
                            [](uv_poll_t* h, int status, int) {
                              auto* self = io::ownerOf<HandOverSocket>(h);
                              if (self != nullptr && status == 0) self->onReadable();
                            }),
              "uv_poll_start");
  io::log::info("listening", {{"transport", "hand-over"}, {"path", path}});
}

void HandOverSocket::onReadable() noexcept {
  // The peer waits already: the deadline only bounds a peer that gave up meanwhile.
  auto peer = listener_->accept(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  if (!peer) {
    io::log::warn("hand-over socket: a peer was not taken", {{"error", peer.error()}});
    return;
  }
  on_peer_(std::move(*peer));
}

void HandOverSocket::close() noexcept {
  // The poll first: it watches the listener's descriptor.
  poll_.reset();
  listener_.reset();
}

}  // namespace tern::app
