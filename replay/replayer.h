// The deterministic replayer: re-runs the interpreter over a run's recorded history.
//
// Everything nondeterministic a run saw is an input event in its log (run_started with the
// input, effect_outcome, timer_fired, event_received, agent_decided, approval_resolved,
// control_requested) stamped with the time the engine gave it. The replayer feeds those
// inputs, in order and with their recorded times and payloads, to a fresh Interpreter and
// checks that every event the interpreter produces equals the next recorded event. No
// tool, agent or network is called; the store is only read.
//
// Counterfactual replay (counterfactual.h): with ReplayOptions::counterfactual_policy or
// ::counterfactual_agent, the replay still follows the recorded path, and at each point
// the run decided something (a policy verdict, an agent decision, its budget caps and
// kill switch) also asks the other policy or agent, reporting where they differ.
//
// Thread-compatible: one Replayer per thread (it owns a jq Evaluator). The store must
// outlive it and may be shared (its reads are thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/json.h"
#include "base/status.h"
#include "engine/core/interpreter.h"
#include "engine/definition/definition.h"
#include "engine/tools/catalog.h"
#include "policy/policy.h"
#include "replay/counterfactual.h"
#include "storage/store.h"

namespace cairn::replay {

// Where a replay first disagrees with the log.
struct Divergence {
  RunId run_id;
  uint64_t seq = 0;       // the recorded event's seq (the log's length when it had none)
  std::string task_path;  // the produced event's path, else the recorded one's
  Json recorded;          // EventToJson of the recorded event; null: the log has none
  Json produced;          // the produced event as EventToJson; null: the code made none
  std::string note;       // what differs, one line
};

struct ReplayResult {
  RunId run_id;
  uint64_t events = 0;                   // recorded events checked
  uint64_t steps = 0;                    // interpreter steps taken
  std::optional<Divergence> divergence;  // nullopt: the code reproduced the log
  std::string note;                      // set when the replay ended early but matched (see README)
  // Counterfactual replay only: the points asked about (on the matched path, up to a
  // divergence), and where the counterfactual side differs, in seq order.
  CounterfactualPoints points;
  std::vector<Difference> differences;
  bool matched() const { return !divergence.has_value(); }
};

struct ReplayOptions {
  // Replays against this definition instead of the one the run recorded (by hash).
  std::shared_ptr<const engine::Definition> definition;
  // Specs of tools the history does not describe (a tool the new definition calls, or a
  // tool a policy refused before any call): looked up after the recorded ones. May be null.
  const engine::ToolCatalog* catalog = nullptr;
  // Counterfactual replay: re-evaluates every verdict the run's policy gave under this
  // policy, and compares its budget caps and kill switches with the run's. Null: none.
  std::shared_ptr<const policy::Policy> counterfactual_policy;
  // Counterfactual replay: asked at every decision the log answers (an agent_decided),
  // with the recorded request. Empty: none. Called on the replaying thread.
  DecisionHook counterfactual_agent;
};

class Replayer {
 public:
  // `store` is not owned and must outlive the Replayer; a read-only store is enough.
  explicit Replayer(const storage::Store& store, ReplayOptions options = {});
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // Replays one run. A divergence is a successful result (ReplayResult::divergence), and
  // so are differences (ReplayResult::differences). Errors: kNotFound (no such run),
  // kDataLoss (a history, definition, policy or blob that cannot be read back),
  // kFailedPrecondition (the history does not start with run_started), and whatever the
  // counterfactual agent's hook returns.
  Result<ReplayResult> Replay(const RunId& run_id);
  // Replays one run from its history as the caller read it (Store::ScanHistory from 0,
  // or Store::ScanHistories): the same result as Replay(run_id) on that history, without
  // reading it again. Blobs, definitions and policies are still read from the store.
  Result<ReplayResult> Replay(const RunId& run_id, const std::vector<storage::Event>& history);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One line for a terminal: "run R diverged at seq 7 (/do/1/x): recorded task_routed ...".
std::string DescribeDivergence(const Divergence& d);
Json DivergenceToJson(const Divergence& d);

}  // namespace cairn::replay
