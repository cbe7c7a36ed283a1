// What the tests of an upgrade in place share (upgrade_test.cpp, hand_over_socket_test.cpp):
// a workspace with the test's own copy of tern, its secrets and admin token, and a
// turnutils_uclient call to an echo peer.
#pragma once

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/turn_tools.hpp"

namespace tern::test::upgrade {

inline constexpr const char* kPeerHost = "127.0.0.2";  // 127.0.0.1 is the relay's own address
inline constexpr const char* kSecret = "upgrade-secret";
inline constexpr const char* kToken = "upgrade-admin-token";

// A directory removed when the test ends, holding the test's own copy of tern (an upgrade
// starts the binary at that path, so replacing the copy is what a package upgrade does).
struct Workspace {
  Workspace() {
    char name[] = "/tmp/tern-upgrade-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
    binary = path + "/tern";
    install(ternBinary());
    secrets = temporaryFile(std::string(kSecret) + "\n");
    token = temporaryFile(std::string(kToken) + "\n");
    ::chmod(token.c_str(), 0600);
  }
  ~Workspace() { std::filesystem::remove_all(path); }

  // Puts `from` at the binary's path the way a package manager does: a new file renamed over
  // the old, so the running process keeps its own.
  void install(const std::string& from) const {
    const std::string next = binary + ".new";
    std::filesystem::copy_file(from, next, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(next, std::filesystem::perms::owner_all);
    std::filesystem::rename(next, binary);
  }
  // A shell script at the binary's path.
  void installScript(const std::string& body) const {
    const std::string script = path + "/script";
    writeFile(script, "#!/bin/sh\n" + body + "\n");
    std::filesystem::permissions(script, std::filesystem::perms::owner_all);
    std::filesystem::rename(script, binary);
  }

  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--realm",      "tern.test",          "--auth-secret-file",
                               secrets,        "--relay-ip",         "127.0.0.1",
                               "--allow-peer", "127.0.0.0/8",        "--metrics-listen",
                               "127.0.0.1:0",  "--admin-token-file", token};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  std::string path, binary, secrets, token;
};

// 160-byte media at 20 ms intervals to an echo peer, over UDP unless `transport` says "-t"
// (TCP) or "-t", "-S" (TLS); uclient checks the echoes and deletes its allocation at the end.
inline ChildProcess startCall(std::uint16_t server_port, std::uint16_t peer_port, long messages,
                              std::vector<std::string> transport = {}) {
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient"};
  argv.insert(argv.end(), transport.begin(), transport.end());
  for (const std::string& a :
       {std::string("-W"),           std::string(kSecret),      std::string("-u"),
        std::string("caller"),       std::string("-e"),         std::string(kPeerHost),
        std::string("-r"),           std::to_string(peer_port), std::string("-p"),
        std::to_string(server_port), std::string("-n"),         std::to_string(messages),
        std::string("-m"),           std::string("1"),          std::string("-l"),
        std::string("160"),          std::string("-z"),         std::string("20"),
        std::string("-c"),           std::string("127.0.0.1")}) {
    argv.push_back(a);
  }
  return ChildProcess(argv);
}

}  // namespace tern::test::upgrade
