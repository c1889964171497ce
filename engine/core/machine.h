// The interpreter's machine: one step's work over a run's state. Internal to
// engine/core (interpreter.cc holds the task semantics, governance.cc the policy, approval,
// budget and agent parts); the contract is interpreter.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "engine/core/interpreter.h"

namespace cairn::engine::internal {

using storage::NewEvent;
using storage::Payload;
using storage::RunStatus;
using storage::StopReason;

// A step records at most about this many events before handing back with `more`, so one
// transition stays well under limits::events_per_transition_max.
inline constexpr size_t kEventsPerStepSoftMax = 256;
// Room reserved for a step's events up front: most steps record a handful, and growing the
// vector one doubling at a time moves every event already in it (replay steps millions).
inline constexpr size_t kEventsPerStepReserve = 16;

Payload JsonPayload(const Json& value);
Json MakeError(std::string_view type, int status, std::string_view title, std::string_view detail,
               std::string_view instance);
storage::ErrorInfo ToErrorInfo(const Json& e);
Json FromErrorInfo(const storage::ErrorInfo& info, std::string_view instance);
bool Truthy(const Json& v);
// {option, rationale, confidence?, steps_used, agent, model, usage}: a decision's task output.
Json DecisionOutput(const storage::AgentDecided& decided);

// One step's work: holds the state, the output and the borrowed evaluator.
class Machine {
 public:
  // `observer` may be empty (Interpreter::set_policy_observer).
  Machine(const Definition& def, const ToolLookup& tools, const policy::Policy& policy,
          const PolicyObserver& observer, RunState& state, StepOutput& out, Evaluator& evaluator)
      : def_(def),
        tools_(tools),
        policy_(policy),
        observer_(observer),
        s_(state),
        out_(out),
        eval_(evaluator) {
    // What an earlier step found about the frames' values is not trusted: the state may
    // have been changed between steps.
    for (const Frame& frame : state.stack) frame.input_to_jq = frame.tinput_to_jq = false;
  }

  Status Apply(const StepInput& input);
  void Run();

 private:
  // ---- plumbing ----
  const Task& TaskOf(uint32_t id) const { return *def_.tasks.at(id); }
  const TaskList& ListOf(const Frame& f) const;
  void Emit(const std::string& path, storage::EventBody body) {
    out_.events.emplace_back(path, std::move(body));  // one move of the body, not two
  }
  bool Suspended() const {
    return IsTerminal(s_.status) || s_.status != RunStatus::kRunning || !s_.waiting_on.empty();
  }
  std::string NextTimerId(char kind) { return kind + std::to_string(++s_.timers); }
  void ScheduleTimer(const std::string& path, const std::string& id, int64_t due,
                     storage::TimerPurpose purpose) {
    Emit(path, storage::TimerScheduled{id, due, purpose});
  }

  // ---- expressions ----
  struct Scope {
    std::vector<Json> owned;
    std::vector<Variable> vars;
  };
  // The variables an expression (or template) `expr` runs with.
  void BuildScope(Scope& scope, const Json& expr, const Frame* task, const Json* output);
  // Whether the run's input can go to jq one level down (inside $workflow); checked once
  // a step (the input does not change after run_started).
  bool WorkflowInputToJq();
  // Whether the run's context can go to jq; checked once until an export replaces it.
  bool ContextToJq();
  Result<Json> Eval(const Json& expr, bool implicit, const Json& input, const Frame* task,
                    const Json* output = nullptr);
  Json ExpressionError(const Status& status, const std::string& path) const {
    return MakeError(error_type::kExpression, 400, "Expression failed", status.message(), path);
  }

  // ---- the machine ----
  void StepTop();
  void EnterTask();
  void Dispatch(Frame& f, const Task& t);
  void StartEffect(Frame& f, const Task& t, ToolSpec spec, Json arguments);
  // `timeout_ms` cut to what is left of every enclosing task's timeout (at least 1 ms).
  uint64_t WithinEnclosingTimeouts(uint64_t timeout_ms) const;

