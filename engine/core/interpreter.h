// The interpreter: a pure step function over a run's state.
//
//   Step(state, input event) -> events to record + at most one effect to perform
//
// It does no I/O and reads no clock: everything nondeterministic (the run's input, tool
// results, timers, external events, operator controls, the time itself) arrives as the
// input event, and every decision it makes leaves as an event. So the engine can record
// each step as one atomic transition (the input event followed by the produced events),
// and replay can feed the recorded inputs back and compare what comes out.
//
// Thread-compatible: one Interpreter per run at a time (it holds the definition and an
// Evaluator borrowed for the step).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "engine/core/run_state.h"
#include "engine/definition/definition.h"
#include "engine/expr/expression.h"
#include "engine/tools/catalog.h"
#include "policy/policy.h"
#include "storage/event.h"
#include "storage/store.h"

namespace cairn::engine {

// Finds a catalog tool's spec by name; nullopt if unknown.
using ToolLookup = std::function<std::optional<ToolSpec>(std::string_view name)>;

// Sees each question a step asks the run's policy: the use, the policy's verdict, and the
// index in StepOutput::events of the policy_verdict event that records it. Verdicts the
// interpreter makes without asking the policy (rule "budgets": the run's ledger refuses a
// call; "approved" before a commit) are not shown. For counterfactual replay, which asks
// another policy the same questions; the engine sets none.
using PolicyObserver = std::function<void(const policy::ToolUse& use,
                                          const policy::Verdict& verdict, size_t event_index)>;

// The event a step reacts to, with its payload decoded. `body` holds one of RunStarted,
// EffectOutcome, TimerFired, EventReceived, ControlRequested, ApprovalResolved,
// AgentDecided, or nothing: "continue" (keep going after a step that stopped at the batch
// bound).
struct StepInput {
  int64_t time_ns = 0;
  std::optional<storage::EventBody> body;  // nullopt: continue
  Json payload;  // RunStarted: input; EffectOutcome: result; EventReceived: data;
                 // ControlRequested: argument
};

// A decision the engine must ask an agent for, once the transition recording the request
// is durable. Decisions only read: asking again after a crash is safe, and once a
// decision is recorded it is never asked for again.
struct DecisionCommand {
  std::string decision_key;  // RUN_ID#N
  std::string agent;         // a configured agent's name; empty: the default agent
  std::string task_path;
  // {goal, options: [..], context, tools: [{name, description}],
  //  limits: {max_steps, timeout_ms, max_tokens, max_cost_micros}}
  Json request;
};
Json DecisionCommandToJson(const DecisionCommand& command);
std::optional<DecisionCommand> DecisionCommandFromJson(const Json& json);

// A call the engine must start once the transition recording its intent is durable.
struct EffectCommand {
  std::string idempotency_key;
  ToolSpec tool;
  Json arguments;
  uint64_t timeout_ms = 0;
  std::string task_path;
};

struct StepOutput {
  std::vector<storage::NewEvent> events;  // produced events, in order
  std::optional<EffectCommand> call;
  std::optional<DecisionCommand> decide;
  // True when the step stopped only because it produced many events: record them, then
  // call Step again at once with a continue input.
  bool more = false;
};

class Interpreter {
 public:
  // `policy` governs the run (the one its run_started names); never null.
  Interpreter(std::shared_ptr<const Definition> definition, ToolLookup tools,
              std::shared_ptr<const policy::Policy> policy);

  // Applies `input` to `state` (updated in place) and returns what to record and do.
  // Errors are only for inputs that cannot belong to this run (a run_started for a run
  // that has begun, a state that does not fit the definition): kFailedPrecondition /
  // kDataLoss. Everything a workflow can get wrong ends the run with a stop reason instead.
  // Inputs the run no longer waits for (a late outcome after a timeout, a timer already
  // cancelled) change nothing and produce no events.
  Result<StepOutput> Step(RunState& state, const StepInput& input, Evaluator& evaluator);

  const Definition& definition() const { return *definition_; }
  const policy::Policy& policy() const { return *policy_; }

  // Called during every later Step, on the calling thread, before Step returns; it must
  // not call back into this Interpreter. Empty (the default): nothing is observed. What a
  // step produces never depends on the observer.
  void set_policy_observer(PolicyObserver observer) { policy_observer_ = std::move(observer); }

 private:
  std::shared_ptr<const Definition> definition_;
  ToolLookup tools_;
  std::shared_ptr<const policy::Policy> policy_;
  PolicyObserver policy_observer_;
};

// What an approval is bound to: SHA-256 over the tool's name and the canonical JSON of the
// call's arguments. An approval answers exactly this call.
Sha256 ApprovalBinding(std::string_view tool, const Json& arguments);

// "2026-11-21T10:00:00.123Z"
std::string FormatTime(int64_t ns);

}  // namespace cairn::engine
