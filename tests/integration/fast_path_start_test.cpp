// Issue 21: what --fast-path does at start-up when the program cannot run. `on` stops
// start-up and says why; `auto` logs once why and relays in user space. Every case runs
// inside a namespace of its own with a veth pair, so even a program that did load
// could attach nowhere but there.
#include <doctest/doctest.h>
#include <signal.h>

#include "support/netns.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"

using namespace tern;
using namespace std::chrono_literals;

namespace {

// A namespace with a veth pair of its own (this kernel has no dummy interfaces), up, one end
// holding the address tern listens on.
struct DummyHost {
  test::NetworkNamespace ns{"fpstart"};
  DummyHost() {
    ns.ip({"link", "add", "fp0", "type", "veth", "peer", "name", "fp1"});
    ns.ip({"addr", "add", "192.0.2.1/24", "dev", "fp0"});
    ns.ip({"link", "set", "fp0", "up"});
    ns.ip({"link", "set", "fp1", "up"});
  }
  std::vector<std::string> serve(std::vector<std::string> extra) const {
    std::vector<std::string> argv{test::ternBinary(), "serve",     "--listen",  "192.0.2.1:3478",
                                  "--relay-ip",       "192.0.2.1", "--workers", "1",
                                  "--drain-timeout",  "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
};

}  // namespace

TEST_CASE("--fast-path on with an interface that does not exist stops start-up and names it") {
  DummyHost host;
  const auto r = test::runCommand(
      host.ns.command(host.serve({"--fast-path", "on", "--fast-path-interface", "nosuch0"})), 20s);
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK(r.output.find("cannot attach the fast path to nosuch0: no such interface") !=
        std::string::npos);
}

TEST_CASE(
    "--fast-path auto without the capabilities to load it logs why once and relays in user space") {
  DummyHost host;
  // Root, but with every capability dropped: bpf() refuses to load the program.
  std::vector<std::string> argv{"setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"};
  for (auto& a : host.serve({"--fast-path", "auto"})) argv.push_back(a);
  test::ChildProcess tern(host.ns.command(argv));
  REQUIRE(tern.waitForLine(" ready ", 20s));
  const std::string output = tern.output();
  INFO(output);
  const auto warned =
      output.find("fast path not started (--fast-path auto): relaying in user space");
  CHECK(warned != std::string::npos);
  CHECK(output.find("not permitted (tern needs CAP_BPF and CAP_NET_ADMIN, or root)") !=
        std::string::npos);
  CHECK(output.find("fast path not started", warned + 1) == std::string::npos);  // once
  // It serves: coturn's STUN client gets its Binding answered.
  const auto stun =
      test::runCommand(host.ns.command({"turnutils_stunclient", "-p", "3478", "192.0.2.1"}), 20s);
  CHECK(stun.output.find("UDP reflexive addr: 192.0.2.1") != std::string::npos);
  CHECK(tern.stop(SIGINT) == 0);
}

TEST_CASE("--fast-path on without the capabilities to load it stops start-up") {
  DummyHost host;
  std::vector<std::string> argv{"setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"};
  for (auto& a : host.serve({"--fast-path", "on", "--fast-path-interface", "fp0"}))
    argv.push_back(a);
  const auto r = test::runCommand(host.ns.command(argv), 20s);
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK(r.output.find("--fast-path on: cannot load the fast path program: not permitted") !=
        std::string::npos);
}

TEST_CASE("--fast-path on where forwarding is off attaches and says which sysctl to set") {
  DummyHost host;  // a new namespace forwards nothing
  test::ChildProcess tern(
      host.ns.command(host.serve({"--fast-path", "on", "--fast-path-interface", "fp0"})));
  REQUIRE(tern.waitForLine(" ready ", 20s));
  INFO(tern.output());
  CHECK(tern.output().find("fast path attached") != std::string::npos);
  CHECK(tern.output().find("sysctl=net.ipv4.conf.fp0.forwarding") != std::string::npos);
  CHECK(tern.output().find("sysctl=net.ipv6.conf.fp0.forwarding") != std::string::npos);
  CHECK(tern.stop(SIGINT) == 0);
}