  // ---- governance (governance.cc) ----
  // Asks the policy about a call, then starts it, parks it for an approval, or stops the
  // run (policy_denied, budget_exhausted).
  void RequestEffect(Frame& f, const Task& t, ToolSpec spec, Json arguments);
  void RequestApproval(Frame& f, const Task& t, ToolSpec spec, Json arguments,
                       const policy::Verdict& verdict);
  void OnApproval(const storage::ApprovalResolved& resolved);
  void ExpireApproval(Frame& f, const Task& t);
  void StartDecision(Frame& f, const Task& t, const AgentCall& call);
  // The task output of a decision, from its event alone (so replay rebuilds it).
  void OnDecided(const storage::AgentDecided& decided);
  // Gives back the budget a decision reserved, when its task is abandoned.
  void ReleaseDecision(const Frame& f, const Task& t);
  policy::ToolUse Use(const Task& t, const ToolSpec& spec, const Json& arguments,
                      bool for_agent) const;
  // Asks the policy about a use of `spec` at task `t`, records the verdict (before_call)
  // and shows both to the observer. The only place the machine asks the policy.
  policy::Verdict AskPolicy(const Task& t, const ToolSpec& spec, const Json& arguments,
                            bool for_agent);
  void EmitVerdict(const std::string& path, const policy::Verdict& verdict, const ToolSpec& spec,
                   const Json& arguments, storage::PolicyVerdict::Stage stage);
  // The budget dimension `more` would exceed, if any.
  std::optional<std::string> Exceeds(const storage::BudgetAmounts& more) const;
  void ExhaustBudget(const std::string& dimension, const std::string& path);
  // reserve: `amounts` become reserved; settle: `release` leaves the reservation and
  // `amounts` are spent; release: `release` leaves the reservation.
  void Charge(const std::string& path, storage::BudgetCharged::Phase phase,
              const std::string& reservation, const storage::BudgetAmounts& amounts,
              const storage::BudgetAmounts& release, bool cost_known, const std::string& purpose);
  void StartBudgetClock();
  void Complete(SharedJson raw_output, std::optional<FlowDirective> directive = std::nullopt);
  void ChildDone(SharedJson value, const FlowDirective& directive);
  void ListDone(SharedJson value);
  void NextIteration(Frame& f, const Task& t);
  void Fault(Json error);
  bool TryCatch(Frame& f, const Task& t, const Json& error);
  void PopTaskFrame(const Json* error);
  void EndWorkflow(Json value);
  void Stop(StopReason reason, Json output, Json error, std::string detail,
            storage::Actor actor = {});
  Result<Json> Filter(const DataFilter& filter, const Json& value, const Frame* task,
                      const Json* output, const char* what);
  Status CheckSchema(const DataFilter& filter, const Json& value, const char* what);

  // ---- inputs ----
  Status Start(const StepInput& input);
  void OnOutcome(const storage::EffectOutcome& outcome, const Json& payload);
  void OnTimer(const storage::TimerFired& fired);
  void OnEvent(const storage::EventReceived& event, const Json& payload);
  void OnControl(const storage::ControlRequested& control, const Json& argument);
  bool TryListen(Frame& f, const Task& t);
  bool EventMatches(const EventFilter& filter, const Json& envelope, const Frame& f);
  void TimeoutFrame(size_t index);

  const Definition& def_;
  const ToolLookup& tools_;
  const policy::Policy& policy_;
  const PolicyObserver& observer_;
  RunState& s_;
  StepOutput& out_;
  Evaluator& eval_;
  Json workflow_descriptor_;
  // Memos of this step (see WorkflowInputToJq, ContextToJq): true once checked and found
  // convertible.
  bool workflow_input_to_jq_ = false;
  bool context_to_jq_ = false;
  Scope scope_;  // Eval's, reused (Eval does not nest)
};

}  // namespace cairn::engine::internal
