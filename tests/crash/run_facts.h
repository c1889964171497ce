// RunFacts: what the engine crash test reads back from one run's history -- the calls and
// their outcomes, the agent decisions, approvals and budget charges, and how the run
// stopped -- for the checks of engine_kill_test.cc and governed_checks.h.
//
// Thread-compatible; the store must not be written to while a run is read.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/json.h"
#include "base/status.h"
#include "storage/event.h"
#include "storage/store.h"

namespace cairn::crash {

struct Intent {
  uint64_t seq = 0;
  std::string key;
  std::string tool;
  Json arguments;
  bool idempotent = false;
  std::string executor;
};

struct Outcome {
  storage::EffectOutcome::Status status = storage::EffectOutcome::Status::kOk;
  int32_t error_status = 0;
};

struct RecordedDecision {
  uint64_t seq = 0;
  storage::AgentDecided decided;
};

struct RecordedApproval {
  uint64_t seq = 0;
  std::string approval_id;
  std::string tool;
  Json arguments;  // approval_requested only
  storage::ApprovalResolution resolution = storage::ApprovalResolution::kRejected;  // resolved
  std::string actor;  // approval_resolved only
};

struct RunFacts {
  std::string workflow;  // "namespace/name", from run_started
  Json input;
  std::vector<Intent> intents;
  std::map<std::string, std::vector<Outcome>> outcomes;  // by idempotency key
  std::vector<RecordedDecision> decisions;
  std::vector<RecordedApproval> approvals_requested;
  std::vector<RecordedApproval> approvals_resolved;
  std::vector<storage::BudgetCharged> charges;  // in history order
  int kills_requested = 0;                      // control_requested kill events
  int run_stopped = 0;
  bool last_is_run_stopped = false;
  storage::StopReason stop_reason = storage::StopReason::kNone;
  uint64_t events = 0;
};

// The run's history as RunFacts. Errors: the store's (kNotFound, kDataLoss), or a payload
// that is not JSON.
Result<RunFacts> ReadFacts(const storage::Store& store, const RunId& id);

}  // namespace cairn::crash
