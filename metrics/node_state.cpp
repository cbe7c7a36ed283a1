// See node_state.hpp.
#include "metrics/node_state.hpp"

#include <dirent.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
// From the AddressSanitizer runtime (sanitizer/allocator_interface.h, which gcc does not ship).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

#include <chrono>
#include <cstdio>

#include <prometheus/metric_family.h>

namespace tern::metrics {

namespace {

prometheus::MetricFamily single(std::string name, std::string help, prometheus::MetricType type, double value,
                                std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

double unixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Entries of /proc/self/fd, less the one opendir holds while counting.
double openDescriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;
}

double residentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int read = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return read == 2 ? static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

NodeCollector::NodeCollector(const NodeState& state, std::string version)
    : state_(state), version_(std::move(version)), start_unix_(unixNow()) {}

std::vector<prometheus::MetricFamily> NodeCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  out.push_back(single("tern_ready", "1 while the relay accepts new allocations.", MetricType::Gauge,
                       state_.ready.load() ? 1 : 0));
  out.push_back(single("tern_draining", "1 while the relay drains: no new allocations, calls finish.",
                       MetricType::Gauge, state_.draining.load() ? 1 : 0));
  if (const int redis = state_.redis_connected.load(); redis >= 0) {
    out.push_back(single("tern_redis_connected",
                         "1 while the fleet state's Redis (--redis) is connected; 0 while limits and revocations "
                         "are this node's alone.",
                         MetricType::Gauge, redis));
    out.push_back(single("tern_redis_failures_total", "Connections to Redis that failed or dropped.",
                         MetricType::Counter, static_cast<double>(state_.redis_failures.load())));
  }
  out.push_back(single("tern_build_info", "Always 1; the version is a label.", MetricType::Gauge, 1,
                       {{"version", version_}}));
  prometheus::MetricFamily reloads;
  reloads.name = "tern_config_reloads_total";
  reloads.help = "Configuration reloads (SIGHUP), by result.";
  reloads.type = MetricType::Counter;
  for (const auto& [result, value] : {std::pair{"success", state_.reloads_succeeded.load()},
                                      std::pair{"failure", state_.reloads_failed.load()}}) {
    prometheus::ClientMetric m;
    m.label = {{"result", result}};
    m.counter.value = static_cast<double>(value);
    reloads.metric.push_back(std::move(m));
  }
  out.push_back(std::move(reloads));
  out.push_back(single("tern_config_last_reload_success_timestamp_seconds",
                       "Unix time of start-up or of the last configuration reload that succeeded.",
                       MetricType::Gauge, state_.last_good_config_unix.load()));

  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  out.push_back(single("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                       MetricType::Counter, cpu));
  out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
                       residentBytes()));
  out.push_back(single("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                       openDescriptors()));
  // What the allocator has handed out and not got back, unlike RSS, which also holds freed
  // memory the allocator keeps: the figure a leak moves. mallinfo2 takes each arena's lock
  // briefly, at scrape time only. AddressSanitizer's allocator replaces glibc's (whose
  // figures then read zero) and keeps its own count, so the sanitizer builds that run the
  // integration tests measure the same thing.
#if defined(__SANITIZE_ADDRESS__)
  const double heap_in_use = static_cast<double>(__sanitizer_get_current_allocated_bytes());
#else
  const struct mallinfo2 heap = ::mallinfo2();
  const double heap_in_use = static_cast<double>(heap.uordblks + heap.hblkhd);
#endif
  out.push_back(single("tern_heap_in_use_bytes",
                       "Heap bytes allocated and not freed (glibc mallinfo2).", MetricType::Gauge,
                       heap_in_use));
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  out.push_back(single("process_max_fds", "Maximum number of open file descriptors (soft limit).",
                       MetricType::Gauge, static_cast<double>(files.rlim_cur)));
  out.push_back(single("process_start_time_seconds", "Start time of the process since the Unix epoch.",
                       MetricType::Gauge, start_unix_));
  return out;
}

}  // namespace tern::metrics
