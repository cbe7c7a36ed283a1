// What a benchmark reads about the server under test from /proc: CPU seconds (user + system,
// all threads), resident memory, and the whole machine's busy CPU time.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tern::bench {

// utime + stime of `pid` in seconds; negative if it cannot be read.
inline double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!pid || !std::getline(in, line)) return -1;
  // Fields after the command name, which may hold spaces, start after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) utime = std::stoul(field);
    if (i == 15) {
      stime = std::stoul(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Busy CPU seconds of the whole machine since boot, all CPUs: user + nice + system + irq +
// softirq + steal from /proc/stat's "cpu" line (idle and iowait left out; guest time is
// already inside user). A kernel fast path relays in softirq, charged to no process, so
// only this sees its cost. Negative if it cannot be read.
inline double machineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string label;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     steal = 0;
  if (!(in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      label != "cpu") {
    return -1;
  }
  const auto busy = user + nice + system + irq + softirq + steal;
  return static_cast<double>(busy) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// utime + stime of every task whose name starts with one of `prefixes`, in seconds: kernel
// threads such as a veth's threaded NAPI ("napi/load0-"), whose receive work belongs to the
// generator's side of a bench topology (bench/veth.py). 0 without prefixes.
inline double threadsCpuSeconds(const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return 0;
  double total = 0;
  std::error_code error;
  for (std::filesystem::directory_iterator it("/proc", error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(it->path() / "comm");
    std::string comm;
    if (!std::getline(in, comm)) continue;
    for (const std::string& prefix : prefixes) {
      if (comm.rfind(prefix, 0) != 0) continue;
      const double seconds = cpuSeconds(static_cast<pid_t>(std::stol(name)));
      if (seconds > 0) total += seconds;
      break;
    }
  }
  return total;
}

// VmRSS of `pid` in KiB; negative if it cannot be read.
inline long residentKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (pid && in >> key) {
    if (key == "VmRSS:") {
      long kib = -1;
      in >> kib;
      return kib;
    }
    in.ignore(4096, '\n');
  }
  return -1;
}

// Open file descriptors of `pid`; negative if they cannot be listed.
inline long openFileDescriptors(pid_t pid) {
  std::error_code error;
  long n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", error), end;
       !error && it != end; it.increment(error)) {
    ++n;
  }
  return error ? -1 : n;
}

}  // namespace tern::bench
