// Counterfactual replay: what another policy or another agent would have decided at the
// points of a recorded run (DESIGN.md §9, replay/README.md "Counterfactual replay").
//
// The replay follows the recorded path: the run's own policy and its recorded agent
// decisions drive the interpreter, so every later input still fits. At each point the
// run made a decision, the replayer also asks the counterfactual side the same question
// and reports where the answer differs. Nothing is written anywhere.
//
// The types here are values; DescribeDifference and DifferenceToJson are pure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/ids.h"
#include "base/json.h"
#include "base/status.h"
#include "engine/core/interpreter.h"
#include "engine/definition/definition.h"
#include "storage/event.h"

namespace cairn::replay {

// Asks a counterfactual agent at a recorded decision point: `command` is the decision the
// interpreter asks for there (the recorded request: goal, options, context, tools,
// limits) in run `run_id` of `definition`. Returns what the agent decided, as the engine
// would record it (engine::StandaloneDecider::Decide); an agent that fails is an outcome
// (its reason_code), not an error. An error fails the run's replay (Replayer::Replay
// returns it). Called on the replaying thread, at most once per recorded decision.
using DecisionHook = std::function<Result<storage::AgentDecided>(
    const RunId& run_id, const engine::Definition& definition,
    const engine::DecisionCommand& command)>;

// One point where the counterfactual side would have decided otherwise.
struct Difference {
  RunId run_id;
  // The recorded event the point belongs to: the policy_verdict, the agent_decided, for a
  // budget the event where the run would have stopped (run_started when it would not
  // have), for a kill switch run_started.
  uint64_t seq = 0;
  std::string task_path;  // "/" for the run-level points
  // "policy_verdict": recorded {tool, decision, rule_id, reason_code},
  //                   counterfactual {decision, rule_id, reason_code, detail, approvers};
  // "agent_decision": recorded {agent, option, reason_code, rationale},
  //                   counterfactual {agent, option, reason_code, rationale, detail};
  // "budget":         recorded {caps}, counterfactual {caps, exhausted: null |
  //                   {dimension, used, cap}} (caps as {steps, tokens, cost_micros,
  //                   wall_ms, tool_calls}, 0: no cap);
  // "kill_switch":    recorded {covered, detail}, counterfactual {covered, detail}.
  std::string kind;
  Json recorded;
  Json counterfactual;
  std::string note;  // what would have happened, one sentence
};

// How many points a replay asked the counterfactual side about.
struct CounterfactualPoints {
  uint64_t verdicts = 0;   // policy verdicts re-evaluated
  uint64_t decisions = 0;  // recorded decisions asked of the counterfactual agent
  uint64_t run = 0;        // run-level: the budget caps and the kill switch (2 per run)
  uint64_t total() const { return verdicts + decisions + run; }
};

// One line for a terminal:
//   "seq 7 /do/3/change: policy_verdict billing.change_plan allow (rule small) -> deny
//    (rule no-writes: denied_by_rule)"
std::string DescribeDifference(const Difference& d);
// {run_id, seq, task_path, kind, recorded, counterfactual, note}
Json DifferenceToJson(const Difference& d);

}  // namespace cairn::replay
