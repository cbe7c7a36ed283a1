// A core::ServerContext over recording fakes, built as TurnServer builds its own: for unit
// tests of the steps the handlers share (relayToPeer, Allocate's steps) without a server.
#pragma once

#include "metrics/worker_counters.hpp"
#include "relay/core/server_context.hpp"
#include "support/core_services.hpp"
#include "support/recording_output.hpp"

namespace tern::test {

struct ContextHarness {
  explicit ContextHarness(const ServicesOptions& services_options = {})
      : services(makeServices(services_options)),
        quota(static_cast<CountingQuota&>(*services.quota)),
        connections(0, 1),
        server{options,      services, output,       counters, allocations, connections,
               std::nullopt, false,    std::nullopt, {},       {},          {}} {}

  core::ServerOptions options;
  core::ServerServices services;
  CountingQuota& quota;
  RecordingOutput output;
  metrics::WorkerCounters counters;
  core::AllocationTable allocations;
  core::TcpConnectionTable connections;
  core::ServerContext server;
  core::TimePoint now{std::chrono::seconds(1000)};
};

}  // namespace tern::test
