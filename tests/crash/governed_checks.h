// The engine crash test's checks of the governed workflow (governed_workflow.h): agent
// decisions, approvals, budgets and kill switches, held against what the sink saw and
// what the children acknowledged. Failures are GoogleTest failures naming the run.
//
// Thread-compatible: called by the test thread once the last child is gone.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/ids.h"
#include "storage/event.h"
#include "tests/crash/effect_sink.h"
#include "tests/crash/run_facts.h"

namespace cairn::crash {

// What the test knows from outside the store.
struct GovernanceWitness {
  std::vector<AgentAsk> asks;  // the sink's, in arrival order (asks[i].seq == i + 1)
  std::map<std::string, SinkKey> sink_keys;
  // Each child's tag -> its place in the order the children ran (0, 1, ...): a child runs
  // only once the one before it is dead.
  std::map<std::string, int> child_index;
  // Engaged kill switches (as the store holds them, acknowledged or not): run -> the index
  // of the child that engaged it.
  std::map<RunId, int> kill_switches;
  // Acknowledged approval answers: "RUN_ID APPROVAL_ID" -> approved (true) or rejected.
  std::map<std::string, bool> answers;
};

struct GovernedSummary {
  uint64_t runs = 0;
  uint64_t decisions = 0;          // recorded
  uint64_t decisions_reasked = 0;  // decision keys asked by more than one child
  uint64_t approvals = 0;          // resolved in the histories
  uint64_t rejected = 0;
  uint64_t killed_by_switch = 0;
  uint64_t commits = 0;  // applied by the sink
};

// The first budget dimension that is smaller in `after` than in `before` ("" if none).
std::string BudgetDecrease(const storage::BudgetAmounts& before,
                           const storage::BudgetAmounts& after);

// Checks one governed run: the stored `header` and its history (`facts`) against the sink
// and the children's acknowledgements --
//   - each decision key has at most one agent_decided, decided with an allowed option,
//     from an ask the sink answered (the rationale names it) with that option and usage;
//     no ask of that key came after the recording (from the child that recorded it or a
//     later one), and no child asked one key twice;
//   - at most one approval asked and answered, exactly when the amount is over the
//     threshold, for exactly the commit's arguments; every acknowledged answer is there;
//   - the commit follows the approval, carries the recorded option, and was applied once
//     by the sink -- unless the approval was rejected (no commit, approval_denied);
//   - a run a kill switch covers ended `killed`, no commit of it ever reached the sink,
//     and no child asked its decisions once the switch was engaged;
//   - the ledger: every budget_charged's spent_after is at least the one before, the
//     header's spent figures are at least the last, and they add up to the recorded
//     decisions' usage and the calls started; nothing is left reserved at the end.
// Adds the idempotency keys of the run's intents to `claimed`.
void CheckGovernedRun(const RunId& id, const storage::RunHeader& header, const RunFacts& facts,
                      const GovernanceWitness& witness, std::set<std::string>* claimed,
                      GovernedSummary* summary);

// Checks every ask: well formed, from a known child, for a governed run that exists.
void CheckAsks(const GovernanceWitness& witness, const std::set<RunId>& governed_runs);

}  // namespace cairn::crash
