// The demo's runs as data: every transition each example run will append, built ahead of
// time. Pure: no clock, no I/O; ids are drawn from the Random handed in. The driver in
// demo_command.cc submits them. See demo_command.h for the four scenarios.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/random.h"
#include "base/sha256.h"
#include "storage/event.h"
#include "storage/store.h"

namespace cairn::cli::demo {

// One transition of a run.
struct DemoStep {
  std::vector<storage::NewEvent> events;
  std::vector<std::string> blobs;
  // The run's header fields after this step.
  storage::RunStatus status = storage::RunStatus::kRunning;
  storage::StopReason stop_reason = storage::StopReason::kNone;
  std::string waiting_on;
  storage::BudgetAmounts budget_spent;
  storage::BudgetAmounts budget_reserved;
  // The step fires a timer: it may be submitted only at or after this time.
  int64_t not_before_ns = 0;
};

struct DemoRun {
  // The caller's part of every header: run id, workflow, hashes, start key, budget limits.
  storage::RunHeader header;
  std::string scenario;  // short name: "refund-approved", ...
  std::string story;     // one line for people
  std::vector<DemoStep> steps;
};

// What the runs refer to: definitions (stored by the caller under their hashes) and the
// policy they were checked against.
struct DemoSetup {
  int64_t now_ns = 0;  // timers are scheduled relative to this
  Sha256 refund_definition;
  Sha256 plan_definition;
  Sha256 policy;
};

// Canonical JSON of the two workflow definitions (OWS DSL 1.0) the runs execute.
std::string RefundTriageDefinition();
std::string PlanChangeDefinition();
// The operator policy the verdicts cite (its SHA-256 is DemoSetup::policy).
std::string_view DemoPolicy();

// Number of distinct scenarios; BuildDemoRun cycles through them.
inline constexpr size_t kDemoScenarioCount = 4;

// Builds the `index`-th run. Its id and start key are fresh draws from `random`.
DemoRun BuildDemoRun(size_t index, const DemoSetup& setup, Random& random);

}  // namespace cairn::cli::demo
