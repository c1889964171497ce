#include "engine/core/interpreter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "base/assert.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "engine/core/machine.h"

namespace cairn::engine::internal {

Payload JsonPayload(const Json& value) { return Payload::Json(DumpJson(value)); }

Json MakeError(std::string_view type, int status, std::string_view title, std::string_view detail,
               std::string_view instance) {
  Json e{{"type", type}, {"status", status}, {"title", title}, {"instance", instance}};
  if (!detail.empty()) e["detail"] = detail;
  return e;
}

storage::ErrorInfo ToErrorInfo(const Json& e) {
  storage::ErrorInfo info;
  if (!e.is_object()) return info;
  if (auto it = e.find("type"); it != e.end() && it->is_string()) info.type = *it;
  if (auto it = e.find("status"); it != e.end() && it->is_number_integer()) {
    info.status = static_cast<int32_t>(it->get<int64_t>());
  }
  if (auto it = e.find("title"); it != e.end() && it->is_string()) info.title = *it;
  if (auto it = e.find("detail"); it != e.end() && it->is_string()) info.detail = *it;
  if (auto it = e.find("instance"); it != e.end() && it->is_string()) info.instance = *it;
  return info;
}

Json FromErrorInfo(const storage::ErrorInfo& info, std::string_view instance) {
  return MakeError(info.type.empty() ? error_type::kRuntime : info.type,
                   info.status == 0 ? 500 : info.status, info.title, info.detail,
                   info.instance.empty() ? instance : std::string_view(info.instance));
}

bool Truthy(const Json& v) { return !(v.is_null() || (v.is_boolean() && !v.get<bool>())); }

namespace {

Json TimeObject(int64_t ns) {
  return Json{{"iso8601", FormatTime(ns)},
              {"epoch", {{"seconds", ns / 1'000'000'000}, {"milliseconds", ns / 1'000'000}}}};
}

// Standard error types match by their last path segment, so that the spec's URIs
// (.../spec/1.0.0/errors/communication) and the CTK's (.../dsl/errors/types/communication)
// name the same type.
bool ErrorTypeMatches(std::string_view wanted, std::string_view actual) {
  if (wanted == actual) return true;
  auto standard = [](std::string_view uri) {
    return uri.find("open-workflow-specification.org/") != std::string_view::npos ||
           uri.find("serverlessworkflow.io/") != std::string_view::npos;
  };
  if (!standard(wanted) || !standard(actual)) return false;
  auto last = [](std::string_view uri) { return uri.substr(uri.rfind('/') + 1); };
  return last(wanted) == last(actual);
}

// Expands "{name}" in a URI template from the top-level fields of `input`.
std::string ExpandUriTemplate(const std::string& uri, const Json& input) {
  std::string out;
  size_t i = 0;
  while (i < uri.size()) {
    if (uri[i] == '{') {
      size_t close = uri.find('}', i);
      if (close != std::string::npos) {
        std::string name = uri.substr(i + 1, close - i - 1);
        if (input.is_object() && input.contains(name)) {
          const Json& v = input[name];
          out += v.is_string() ? v.get<std::string>() : DumpJson(v);
          i = close + 1;
          continue;
        }
      }
    }
    out += uri[i++];
  }
  return out;
}

uint64_t Mix(std::string_view seed) {
  Sha256 digest = Sha256::Of(seed);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(digest.bytes()[i]);
  return v;
}

}  // namespace

const TaskList& Machine::ListOf(const Frame& f) const {
  if (f.list == ListKind::kRoot) return def_.do_;
  const Task& owner = TaskOf(f.owner);
  switch (f.list) {
    case ListKind::kDo:
      return std::get<DoBody>(owner.body).tasks;
    case ListKind::kForBody:
      return std::get<ForBody>(owner.body).tasks;
    case ListKind::kTryBody:
      return std::get<TryBody>(owner.body).tasks;
    case ListKind::kCatchBody:
      return std::get<TryBody>(owner.body).catch_.do_;
    case ListKind::kRoot:
      break;
  }
  return def_.do_;
}

namespace {

// True if `name` occurs in a string of `expr` (one expression, or a template). The
// evaluator binds only the variables whose names occur in an expression's text, so a
// variable that no string of `expr` names is never read, only checked (ConvertibleToJq).
bool Mentions(const Json& expr, std::string_view name) {
  if (expr.is_string()) return expr.get_ref<const std::string&>().find(name) != std::string::npos;
  if (expr.is_structured()) {
    for (const Json& child : expr) {
      if (Mentions(child, name)) return true;
    }
  }
  return false;
}

// Given for a variable that the expression does not read (and for $task outside a task).
const Json& EmptyObject() {
  static const Json empty = Json::object();
  return empty;
}

const Json& RuntimeDescriptor() {
  static const Json runtime = Json{{"name", "cairn"}, {"version", "0.1.0"}};
  return runtime;
}

}  // namespace

bool Machine::WorkflowInputToJq() {
  if (!workflow_input_to_jq_) workflow_input_to_jq_ = ConvertibleToJq(s_.input, 2);
  return workflow_input_to_jq_;
}

bool Machine::ContextToJq() {
  if (!context_to_jq_) context_to_jq_ = ConvertibleToJq(s_.context);
  return context_to_jq_;
}

// Every value is marked convertible (Variable::convertible) when it is known to be, so
// that the evaluator checks only the others: the placeholders and $runtime are constants,
// the descriptors convert exactly when the input they hold does one level down, and the
// input, task input and context are checked once (see Frame::input_to_jq).
void Machine::BuildScope(Scope& scope, const Json& expr, const Frame* task,
                         const Json* output) {
  scope.owned.reserve(4);
  // $workflow and $task hold copies of the workflow's and the task's input, so they are
  // built only for an expression that names them. An expression that does not gets an
  // empty object in their place, which converts to jq exactly when the real value would:
  // all that can stop the real one is its input, one level down (ConvertibleToJq).
  const bool workflow_to_jq = WorkflowInputToJq();
  if (!Mentions(expr, "workflow") && workflow_to_jq) {
    scope.vars.push_back({"workflow", &EmptyObject(), true});
  } else {
    if (workflow_descriptor_.is_null()) {
      workflow_descriptor_ =
          Json{{"id", s_.run_id},
               {"definition",
                {{"document",
                  {{"dsl", def_.dsl},
                   {"namespace", def_.namespace_},
                   {"name", def_.name},
                   {"version", def_.version}}}}},
               {"input", s_.input},
               {"startedAt", TimeObject(s_.started_ns)}};
    }
    scope.vars.push_back({"workflow", &workflow_descriptor_, workflow_to_jq});
  }
  scope.vars.push_back({"context", &s_.context, ContextToJq()});
  scope.vars.push_back({"runtime", &RuntimeDescriptor(), true});
  if (task != nullptr) {
    if (!task->input_to_jq) task->input_to_jq = ConvertibleToJq(*task->input, 2);
    if (!Mentions(expr, "task") && task->input_to_jq) {
      scope.vars.push_back({"task", &EmptyObject(), true});
    } else {
      const Task& t = TaskOf(task->task);
      scope.owned.push_back(Json{{"name", t.name},
                                 {"reference", t.path},
                                 {"input", *task->input},
                                 {"startedAt", TimeObject(task->started_ns)}});
      scope.vars.push_back({"task", &scope.owned.back(), task->input_to_jq});
    }
    if (!task->tinput_to_jq) task->tinput_to_jq = ConvertibleToJq(*task->tinput);
    scope.vars.push_back({"input", &*task->tinput, task->tinput_to_jq});
  } else {
    scope.vars.push_back({"task", &EmptyObject(), true});
    scope.vars.push_back({"input", &s_.input, workflow_to_jq});
  }
  if (output != nullptr) scope.vars.push_back({"output", output});
  // Loop and catch variables of the enclosing tasks, outermost first (inner ones shadow).
  for (const Frame& f : s_.stack) {
    if (f.is_list) continue;
    const Task& t = TaskOf(f.task);
    if (const auto* body = std::get_if<ForBody>(&t.body); body && f.phase == TaskPhase::kChild &&
                                                          f.items.is_array() &&
                                                          f.iteration < f.items.size()) {
      scope.vars.push_back({body->each, &f.items[f.iteration]});
      scope.owned.push_back(f.iteration);
      scope.vars.push_back({body->at, &scope.owned.back()});
    }
    if (const auto* body = std::get_if<TryBody>(&t.body); body && f.phase == TaskPhase::kCatch) {
      scope.vars.push_back({body->catch_.as, &f.error});
    }
  }
}

Result<Json> Machine::Eval(const Json& expr, bool implicit, const Json& input, const Frame* task,
                           const Json* output) {
  Scope& scope = scope_;  // reused: its vectors keep their capacity from call to call
  scope.vars.clear();
  scope.owned.clear();
  scope.owned.reserve(s_.stack.size() + 4);  // Variables point into it: no reallocation
  BuildScope(scope, expr, task, output);
  return implicit ? eval_.EvaluateImplicit(expr, input, scope.vars)
                  : eval_.EvaluateTemplate(expr, input, scope.vars);
}

Status Machine::CheckSchema(const DataFilter& filter, const Json& value, const char* what) {
  if (!filter.schema) return Status::Ok();
  Status st = filter.schema->compiled.Validate(value);
  if (!st.ok()) return Status::InvalidArgument(std::string(what) + ": " + st.message());
  return Status::Ok();
}

Result<Json> Machine::Filter(const DataFilter& filter, const Json& value, const Frame* task,
                             const Json* output, const char* what) {
  if (!filter.transform) return value;
  return Eval(*filter.transform, /*implicit=*/true, value, task, output);
}

// ---------------------------------------------------------------------------------------
// Inputs

Status Machine::Apply(const StepInput& input) {
  s_.now_ns = std::max(s_.now_ns, input.time_ns);
  if (!input.body) return Status::Ok();  // continue
  if (const auto* started = std::get_if<storage::RunStarted>(&*input.body)) {
    (void)started;
    return Start(input);
  }
  if (s_.stack.empty() && !IsTerminal(s_.status)) {
    return Status::FailedPrecondition("the run has not started");
  }
  if (IsTerminal(s_.status)) return Status::Ok();  // late input: nothing to do
  if (const auto* o = std::get_if<storage::EffectOutcome>(&*input.body)) {
    OnOutcome(*o, input.payload);
  } else if (const auto* t = std::get_if<storage::TimerFired>(&*input.body)) {
    OnTimer(*t);
  } else if (const auto* e = std::get_if<storage::EventReceived>(&*input.body)) {
    OnEvent(*e, input.payload);
  } else if (const auto* c = std::get_if<storage::ControlRequested>(&*input.body)) {
    OnControl(*c, input.payload);
  } else if (const auto* a = std::get_if<storage::ApprovalResolved>(&*input.body)) {
    OnApproval(*a);
  } else if (const auto* d = std::get_if<storage::AgentDecided>(&*input.body)) {
    OnDecided(*d);
  } else {
    return Status::InvalidArgument(std::string("a ") + std::string(KindName(*input.body)) +
                                   " event is not an input of the interpreter");
  }
  return Status::Ok();
}

Status Machine::Start(const StepInput& input) {
  if (!s_.stack.empty() || s_.started_ns != 0) {
    return Status::FailedPrecondition("run_started for a run that has already started");
  }
  s_.started_ns = input.time_ns;
  s_.input = input.payload;
  workflow_input_to_jq_ = false;
  s_.status = RunStatus::kRunning;
  s_.budget_caps = std::get<storage::RunStarted>(*input.body).budget_limits;
  StartBudgetClock();
  if (Status st = CheckSchema(def_.input, s_.input, "workflow input"); !st.ok()) {
    Stop(StopReason::kFaulted, nullptr,
         MakeError(error_type::kValidation, 400, "Invalid workflow input", st.message(), "/"),
         st.message());
    return Status::Ok();
  }
  Result<Json> transformed = Filter(def_.input, s_.input, nullptr, nullptr, "input.from");
  if (!transformed.ok()) {
    Stop(StopReason::kFaulted, nullptr, ExpressionError(transformed.status(), "/input/from"),
         transformed.status().message());
    return Status::Ok();
  }
  if (def_.timeout) {
    s_.workflow_timer = NextTimerId('x');
    ScheduleTimer("/", s_.workflow_timer,
                  input.time_ns + static_cast<int64_t>(def_.timeout->ms) * 1'000'000,
                  storage::TimerPurpose::kWorkflowTimeout);
  }
  Frame root;
  root.is_list = true;
  root.list = ListKind::kRoot;
  root.data = std::move(transformed).value();
  s_.stack.push_back(std::move(root));
  return Status::Ok();
}

void Machine::OnOutcome(const storage::EffectOutcome& outcome, const Json& payload) {
  if (s_.stack.empty()) return;
  Frame& f = s_.stack.back();
  if (f.is_list || f.phase != TaskPhase::kEffect || f.key != outcome.idempotency_key) {
    return;  // a late outcome of an abandoned call: recorded, not acted on
  }
  const Task& t = TaskOf(f.task);
  using S = storage::EffectOutcome::Status;
  if (outcome.status == S::kIndeterminate) {
    s_.effect_indeterminate = true;
    s_.status = RunStatus::kBlocked;
    s_.waiting_on = "indeterminate_effect " + f.key;
    return;
  }
  s_.effect_indeterminate = false;
  s_.waiting_on.clear();
  s_.status = RunStatus::kRunning;
  if (outcome.status == S::kOk) {
    f.phase = TaskPhase::kChild;
    const auto* run = std::get_if<RunShellBody>(&t.body);
    Complete(run != nullptr && !run->await ? f.tinput : SharedJson(payload));
    return;
  }
  Fault(FromErrorInfo(outcome.error, t.path));
}

void Machine::OnTimer(const storage::TimerFired& fired) {
  if (!s_.budget_timer.empty() && fired.timer_id == s_.budget_timer) {
    s_.budget_timer.clear();
    return ExhaustBudget("wall_clock", "/");
  }
  if (fired.timer_id == s_.workflow_timer) {
    s_.workflow_timer.clear();
    Stop(StopReason::kTimeout, nullptr,
         MakeError(error_type::kTimeout, 408, "Workflow timed out",
                   "the workflow's timeout of " + std::to_string(def_.timeout->ms) + " ms elapsed",
                   "/"),
         "workflow timeout");
    return;
  }
  for (size_t i = 0; i < s_.stack.size(); ++i) {
    Frame& f = s_.stack[i];
    if (f.is_list) continue;
    if (f.timeout_timer == fired.timer_id) {
      TimeoutFrame(i);
      return;
    }
  }
  if (s_.stack.empty()) return;
  Frame& f = s_.stack.back();
  if (f.is_list || f.key != fired.timer_id) return;  // cancelled or stale
  const Task& t = TaskOf(f.task);
  if (f.phase == TaskPhase::kApproval) return ExpireApproval(f, t);
  s_.waiting_on.clear();
  s_.status = RunStatus::kRunning;
  f.key_due_ns = 0;
  if (f.phase == TaskPhase::kTimer) {
    f.key.clear();
    f.phase = TaskPhase::kChild;
    Complete(f.tinput);
  } else if (f.phase == TaskPhase::kRetryWait) {
    f.key.clear();
    ++f.attempt;
    f.phase = TaskPhase::kChild;
    Frame list;
    list.is_list = true;
    list.list = ListKind::kTryBody;
    list.owner = t.id;
    list.data = f.tinput;
    s_.stack.push_back(std::move(list));
  }
}

void Machine::TimeoutFrame(size_t index) {
  // Abandon everything above the timed-out task (their calls become stale, their timers
  // are cancelled), then fault the task itself with a timeout error.
  const Task& t = TaskOf(s_.stack[index].task);
  Json error = MakeError(
      error_type::kTimeout, 408, "Task timed out",
      "the task's timeout of " + std::to_string(t.timeout ? t.timeout->ms : 0) + " ms elapsed",
      t.path);
  s_.stack[index].timeout_timer.clear();
  while (s_.stack.size() > index + 1) {
    if (s_.stack.back().is_list) {
      s_.stack.pop_back();
    } else {
      PopTaskFrame(&error);
    }
  }
  s_.waiting_on.clear();
  s_.effect_indeterminate = false;
  s_.status = RunStatus::kRunning;
  Fault(std::move(error));
}

void Machine::OnEvent(const storage::EventReceived& event, const Json& payload) {
  Json envelope{{"specversion", "1.0"}, {"type", event.event_type},      {"source", event.source},
                {"id", event.event_id}, {"time", FormatTime(s_.now_ns)}, {"data", payload}};
  // The engine refuses signals beyond limits::run_inbox_events_max before recording them.
  s_.inbox.push_back(std::move(envelope));
  if (s_.stack.empty()) return;
  Frame& f = s_.stack.back();
  if (!f.is_list && f.phase == TaskPhase::kListen) {
    // Running again before the listener completes: completing may fault, stop the run
    // or park it elsewhere, and that must stand.
    const std::string waiting = s_.waiting_on;
    s_.waiting_on.clear();
    s_.status = RunStatus::kRunning;
    if (!TryListen(f, TaskOf(f.task))) {
      s_.waiting_on = waiting;
      s_.status = RunStatus::kWaiting;
    }
  }
}

void Machine::OnControl(const storage::ControlRequested& control, const Json& argument) {
  using A = storage::ControlRequested::Action;
  switch (control.action) {
    case A::kCancel:
      Stop(StopReason::kCancelled, nullptr, nullptr, control.reason, control.actor);
      return;
    case A::kKill:
      Stop(StopReason::kKilled, nullptr, nullptr, control.reason, control.actor);
      return;
    case A::kResolveEffect: {
      if (s_.stack.empty() || !s_.effect_indeterminate) return;
      Frame& f = s_.stack.back();
      const Task& t = TaskOf(f.task);
      const std::string outcome = argument.value("outcome", "");
      s_.effect_indeterminate = false;
      s_.waiting_on.clear();
      s_.status = RunStatus::kRunning;
      if (outcome == "ok") {
        f.phase = TaskPhase::kChild;
        Complete(argument.value("result", Json()));
      } else if (outcome == "abandon") {
        Stop(StopReason::kIndeterminateEffect, nullptr,
             MakeError(error_type::kRuntime, 500, "Effect outcome unknown",
                       "an operator abandoned the run: " + control.reason, t.path),
             control.reason);
      } else {
        Fault(MakeError(error_type::kRuntime, 500, "Effect failed",
                        "an operator resolved the effect as failed: " + control.reason, t.path));
      }
      return;
    }
    case A::kResume:
    case A::kSignal:
      return;
  }
}

// ---------------------------------------------------------------------------------------
// The machine

void Machine::Run() {
  while (!Suspended()) {
    if (out_.events.size() >= kEventsPerStepSoftMax) {
      out_.more = true;
      return;
    }
    StepTop();
  }
}

void Machine::StepTop() {
  CAIRN_ASSERT(!IsTerminal(s_.status), "stepping a stopped run");
  if (s_.stack.empty()) {
    Stop(StopReason::kFaulted, nullptr,
         MakeError(error_type::kRuntime, 500, "Internal error", "empty stack", "/"), "");
    return;
  }
  Frame& f = s_.stack.back();
  if (f.is_list) {
    const TaskList& list = ListOf(f);
    if (f.index >= list.size()) {
      SharedJson data = std::move(f.data);
      s_.stack.pop_back();
      ListDone(std::move(data));
      return;
    }
    if (++s_.steps > limits::run_steps_max) {
      Stop(
          StopReason::kMaxSteps, nullptr,
          MakeError(error_type::kRuntime, 500, "Too many steps",
                    "the run entered more than " + std::to_string(limits::run_steps_max) + " tasks",
                    list[f.index].path),
          "max steps");
      return;
    }
    s_.budget_spent.steps = s_.steps;
    if (s_.budget_caps.steps != 0 && s_.steps > s_.budget_caps.steps) {
      return ExhaustBudget("steps", list[f.index].path);
    }
    Frame task;
    task.task = list[f.index].id;
    task.input = f.data;  // shared, not copied
    task.started_ns = s_.now_ns;
    s_.stack.push_back(std::move(task));
    EnterTask();
    return;
  }
  if (f.phase == TaskPhase::kEnter) {
    EnterTask();
    return;
  }
  // A task frame on top in any other phase waits for an input; nothing to do.
  s_.status = RunStatus::kWaiting;
  if (s_.waiting_on.empty()) s_.waiting_on = "input";
}

void Machine::EnterTask() {
  Frame& f = s_.stack.back();
  const Task& t = TaskOf(f.task);
  if (t.if_) {
    Result<Json> cond = Eval(*t.if_, /*implicit=*/true, *f.input, &f);
    if (!cond.ok()) return Fault(ExpressionError(cond.status(), t.path));
    if (!Truthy(*cond)) {
      Emit(t.path, storage::TaskCompleted{t.name,
                                          storage::TaskCompleted::Status::kSkipped,
                                          Payload::Json(f.input.Dump()),
                                          {},
                                          "",
                                          f.attempt});
      SharedJson input = std::move(f.input);
      s_.stack.pop_back();
      return ChildDone(std::move(input), FlowDirective{});
    }
  }
  if (Status st = CheckSchema(t.input, *f.input, "task input"); !st.ok()) {
    return Fault(
        MakeError(error_type::kValidation, 400, "Invalid task input", st.message(), t.path));
  }
  if (t.input.transform) {
    Result<Json> tinput = Filter(t.input, *f.input, &f, nullptr, "input.from");
    if (!tinput.ok()) return Fault(ExpressionError(tinput.status(), t.path));
    f.tinput = std::move(tinput).value();
  } else {
    f.tinput = f.input;  // shared, not copied
  }
  f.tinput_to_jq = false;
  const auto* call = std::get_if<CallBody>(&t.body);
  const bool agentic = call != nullptr && call->kind == CallBody::Kind::kAgent;
  Emit(t.path, storage::TaskRouted{t.name, std::string(t.KindName()),
                                   agentic ? storage::TaskRouted::Mode::kAgentic
                                           : storage::TaskRouted::Mode::kDeterministic,
                                   Payload::Json(f.tinput.Dump()), f.attempt});
  if (t.timeout) {
    f.timeout_timer = NextTimerId('t');
    f.timeout_due_ns = s_.now_ns + static_cast<int64_t>(t.timeout->ms) * 1'000'000;
    ScheduleTimer(t.path, f.timeout_timer, f.timeout_due_ns, storage::TimerPurpose::kTaskTimeout);
  }
  f.phase = TaskPhase::kChild;
  Dispatch(f, t);
}

void Machine::Dispatch(Frame& f, const Task& t) {
  auto push_list = [this](ListKind kind, uint32_t owner, SharedJson data) {
    Frame list;
    list.is_list = true;
    list.list = kind;
    list.owner = owner;
    list.data = std::move(data);
    s_.stack.push_back(std::move(list));
  };
  if (std::holds_alternative<DoBody>(t.body)) {
    return push_list(ListKind::kDo, t.id, f.tinput);
  }
  if (const auto* set = std::get_if<SetBody>(&t.body)) {
    Result<Json> value = Eval(set->value, /*implicit=*/set->value.is_string(), *f.tinput, &f);
    if (!value.ok()) return Fault(ExpressionError(value.status(), t.path));
    return Complete(std::move(value).value());
  }
  if (const auto* sw = std::get_if<SwitchBody>(&t.body)) {
    for (const SwitchCase& c : sw->cases) {
      if (c.when) {
        Result<Json> match = Eval(*c.when, /*implicit=*/true, *f.tinput, &f);
        if (!match.ok()) return Fault(ExpressionError(match.status(), t.path));
        if (!Truthy(*match)) continue;
      }
      return Complete(f.tinput, c.then);
    }
    return Complete(f.tinput);
  }
  if (const auto* raise = std::get_if<RaiseBody>(&t.body)) {
    const ErrorTemplate& e = raise->error;
    Json tmpl{{"type", e.type}, {"status", e.status}};
    if (!e.title.is_null()) tmpl["title"] = e.title;
    if (!e.detail.is_null()) tmpl["detail"] = e.detail;
    if (!e.instance.is_null()) tmpl["instance"] = e.instance;
    Result<Json> error = Eval(tmpl, /*implicit=*/false, *f.tinput, &f);
    if (!error.ok()) return Fault(ExpressionError(error.status(), t.path));
    if (!error->contains("instance")) (*error)["instance"] = t.path;
    if (!(*error)["status"].is_number_integer()) {
      return Fault(MakeError(
          error_type::kValidation, 400, "Invalid error",
          "raise: status must be an integer, got " + DumpJson((*error)["status"]), t.path));
    }
    return Fault(std::move(error).value());
  }
  if (const auto* wait = std::get_if<WaitBody>(&t.body)) {
    f.key = NextTimerId('w');
    f.phase = TaskPhase::kTimer;
    const int64_t due = s_.now_ns + static_cast<int64_t>(wait->duration.ms) * 1'000'000;
    f.key_due_ns = due;
    ScheduleTimer(t.path, f.key, due, storage::TimerPurpose::kWait);
    s_.status = RunStatus::kWaiting;
    s_.waiting_on = "timer " + f.key + " at " + FormatTime(due);
    return;
  }
  if (std::holds_alternative<ListenBody>(t.body)) {
    f.phase = TaskPhase::kListen;
    f.consumed = Json::array();
    if (!TryListen(f, t)) {
      s_.status = RunStatus::kWaiting;
      s_.waiting_on = "event for " + t.path;
    }
    return;
  }
  if (const auto* loop = std::get_if<ForBody>(&t.body)) {
    Result<Json> items = Eval(loop->in, /*implicit=*/true, *f.tinput, &f);
    if (!items.ok()) return Fault(ExpressionError(items.status(), t.path));
    if (items->is_null()) *items = Json::array();
    if (!items->is_array()) {
      return Fault(MakeError(error_type::kValidation, 400, "Invalid for.in",
                             "for.in must give an array, got " + std::string(JsonTypeName(*items)),
                             t.path));
    }
    f.items = std::move(items).value();
    f.iteration = 0;
    f.data = f.tinput;
    return NextIteration(f, t);
  }
  if (std::holds_alternative<TryBody>(t.body)) {
    return push_list(ListKind::kTryBody, t.id, f.tinput);
  }
  if (const auto* call = std::get_if<CallBody>(&t.body)) {
    Result<Json> with = Eval(call->with, /*implicit=*/false, *f.tinput, &f);
    if (!with.ok()) return Fault(ExpressionError(with.status(), t.path));
    switch (call->kind) {
      case CallBody::Kind::kHttp: {
        Json& endpoint = (*with)["endpoint"];
        if (endpoint.is_string()) {
          endpoint = ExpandUriTemplate(endpoint.get<std::string>(), *f.tinput);
        } else if (endpoint.is_object() && endpoint.contains("uri") &&
                   endpoint["uri"].is_string()) {
          endpoint["uri"] = ExpandUriTemplate(endpoint["uri"].get<std::string>(), *f.tinput);
        }
        return RequestEffect(f, t, InlineToolSpec("http", *with), std::move(with).value());
      }
      case CallBody::Kind::kMcp:
        return RequestEffect(f, t, InlineToolSpec("mcp", *with), std::move(with).value());
      case CallBody::Kind::kAgent:
        return StartDecision(f, t, call->agent);
      case CallBody::Kind::kFunction: {
        auto fn = def_.functions.find(call->function);
        if (fn == def_.functions.end()) {
          return Fault(MakeError(error_type::kConfiguration, 400, "Unknown function",
                                 "no use.functions entry '" + call->function + "'", t.path));
        }
        Frame child;
        child.task = fn->second.id;
        child.input = std::move(with).value();
        child.started_ns = s_.now_ns;
        s_.stack.push_back(std::move(child));
        return;  // the next StepTop enters it
      }
      case CallBody::Kind::kTool: {
        std::optional<ToolSpec> spec = tools_ ? tools_(call->function) : std::nullopt;
        if (!spec) {
          return Fault(MakeError(
              error_type::kConfiguration, 400, "Unknown tool",
              "no tool named '" + call->function + "' is registered in the engine's catalog",
              t.path));
        }
        return RequestEffect(f, t, std::move(*spec), std::move(with).value());
      }
    }
  }
  if (const auto* run = std::get_if<RunShellBody>(&t.body)) {
    Json tmpl{{"command", run->command}};
    if (!run->arguments.is_null()) tmpl["arguments"] = run->arguments;
    if (!run->environment.is_null()) tmpl["environment"] = run->environment;
    if (!run->stdin_value.is_null()) tmpl["stdin"] = run->stdin_value;
    Result<Json> args = Eval(tmpl, /*implicit=*/false, *f.tinput, &f);
    if (!args.ok()) return Fault(ExpressionError(args.status(), t.path));
    static constexpr const char* kReturn[] = {"stdout", "stderr", "code", "all", "none"};
    (*args)["return"] = kReturn[static_cast<int>(run->return_mode)];
    (*args)["await"] = run->await;
    return RequestEffect(f, t, InlineToolSpec("shell", *args), std::move(args).value());
  }
}

void Machine::StartEffect(Frame& f, const Task& t, ToolSpec spec, Json arguments) {
  f.key = s_.run_id + "#" + std::to_string(++s_.effects);
  f.phase = TaskPhase::kEffect;
  uint64_t timeout_ms =
      spec.timeout_ms != 0 ? spec.timeout_ms : limits::tool_call_timeout_ms_default;
  timeout_ms = WithinEnclosingTimeouts(timeout_ms);
  // A started call counts against the run's tool_calls budget (RequestEffect checked it).
  if (s_.budget_caps.tool_calls != 0) {
    Charge(t.path, storage::BudgetCharged::Phase::kSettle, f.key,
           storage::BudgetAmounts{0, 0, 0, 0, 1}, {}, true, "call of " + spec.name);
  } else {
    ++s_.budget_spent.tool_calls;
  }
  Emit(t.path,
       storage::EffectIntent{f.key, spec.name, spec.effect, spec.risk, JsonPayload(arguments),
                             f.attempt, spec.executor, spec.idempotent});
  out_.call = EffectCommand{f.key, std::move(spec), std::move(arguments), timeout_ms, t.path};
  s_.waiting_on = "effect " + f.key;
}

uint64_t Machine::WithinEnclosingTimeouts(uint64_t timeout_ms) const {
  // A call may not outlive the timeout of any task it runs inside.
  for (const Frame& outer : s_.stack) {
    if (outer.is_list || outer.timeout_timer.empty()) continue;
    const int64_t left_ms = (outer.timeout_due_ns - s_.now_ns) / 1'000'000;
    timeout_ms =
        std::min<uint64_t>(timeout_ms, static_cast<uint64_t>(std::max<int64_t>(left_ms, 1)));
  }
  return timeout_ms;
}

void Machine::NextIteration(Frame& f, const Task& t) {
  const auto& loop = std::get<ForBody>(t.body);
  if (f.iteration >= f.items.size()) {
    SharedJson value = std::move(f.data);
    return Complete(std::move(value));
  }
  if (loop.while_) {
    Result<Json> go = Eval(*loop.while_, /*implicit=*/true, *f.data, &f);
    if (!go.ok()) return Fault(ExpressionError(go.status(), t.path));
    if (!Truthy(*go)) {
      SharedJson value = std::move(f.data);
      return Complete(std::move(value));
    }
  }
  Frame list;
  list.is_list = true;
  list.list = ListKind::kForBody;
  list.owner = t.id;
  list.data = f.data;
  s_.stack.push_back(std::move(list));
}

void Machine::ListDone(SharedJson value) {
  if (s_.stack.empty()) return EndWorkflow(std::move(value).Take());
  Frame& f = s_.stack.back();
  const Task& t = TaskOf(f.task);
  if (std::holds_alternative<ForBody>(t.body)) {
    f.data = std::move(value);
    ++f.iteration;
    return NextIteration(f, t);
  }
  // do, try body, catch.do: the task's raw output is the list's last output.
  Complete(std::move(value));
}

void Machine::ChildDone(SharedJson value, const FlowDirective& directive) {
  if (s_.stack.empty()) return EndWorkflow(std::move(value).Take());
  Frame& parent = s_.stack.back();
  if (!parent.is_list) {  // a call of a use.functions entry
    return Complete(std::move(value));
  }
  parent.data = std::move(value);
  switch (directive.kind) {
    case FlowDirective::Kind::kContinue:
      ++parent.index;
      break;
    case FlowDirective::Kind::kExit:
      parent.index = static_cast<uint32_t>(ListOf(parent).size());
      break;
    case FlowDirective::Kind::kGoto:
      parent.index = directive.target_index;
      break;
    case FlowDirective::Kind::kEnd: {
      SharedJson data = std::move(parent.data);
      while (!s_.stack.empty()) {
        if (s_.stack.back().is_list) {
          s_.stack.pop_back();
        } else {
          PopTaskFrame(nullptr);
        }
      }
      return EndWorkflow(std::move(data).Take());
    }
  }
}

void Machine::Complete(SharedJson raw_output, std::optional<FlowDirective> directive) {
  Frame& f = s_.stack.back();
  const Task& t = TaskOf(f.task);
  // Without output.as the raw output is the output: shared, not copied.
  SharedJson output = std::move(raw_output);
  if (t.output.transform) {
    Result<Json> transformed = Filter(t.output, *output, &f, nullptr, "output.as");
    if (!transformed.ok()) return Fault(ExpressionError(transformed.status(), t.path));
    output = std::move(transformed).value();
  }
  if (Status st = CheckSchema(t.output, *output, "task output"); !st.ok()) {
    return Fault(
        MakeError(error_type::kValidation, 400, "Invalid task output", st.message(), t.path));
  }
  if (t.export_.transform) {
    Result<Json> context = Eval(*t.export_.transform, /*implicit=*/true, *output, &f, &*output);
    if (!context.ok()) return Fault(ExpressionError(context.status(), t.path));
    if (Status st = CheckSchema(t.export_, *context, "exported context"); !st.ok()) {
      return Fault(MakeError(error_type::kValidation, 400, "Invalid exported context", st.message(),
                             t.path));
    }
    s_.context = std::move(context).value();
    context_to_jq_ = false;
  }
  // Once: for the bound and for the event, and kept with the value, which is often the
  // next task's input (its task_routed event gives the same text again).
  std::string dumped = output.Dump();
  if (dumped.size() > limits::run_data_bytes_max) {
    return Fault(MakeError(
        error_type::kRuntime, 500, "Output too large",
        "the task's output is larger than " + std::to_string(limits::run_data_bytes_max) + " bytes",
        t.path));
  }
  const FlowDirective flow = directive.value_or(t.then);
  Emit(t.path, storage::TaskCompleted{t.name,
                                      storage::TaskCompleted::Status::kCompleted,
                                      Payload::Json(dumped),
                                      {},
                                      flow.kind == FlowDirective::Kind::kGoto   ? flow.target
                                      : flow.kind == FlowDirective::Kind::kExit ? "exit"
                                      : flow.kind == FlowDirective::Kind::kEnd  ? "end"
                                                                                : "",
                                      f.attempt});
  if (!f.timeout_timer.empty()) {
    Emit(t.path, storage::TimerCancelled{f.timeout_timer, f.timeout_due_ns});
  }
  s_.stack.pop_back();  // first: the frame may have shared the output (its input)
  output.KeepDump(std::move(dumped));
  ChildDone(std::move(output), flow);
}

void Machine::PopTaskFrame(const Json* error) {
  Frame& f = s_.stack.back();
  const Task& t = TaskOf(f.task);
  storage::TaskCompleted done{t.name,
                              storage::TaskCompleted::Status::kFaulted,
                              Payload::None(),
                              error ? ToErrorInfo(*error) : storage::ErrorInfo{},
                              "",
                              f.attempt};
  if (error != nullptr) Emit(t.path, std::move(done));
  if (!f.timeout_timer.empty()) {
    Emit(t.path, storage::TimerCancelled{f.timeout_timer, f.timeout_due_ns});
  }
  if ((f.phase == TaskPhase::kTimer || f.phase == TaskPhase::kRetryWait ||
       f.phase == TaskPhase::kApproval) &&
      !f.key.empty()) {
    Emit(t.path, storage::TimerCancelled{f.key, f.key_due_ns});
  }
  if (f.phase == TaskPhase::kDecision && !f.key.empty()) ReleaseDecision(f, t);
  s_.stack.pop_back();
}

void Machine::Fault(Json error) {
  while (!s_.stack.empty()) {
    Frame& f = s_.stack.back();
    if (f.is_list) {
      s_.stack.pop_back();
      continue;
    }
    const Task& t = TaskOf(f.task);
    if (std::holds_alternative<TryBody>(t.body) && f.phase == TaskPhase::kChild &&
        TryCatch(f, t, error)) {
      return;
    }
    PopTaskFrame(&error);
  }
  Stop(StopReason::kFaulted, nullptr, error, error.value("title", ""));
}

bool Machine::TryCatch(Frame& f, const Task& t, const Json& error) {
  const Catch& c = std::get<TryBody>(t.body).catch_;
  for (const auto& [key, wanted] : c.errors.with.items()) {
    auto actual = error.find(key);
    if (actual == error.end()) return false;
    if (key == "type" && wanted.is_string() && actual->is_string()) {
      if (!ErrorTypeMatches(wanted.get<std::string>(), actual->get<std::string>())) return false;
    } else if (*actual != wanted) {
      return false;
    }
  }
  // when / exceptWhen see the error under its `as` name.
  f.error = error;
  f.phase = TaskPhase::kCatch;
  auto check = [&](const std::optional<Template>& expr, bool want) -> std::optional<bool> {
    if (!expr) return want;
    Result<Json> v = Eval(*expr, /*implicit=*/true, error, &f);
    if (!v.ok()) return std::nullopt;
    return Truthy(*v);
  };
  std::optional<bool> when = check(c.when, true);
  std::optional<bool> except = check(c.except_when, false);
  if (!when || !except || !*when || *except) {
    f.phase = TaskPhase::kChild;
    f.error = nullptr;
    return false;
  }
  if (c.retry) {
    const RetryPolicy& r = *c.retry;
    std::optional<bool> retry_when = check(r.when, true);
    std::optional<bool> retry_except = check(r.except_when, false);
    const uint32_t retries_done = f.attempt - 1;
    const uint32_t max_retries = std::min<uint32_t>(
        r.attempt_count.value_or(limits::retry_attempts_max), limits::retry_attempts_max);
    std::optional<Duration> total = r.total_duration ? r.total_duration : r.attempt_duration;
    const bool in_time =
        !total || s_.now_ns - f.started_ns < static_cast<int64_t>(total->ms) * 1'000'000;
    if (retry_when.value_or(false) && !retry_except.value_or(true) && retries_done < max_retries &&
        in_time) {
      const uint32_t n = retries_done + 1;
      double delay = static_cast<double>(r.delay.ms);
      if (r.backoff.kind == Backoff::Kind::kLinear) delay *= n;
      if (r.backoff.kind == Backoff::Kind::kExponential) delay *= std::pow(2.0, n - 1);
      if (r.jitter_from || r.jitter_to) {
        const uint64_t lo = r.jitter_from ? r.jitter_from->ms : 0;
        const uint64_t hi = std::max(lo, r.jitter_to ? r.jitter_to->ms : lo);
        // Deterministic jitter: the same run, task and attempt always wait the same.
        const uint64_t span = hi - lo + 1;
        delay += static_cast<double>(lo + Mix(s_.run_id + t.path + std::to_string(n)) % span);
      }
      delay = std::min(delay, static_cast<double>(limits::retry_delay_ms_max));
      f.error = nullptr;
      f.phase = TaskPhase::kRetryWait;
      f.key = NextTimerId('r');
      const int64_t due = s_.now_ns + static_cast<int64_t>(delay) * 1'000'000;
      f.key_due_ns = due;
      ScheduleTimer(t.path, f.key, due, storage::TimerPurpose::kRetryBackoff);
      s_.status = RunStatus::kWaiting;
      s_.waiting_on = "retry " + std::to_string(n) + " of " + t.path + " at " + FormatTime(due);
      return true;
    }
  }
  if (!c.do_.empty()) {
    Frame list;
    list.is_list = true;
    list.list = ListKind::kCatchBody;
    list.owner = t.id;
    list.data = f.tinput;
    s_.stack.push_back(std::move(list));
    return true;
  }
  Complete(f.tinput);
  return true;
}

void Machine::EndWorkflow(Json value) {
  Result<Json> output = def_.output.transform
                            ? Filter(def_.output, value, nullptr, nullptr, "output.as")
                            : Result<Json>(std::move(value));
  if (!output.ok()) {
    return Stop(StopReason::kFaulted, nullptr, ExpressionError(output.status(), "/output/as"),
                output.status().message());
  }
  if (Status st = CheckSchema(def_.output, *output, "workflow output"); !st.ok()) {
    return Stop(
        StopReason::kFaulted, nullptr,
        MakeError(error_type::kValidation, 400, "Invalid workflow output", st.message(), "/"),
        st.message());
  }
  Stop(StopReason::kCompleted, std::move(output).value(), nullptr, "");
}

void Machine::Stop(StopReason reason, Json output, Json error, std::string detail,
                   storage::Actor actor) {
  // A decision still under way gives its reservation back, as when its task is abandoned:
  // the stopped run never acts on it (and a late answer finds the run stopped).
  for (const Frame& f : s_.stack) {
    if (!f.is_list && f.phase == TaskPhase::kDecision && !f.key.empty()) {
      ReleaseDecision(f, TaskOf(f.task));
    }
  }
  s_.stack.clear();
  s_.stop_reason = reason;
  s_.waiting_on.clear();
  s_.effect_indeterminate = false;
  switch (reason) {
    case StopReason::kCompleted:
      s_.status = RunStatus::kCompleted;
      break;
    case StopReason::kCancelled:
      s_.status = RunStatus::kCancelled;
      break;
    case StopReason::kKilled:
      s_.status = RunStatus::kKilled;
      break;
    default:
      s_.status = RunStatus::kFailed;
      break;
  }
  storage::RunStopped stopped;
  stopped.reason = reason;
  if (!output.is_null() || reason == StopReason::kCompleted) stopped.output = JsonPayload(output);
  if (!error.is_null()) stopped.error = ToErrorInfo(error);
  stopped.detail = std::move(detail);
  stopped.actor = std::move(actor);
  Emit("/", std::move(stopped));
}

// ---------------------------------------------------------------------------------------
// listen

bool Machine::EventMatches(const EventFilter& filter, const Json& envelope, const Frame& f) {
  for (const auto& [key, wanted] : filter.with.items()) {
    const Json actual = envelope.contains(key) ? envelope[key] : Json();
    if (wanted.is_string() && IsRuntimeExpression(wanted.get<std::string>())) {
      Result<Json> v = Eval(wanted, /*implicit=*/true, actual, &f);
      if (!v.ok() || !Truthy(*v)) return false;
    } else if (actual != wanted) {
      return false;
    }
  }
  return true;
}

bool Machine::TryListen(Frame& f, const Task& t) {
  const auto& listen = std::get<ListenBody>(t.body);
  if (f.matched.is_null()) f.matched = Json(std::vector<bool>(listen.filters.size(), false));
  auto read = [&](const Json& envelope) {
    switch (listen.read) {
      case ListenBody::Read::kEnvelope:
        return envelope;
      case ListenBody::Read::kData:
      case ListenBody::Read::kRaw:
        return envelope.value("data", Json());
    }
    return envelope;
  };
  auto consume = [&](size_t i) {
    f.consumed.push_back(read(s_.inbox[i]));
    s_.inbox.erase(s_.inbox.begin() + static_cast<std::ptrdiff_t>(i));
  };
  bool done = false;
  if (listen.mode == ListenBody::Mode::kAll) {
    for (size_t k = 0; k < listen.filters.size(); ++k) {
      if (f.matched[k].get<bool>()) continue;
      for (size_t i = 0; i < s_.inbox.size(); ++i) {
        if (EventMatches(listen.filters[k], s_.inbox[i], f)) {
          f.matched[k] = true;
          consume(i);
          break;
        }
      }
    }
    done = std::all_of(f.matched.begin(), f.matched.end(),
                       [](const Json& m) { return m.get<bool>(); });
  } else {
    for (size_t i = 0; i < s_.inbox.size() && !done; ++i) {
      const bool any =
          listen.filters.empty() ||
          std::any_of(listen.filters.begin(), listen.filters.end(),
                      [&](const EventFilter& ef) { return EventMatches(ef, s_.inbox[i], f); });
      if (any) {
        consume(i);
        done = true;
      }
    }
  }
  if (!done) return false;
  f.phase = TaskPhase::kChild;
  Json consumed = std::move(f.consumed);
  f.consumed = nullptr;
  f.matched = nullptr;
  Complete(std::move(consumed));
  return true;
}

}  // namespace cairn::engine::internal

namespace cairn::engine {

using internal::Machine;

std::string FormatTime(int64_t ns) {
  const std::time_t seconds = static_cast<std::time_t>(ns / 1'000'000'000);
  const int millis = static_cast<int>((ns / 1'000'000) % 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buffer;
}

Interpreter::Interpreter(std::shared_ptr<const Definition> definition, ToolLookup tools,
                         std::shared_ptr<const policy::Policy> policy)
    : definition_(std::move(definition)), tools_(std::move(tools)), policy_(std::move(policy)) {
  if (!policy_) policy_ = policy::Policy::Default();
}

Json DecisionCommandToJson(const DecisionCommand& command) {
  return Json{{"key", command.decision_key},
              {"agent", command.agent},
              {"path", command.task_path},
              {"request", command.request}};
}

std::optional<DecisionCommand> DecisionCommandFromJson(const Json& json) {
  if (!json.is_object() || !json.contains("key") || !json["key"].is_string() ||
      !json.contains("request") || !json["request"].is_object()) {
    return std::nullopt;
  }
  DecisionCommand command;
  command.decision_key = json["key"].get<std::string>();
  command.agent = json.value("agent", "");
  command.task_path = json.value("path", "");
  command.request = json["request"];
  return command;
}

Result<StepOutput> Interpreter::Step(RunState& state, const StepInput& input,
                                     Evaluator& evaluator) {
  StepOutput out;
  out.events.reserve(internal::kEventsPerStepReserve);
  Machine machine(*definition_, tools_, *policy_, policy_observer_, state, out, evaluator);
  CAIRN_RETURN_IF_ERROR(machine.Apply(input));
  // An input may have resumed a waiting run; a continue resumes a run stopped at the bound.
  if (!IsTerminal(state.status) && state.waiting_on.empty()) {
    state.status = storage::RunStatus::kRunning;
  }
  machine.Run();
  return out;
}

}  // namespace cairn::engine
