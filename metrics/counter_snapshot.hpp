// Every counter of a worker (not its gauges), as plain numbers in a fixed order: what an
// upgrade (docs/upgrade.md) carries to the new process, so that tern_*_total series continue
// instead of starting from zero. Gauges describe the process that reports them and start
// afresh; histogram sums travel as the bits of their doubles.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "metrics/worker_counters.hpp"

namespace tern::metrics {

// Adds `counters`' values into `totals` (sized on first use): the sum over workers.
void addCounterValues(const WorkerCounters& counters, std::vector<std::uint64_t>& totals);
// Adds `values` into `counters`; false, with nothing changed, if they were taken from a
// different layout (another version of tern with other series).
bool restoreCounterValues(WorkerCounters& counters, std::span<const std::uint64_t> values);

}  // namespace tern::metrics
