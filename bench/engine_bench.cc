// Engine throughput, beside the raw RocksDB ceiling measured in the same run.
//
//   BM_EngineRuns/runs:N/clients:C   N runs of a 5-task back-office workflow (set, a C++
//       read tool, switch, set), started by C client threads (Engine::Start returns once
//       the run's first transition is durable), all driven to completion with synced
//       durability. Figures: runs_per_s, events_per_s (events the store committed),
//       events_per_group, and the ceiling: synced 64-event WriteBatches of the same
//       average event size (ceiling_per_s, ratio).
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "bench/bench_support.h"
#include "bench/triage_workflow.h"
#include "engine/core/engine.h"
#include "policy/policy.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

void BM_EngineRuns(benchmark::State& state) {
  const auto runs = static_cast<size_t>(state.range(0));
  const auto clients = static_cast<size_t>(state.range(1));
  bench::ScratchDir dir("engine");
  SystemClock clock;
  engine::EngineOptions options;
  // Every call allowed: the bench measures the engine, not a policy.
  options.policy =
      *policy::Policy::Load("version: 1\ndefaults: {read: allow, write: allow}\n", "allow-all");
  options.data_dir = dir.path() + "/data";
  options.clock = &clock;
  if (!bench::RegisterTriageTools(options.tools).ok()) {
    state.SkipWithError("register tool");
    return;
  }
  auto opened = engine::Engine::Open(std::move(options));
  if (!opened.ok()) {
    state.SkipWithError(opened.status().message().c_str());
    return;
  }
  std::unique_ptr<engine::Engine> engine = std::move(opened).value();
  if (!engine->ApplyDefinition(bench::kTriageWorkflow, "bench.yaml").ok()) {
    state.SkipWithError("apply");
    return;
  }
  // Warm the expression caches (jq compiles cost ~40 ms each) outside the timing.
  for (int i = 0; i < 4; ++i) {
    auto r = engine->Start(
        {"refund-triage", Json{{"ticket", "warm"}, {"amount", 50 + 100 * i}}, std::nullopt, {}});
    if (r.ok()) static_cast<void>(engine->Wait(r->run_id, 60s));
  }
  uint64_t events = 0, groups = 0, completed_runs = 0;
  double seconds = 0;
  for (auto _ : state) {
    const storage::StoreStats before = engine->store().stats();
    const auto start = std::chrono::steady_clock::now();
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (size_t c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        for (size_t i = next++; i < runs; i = next++) {
          auto r = engine->Start(
              {"refund-triage",
               Json{{"ticket", "T-" + std::to_string(i)}, {"amount", static_cast<int>(i % 200)}},
               std::nullopt,
               {}});
          if (!r.ok()) failed = true;
        }
      });
    }
    for (auto& t : threads) t.join();
    if (failed || !engine->RunUntilIdle(600s).ok()) {
      state.SkipWithError("runs failed");
      return;
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const storage::StoreStats after = engine->store().stats();
    events += after.events_committed - before.events_committed;
    groups += after.commit_groups - before.commit_groups;
    completed_runs += runs;
  }
  const size_t completed =
      engine->ListRuns(storage::RunStatus::kCompleted, "", 100'000).value().size();
  static_cast<void>(engine->Close());
  // Average encoded event size of this workflow's events, for a like-for-like ceiling.
  const double ceiling = bench::MeasureRawSyncedWrites(bench::kTriageEventBytes);
  state.counters["runs_per_s"] = static_cast<double>(completed_runs) / seconds;
  state.counters["events_per_group"] =
      groups == 0 ? 0 : static_cast<double>(events) / static_cast<double>(groups);
  state.counters["completed"] = static_cast<double>(completed);
  bench::SetRatio(state, static_cast<double>(events) / seconds, ceiling);
}
BENCHMARK(BM_EngineRuns)
    ->ArgNames({"runs", "clients"})
    ->Args({200, 1})
    ->Args({2000, 64})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
