// Starting the kernel fast path (see fast_path_start.hpp).
#include "relay/app/fast_path_start.hpp"

#include <fstream>
#include <stdexcept>
#include <string>

#include "relay/io/log.hpp"

namespace tern::app {
namespace {

// Named interfaces, or those holding the UDP listen addresses and the relay addresses.
std::vector<std::string> interfacesFor(const config::Settings& settings,
                                       const std::vector<wire::IpAddress>& relay_ips) {
  if (!settings.fast_path_interfaces.empty()) return settings.fast_path_interfaces;
  std::vector<wire::IpAddress> addresses = relay_ips;
  for (const wire::SocketAddress& listen : settings.listen) addresses.push_back(listen.ip);
  return io::fastPathInterfacesFor(addresses);
}

// bpf_fib_lookup finds no route from an interface that does not forward, so the program
// passes everything there up (tern_fastpath_fallbacks_total{reason="forwarding"}). tern does
// not change the host's setting; it says what to set.
void warnWhereForwardingIsOff(const std::vector<std::string>& interfaces) {
  for (const std::string& name : interfaces) {
    for (const char* family : {"ipv4", "ipv6"}) {
      std::ifstream file(std::string("/proc/sys/net/") + family + "/conf/" + name + "/forwarding");
      int forwarding = 1;
      if (!(file >> forwarding) || forwarding != 0) continue;
      io::log::warn(
          "fast path: forwarding is off on this interface, so the kernel relays nothing "
          "arriving there (set the sysctl to 1; docs/fast-path.md)",
          {{"interface", name},
           {"sysctl", std::string("net.") + family + ".conf." + name + ".forwarding"}});
    }
  }
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& n : names) text += (text.empty() ? "" : ",") + n;
  return text;
}

}  // namespace

std::shared_ptr<const io::FastPath> startFastPath(const config::Settings& settings,
                                                  const std::vector<wire::IpAddress>& relay_ips) {
  if (settings.fast_path == config::FastPathMode::kOff) return nullptr;
  const std::vector<std::string> interfaces = interfacesFor(settings, relay_ips);
  try {
    auto fast_path = std::make_shared<const io::FastPath>(interfaces, settings.fast_path_capacity);
    io::log::info("fast path attached: UDP ChannelData on channels is relayed in the kernel",
                  {{"interfaces", joined(interfaces)}, {"capacity", settings.fast_path_capacity}});
    warnWhereForwardingIsOff(interfaces);
    return fast_path;
  } catch (const std::runtime_error& e) {
    if (settings.fast_path == config::FastPathMode::kOn) {
      throw std::runtime_error(std::string("--fast-path on: ") + e.what());
    }
    io::log::warn("fast path not started (--fast-path auto): relaying in user space",
                  {{"interfaces", joined(interfaces)}, {"reason", e.what()}});
    return nullptr;
  }
}

}  // namespace tern::app
