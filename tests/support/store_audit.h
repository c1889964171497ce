// AuditStore(): checks, from the outside, every invariant a reopened store must hold --
// the ones recovery and `cairn audit verify` rely on -- after whatever crash a test
// simulated.
//
// It reads through the public Store API only and re-derives what it can instead of
// trusting the store's own checks: it recomputes each run's hash chain, compares the
// header with the events, and cross-checks the active set and the status index. Thread-
// compatible; the store must not be written to meanwhile.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/ids.h"
#include "storage/event.h"
#include "storage/store.h"

namespace cairn::testing {

// What the audit read back for one run.
struct AuditedRun {
  storage::RunStatus status = storage::RunStatus::kUnknown;
  uint64_t next_seq = 0;
  bool ends_with_run_stopped = false;
};

struct StoreAudit {
  std::map<RunId, AuditedRun> runs;  // every run with a header
  uint64_t events = 0;               // over all runs
  // One line per broken invariant, naming the run and what was found; empty if none.
  std::vector<std::string> problems;
};

// Checks that:
//   - each run's events are 0..next_seq-1 with no hole, each in its own place, and the
//     header's next_seq equals their count;
//   - the first event is run_started and nothing else is; run_stopped, if present, is the
//     last event, and present exactly when the header's status is terminal;
//   - prev_hash(n) = hash(n-1) and the header's chain head is hash(next_seq - 1);
//   - VerifyAll() reports no failure and reports each run once (so no events without a
//     header);
//   - ListActiveRuns() lists exactly the non-terminal runs with their status, and
//     ListRuns(status) lists each run under its own status only;
//   - the timers DueTimers() returns are exactly those the histories leave scheduled
//     (timer_scheduled minus timer_fired / timer_cancelled), earliest first, and each
//     run_started start key maps to its run.
// Store errors (kDataLoss, I/O) are reported as problems too.
StoreAudit AuditStore(const storage::Store& store);

// The problems joined into one message, for a test failure.
std::string Describe(const StoreAudit& audit);

}  // namespace cairn::testing
