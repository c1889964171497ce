// The interpreter's state of one run: where it is in the definition, the data flowing,
// what it waits for. Plain values; serialized (as JSON) into the run header's
// engine_state after every transition, so that a run resumes from its header without
// folding its history, and rebuilt identically by replaying the history.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/shared_json.h"
#include "base/status.h"
#include "storage/event.h"

namespace cairn::engine {

// Which task list a list frame walks.
enum class ListKind : uint8_t {
  kRoot = 0,   // the workflow's top-level `do`
  kDo,         // a `do` task's tasks
  kForBody,    // a `for` task's tasks
  kTryBody,    // a `try` task's tasks
  kCatchBody,  // a `try` task's catch.do
};

enum class TaskPhase : uint8_t {
  kEnter = 0,  // not started: if / input filters / dispatch
  kChild,      // waiting for a child list (do, for body, try body) or function task
  kCatch,      // try: running catch.do
  kRetryWait,  // try: waiting for the retry timer
  kEffect,     // call / run: waiting for the effect's outcome
  kTimer,      // wait: waiting for its timer
  kListen,     // listen: waiting for events
  kApproval,   // call / run: waiting for an operator's approval of the call
  kDecision,   // call agent: waiting for the agent's decision
};

struct Frame {
  bool is_list = false;

  // ---- list frames ----
  ListKind list = ListKind::kRoot;
  uint32_t owner = 0;  // the task owning the list (unused for kRoot)
  uint32_t index = 0;  // next task to run
  // The value flowing into the next task. `data`, `input` and `tinput` are shared, not
  // copied, between the frames a value flows through (see SharedJson).
  SharedJson data;

  // ---- task frames ----
  uint32_t task = 0;  // Task::id
  TaskPhase phase = TaskPhase::kEnter;
  SharedJson input;   // raw task input
  SharedJson tinput;  // transformed task input ($input)
  int64_t started_ns = 0;
  std::string timeout_timer;  // outstanding timeout timer, if the task has a timeout
  int64_t timeout_due_ns = 0;
  // for
  Json items;  // the collection
  uint64_t iteration = 0;
  // try
  uint32_t attempt = 1;  // 1 = first try
  Json error;            // the caught error, while in kCatch
  // call / run / wait / listen
  std::string key;         // effect key or timer id
  int64_t key_due_ns = 0;  // wait / retry: when `key`'s timer is due
  Json consumed;           // listen: events consumed so far (array)
  Json matched;            // listen `all`: which filters are satisfied (array of bool)
  // approval: {tool (ToolSpecToJson), arguments, binding (hex), approvers, rule}
  // decision: {options, reserved: {tokens, cost}, run_bound: {tokens, cost}}
  Json pending;

  // Not persisted: the interpreter's memo, within one step, that `input` can go to jq one
  // level down (ConvertibleToJq(input, 2), as in $task) and `tinput` as it is, so that
  // every expression of the task does not check them again. The interpreter clears both
  // when a step begins and `tinput_to_jq` when it assigns tinput; nothing else may rely on
  // them.
  mutable bool input_to_jq = false;
  mutable bool tinput_to_jq = false;
};

struct RunState {
  std::string run_id;
  int64_t started_ns = 0;
  int64_t now_ns = 0;  // time of the last input event
  Json input;          // the workflow's raw input
  Json context = Json::object();
  std::vector<Frame> stack;
  uint64_t steps = 0;          // tasks entered
  uint64_t effects = 0;        // effect intents emitted (idempotency key ordinal)
  uint64_t timers = 0;         // timers scheduled (timer id ordinal)
  std::string workflow_timer;  // outstanding workflow timeout timer, if any
  Json inbox = Json::array();  // events received and not consumed (CloudEvent envelopes)
  storage::RunStatus status = storage::RunStatus::kRunning;
  storage::StopReason stop_reason = storage::StopReason::kNone;
  std::string waiting_on;
  bool effect_indeterminate = false;  // the pending effect's outcome is unknown
  // The call the engine was asked to make for the pending effect (the engine's record,
  // so that a recovering engine can retry it with the same key); null when none.
  Json pending_call;
  // run_started is recorded but the interpreter has not begun (StartRequest::defer); the
  // next engine to load the run begins it from `input` at `started_ns`.
  bool deferred_start = false;
  // The budget ledger (also in the run header): caps from run_started (0: no cap), what
  // has been spent, and what is reserved by calls in flight. wall_ms is not accumulated:
  // a timer stops the run when the wall-clock cap is reached.
  storage::BudgetAmounts budget_caps;
  storage::BudgetAmounts budget_spent;
  storage::BudgetAmounts budget_reserved;
  bool cost_unknown = false;  // some cost could not be measured (never counted as zero)
  std::string budget_timer;   // outstanding wall-clock budget timer, if any
  // The decision the engine was asked for (DecisionCommand as JSON), so that a
  // recovering engine can ask again; null when none is pending.
  Json pending_decision;
};

Json BudgetToJson(const storage::BudgetAmounts& amounts);
storage::BudgetAmounts BudgetFromJson(const Json& json);

Json RunStateToJson(const RunState& state);
// kDataLoss if `json` is not a state this build wrote.
Result<RunState> RunStateFromJson(const Json& json);

}  // namespace cairn::engine
