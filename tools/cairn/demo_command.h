// `cairn log demo [--runs N]`: writes example back-office runs into the data directory.
//
// The runs go through the real store API, as the engine will write them: each step of a
// run is one transition, and the steps of all runs advance in rounds whose transitions
// are submitted together with Store::Submit(), so that the commit thread group-commits
// them (synced, Durability::kSync). The runs use the whole event vocabulary:
//   - refund triage, approved: agent decision, approval required by policy and granted,
//     refund effect under an idempotency key, customer notified; completed;
//   - plan change: agent picks a plan, the billing call fails with a 503, a retry-backoff
//     timer fires, the retry under the same idempotency key succeeds; completed;
//   - refund triage, more info needed: the customer is emailed and the run is left
//     waiting on a 72-hour listen timer (it stays in the active set and the timers index);
//   - refund triage, rejected: the approver says no; stopped with approval_denied.
// N runs (default 8) cycle through these four. Every run gets a fresh id and a fresh
// start key, so the demo can be re-run on the same directory; a start key that exists
// already is reported as "already there" and skipped.
//
// It opens the directory as its owner (taking the lock); it fails with one line naming
// the holder if another process owns it.
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds `demo` under the `log` command group.
void AddDemoCommand(CLI::App& log, GlobalOptions& global);

}  // namespace cairn::cli
