// The governance half of a step: policy verdicts before every call, approvals, the
// budget ledger, and agent decisions (DESIGN.md §2, §6, §8). Pure like the rest of the
// machine: the policy is a pure function of (policy file, question), the ledger lives in
// the state, and the agent's answer arrives as an input event; replay re-derives every
// event here from the same inputs.
#include <algorithm>
#include <limits>
#include <set>

#include "agent/agent.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "engine/core/machine.h"

namespace cairn::engine {

Sha256 ApprovalBinding(std::string_view tool, const Json& arguments) {
  // Versioned so that the binding can change form without matching old approvals.
  return Sha256::Of("cairn.approval.v1\n" + std::string(tool) + "\n" + DumpJson(arguments));
}

namespace internal {
namespace {

using Stage = storage::PolicyVerdict::Stage;
using Phase = storage::BudgetCharged::Phase;

constexpr const char* kBudgetErrorType = "https://cairn.dev/errors/budget-exhausted";
constexpr const char* kAgentErrorTypePrefix = "https://cairn.dev/errors/agent/";

storage::PolicyVerdict::Decision ToWire(policy::Decision d) {
  switch (d) {
    case policy::Decision::kAllow:
      return storage::PolicyVerdict::Decision::kAllow;
    case policy::Decision::kRequireApproval:
      return storage::PolicyVerdict::Decision::kRequireApproval;
    case policy::Decision::kDeny:
      return storage::PolicyVerdict::Decision::kDeny;
  }
  return storage::PolicyVerdict::Decision::kDeny;
}

uint64_t Saturating(uint64_t cap, uint64_t spent, uint64_t reserved) {
  const uint64_t used =
      spent + reserved < spent ? std::numeric_limits<uint64_t>::max() : spent + reserved;
  return used >= cap ? 0 : cap - used;
}

std::string DescribeAmounts(std::string_view dimension, const storage::BudgetAmounts& a) {
  if (dimension == "steps") return std::to_string(a.steps);
  if (dimension == "tokens") return std::to_string(a.tokens);
  if (dimension == "cost") {
    return std::to_string(a.cost_micros / 1'000'000) + "." +
           std::to_string(1'000'000 + a.cost_micros % 1'000'000).substr(1);
  }
  if (dimension == "wall_clock") return std::to_string(a.wall_ms) + " ms";
  return std::to_string(a.tool_calls);
}

// HTTP-like status of a refused decision, for the error the task faults with.
int DecisionErrorStatus(std::string_view reason) {
  if (reason == "timeout") return 504;
  if (reason == "agent_unavailable" || reason == "agent_error") return 502;
  if (reason == "unknown_agent") return 400;
  if (reason == "token_budget_exceeded" || reason == "cost_budget_exceeded") return 429;
  return 422;  // the answer was refused (fail-closed)
}

}  // namespace

policy::ToolUse Machine::Use(const Task& t, const ToolSpec& spec, const Json& arguments,
                             bool for_agent) const {
  policy::ToolUse use;
  use.workflow_namespace = def_.namespace_;
  use.workflow_name = def_.name;
  use.run_id = s_.run_id;
  use.task_path = t.path;
  use.tool = spec.name;
  use.effect = spec.effect;
  use.risk = spec.risk;
  use.arguments = arguments;
  use.for_agent = for_agent;
  return use;
}

void Machine::EmitVerdict(const std::string& path, const policy::Verdict& verdict,
                          const ToolSpec& spec, const Json& arguments, Stage stage) {
  storage::PolicyVerdict event;
  event.policy_hash = policy_.hash();
  event.rule_id = verdict.rule_id;
  event.decision = ToWire(verdict.decision);
  event.reason_code = verdict.reason_code;
  event.tool = spec.name;
  event.risk = spec.risk;
  event.arguments_hash = Sha256::Of(DumpJson(arguments));
  event.stage = stage;
  event.detail = verdict.detail;
  Emit(path, std::move(event));
}

policy::Verdict Machine::AskPolicy(const Task& t, const ToolSpec& spec, const Json& arguments,
                                   bool for_agent) {
  const policy::ToolUse use = Use(t, spec, arguments, for_agent);
  policy::Verdict verdict = policy_.Evaluate(use);
  EmitVerdict(t.path, verdict, spec, arguments, Stage::kBeforeCall);
  if (observer_) observer_(use, verdict, out_.events.size() - 1);
  return verdict;
}

std::optional<std::string> Machine::Exceeds(const storage::BudgetAmounts& more) const {
  storage::BudgetAmounts caps = s_.budget_caps;
  caps.wall_ms = 0;  // the wall clock is watched by a timer
  return policy::ExceededDimension(caps, s_.budget_spent, s_.budget_reserved, more);
}

void Machine::ExhaustBudget(const std::string& dimension, const std::string& path) {
  storage::BudgetAmounts used = s_.budget_spent;
  if (dimension == "wall_clock")
    used.wall_ms = static_cast<uint64_t>(s_.now_ns - s_.started_ns) / 1'000'000;
  const std::string detail = "the run's " + dimension + " budget of " +
                             DescribeAmounts(dimension, s_.budget_caps) + " is exhausted (spent " +
                             DescribeAmounts(dimension, used) + ", reserved " +
                             DescribeAmounts(dimension, s_.budget_reserved) + ")";
  Stop(StopReason::kBudgetExhausted, nullptr,
       MakeError(kBudgetErrorType, 429, "Budget exhausted", detail, path),
       "budget_exhausted: " + dimension);
}

void Machine::Charge(const std::string& path, Phase phase, const std::string& reservation,
                     const storage::BudgetAmounts& amounts, const storage::BudgetAmounts& release,
                     bool cost_known, const std::string& purpose) {
  auto add = [](storage::BudgetAmounts& to, const storage::BudgetAmounts& a, bool subtract) {
    auto apply = [subtract](auto& field, auto value) {
      using T = std::decay_t<decltype(field)>;
      if (!subtract) {
        field = field + static_cast<T>(value) < field ? std::numeric_limits<T>::max()
                                                      : field + static_cast<T>(value);
      } else {
        field = field < static_cast<T>(value) ? T{0} : field - static_cast<T>(value);
      }
    };
    apply(to.steps, a.steps);
    apply(to.tokens, a.tokens);
    apply(to.cost_micros, a.cost_micros);
    apply(to.wall_ms, a.wall_ms);
    apply(to.tool_calls, a.tool_calls);
  };
  if (phase == Phase::kReserve) {
    add(s_.budget_reserved, amounts, false);
  } else {
    add(s_.budget_reserved, release, true);
    if (phase == Phase::kSettle) add(s_.budget_spent, amounts, false);
  }
  if (!cost_known) s_.cost_unknown = true;
  storage::BudgetCharged event;
  event.phase = phase;
  event.reservation_id = reservation;
  event.amounts = amounts;
  event.cost_known = cost_known;
  event.spent_after = s_.budget_spent;
  event.reserved_after = s_.budget_reserved;
  event.purpose = purpose;
  Emit(path, std::move(event));
}

void Machine::StartBudgetClock() {
  if (s_.budget_caps.wall_ms == 0) return;
  s_.budget_timer = NextTimerId('b');
  ScheduleTimer("/", s_.budget_timer,
                s_.started_ns + static_cast<int64_t>(s_.budget_caps.wall_ms) * 1'000'000,
                storage::TimerPurpose::kBudgetWallClock);
}

// ---------------------------------------------------------------------------------------
// Calls

void Machine::RequestEffect(Frame& f, const Task& t, ToolSpec spec, Json arguments) {
  if (auto dimension = Exceeds(storage::BudgetAmounts{0, 0, 0, 0, 1})) {
    policy::Verdict refused;
    refused.decision = policy::Decision::kDeny;
    refused.rule_id = "budgets";
    refused.reason_code = policy::reason::kBudgetExhausted;
    refused.detail = "the run's " + *dimension + " budget is exhausted";
    EmitVerdict(t.path, refused, spec, arguments, Stage::kBeforeCall);
    return ExhaustBudget(*dimension, t.path);
  }
  const policy::Verdict verdict = AskPolicy(t, spec, arguments, /*for_agent=*/false);
  switch (verdict.decision) {
    case policy::Decision::kDeny:
      return Stop(StopReason::kPolicyDenied, nullptr,
                  MakeError(error_type::kAuthorization, 403, "Denied by policy",
                            "tool '" + spec.name + "': " + verdict.detail, t.path),
                  "policy_denied: " + verdict.rule_id);
    case policy::Decision::kRequireApproval:
      return RequestApproval(f, t, std::move(spec), std::move(arguments), verdict);
    case policy::Decision::kAllow:
      break;
  }
  StartEffect(f, t, std::move(spec), std::move(arguments));
}

void Machine::RequestApproval(Frame& f, const Task& t, ToolSpec spec, Json arguments,
                              const policy::Verdict& verdict) {
  const std::string id = NextTimerId('a');
  const Sha256 binding = ApprovalBinding(spec.name, arguments);
  uint64_t expires_ms = verdict.approval_expires_after_ms != 0 ? verdict.approval_expires_after_ms
                                                               : limits::approval_expiry_ms_default;
  expires_ms = std::min(expires_ms, limits::approval_expiry_ms_max);
  const int64_t due = s_.now_ns + static_cast<int64_t>(expires_ms) * 1'000'000;
  storage::ApprovalRequested request;
  request.approval_id = id;
  request.tool = spec.name;
  request.binding_hash = binding;
  request.arguments = JsonPayload(arguments);
  request.expires_at_ns = due;
  request.on_expiry = storage::ApprovalResolution::kExpired;
  request.rule_id = verdict.rule_id;
  request.reason = verdict.detail;
  request.approvers = verdict.approvers;
  Emit(t.path, std::move(request));
  ScheduleTimer(t.path, id, due, storage::TimerPurpose::kApprovalExpiry);
  f.phase = TaskPhase::kApproval;
  f.key = id;
  f.key_due_ns = due;
  f.pending = Json{{"tool", ToolSpecToJson(spec)},
                   {"arguments", std::move(arguments)},
                   {"binding", binding.Hex()},
                   {"approvers", verdict.approvers},
                   {"rule", verdict.rule_id}};
  s_.status = RunStatus::kWaiting;
  s_.waiting_on = "approval " + id + " of " + spec.name + " until " + FormatTime(due);
}

void Machine::OnApproval(const storage::ApprovalResolved& resolved) {
  if (s_.stack.empty()) return;
  Frame& f = s_.stack.back();
  if (f.is_list || f.phase != TaskPhase::kApproval || f.key != resolved.approval_id) return;
  if (resolved.binding_hash.Hex() != f.pending.value("binding", "")) return;
  const Task& t = TaskOf(f.task);
  Emit(t.path, storage::TimerCancelled{f.key, f.key_due_ns});
  std::optional<ToolSpec> spec = ToolSpecFromJson(f.pending.value("tool", Json()));
  Json arguments = f.pending.value("arguments", Json());
  const std::string rule = f.pending.value("rule", "");
  f.key.clear();
  f.key_due_ns = 0;
  f.pending = nullptr;
  f.phase = TaskPhase::kChild;
  s_.waiting_on.clear();
  s_.status = RunStatus::kRunning;
  const std::string who = resolved.actor.name.empty() ? "an operator" : resolved.actor.name;
  if (resolved.resolution == storage::ApprovalResolution::kRejected || !spec) {
    return Stop(StopReason::kApprovalDenied, nullptr,
                MakeError(error_type::kAuthorization, 403, "Approval rejected",
                          who + " rejected the call" +
                              (resolved.reason.empty() ? "" : ": " + resolved.reason),
                          t.path),
                "approval_denied by " + who);
  }
  // Approved: the budgets are checked again just before the commit (the kill switch is
  // the engine's: it holds the call back if one was engaged meanwhile).
  policy::Verdict commit;
  commit.rule_id = rule;
  if (auto dimension = Exceeds(storage::BudgetAmounts{0, 0, 0, 0, 1})) {
    commit.decision = policy::Decision::kDeny;
    commit.reason_code = policy::reason::kBudgetExhausted;
    commit.detail = "approved by " + who + ", but the run's " + *dimension + " budget is exhausted";
    EmitVerdict(t.path, commit, *spec, arguments, Stage::kBeforeCommit);
    return ExhaustBudget(*dimension, t.path);
  }
  commit.decision = policy::Decision::kAllow;
  commit.reason_code = "approved";
  commit.detail = "approved by " + who + (resolved.reason.empty() ? "" : ": " + resolved.reason);
  EmitVerdict(t.path, commit, *spec, arguments, Stage::kBeforeCommit);
  StartEffect(f, t, std::move(*spec), std::move(arguments));
}

void Machine::ExpireApproval(Frame& f, const Task& t) {
  storage::ApprovalResolved expired;
  expired.approval_id = f.key;
  expired.resolution = storage::ApprovalResolution::kExpired;
  expired.actor = storage::Actor{"cairn", "system"};
  expired.reason = "no answer before " + FormatTime(f.key_due_ns);
  if (auto binding = Sha256::FromHex(f.pending.value("binding", "")); binding.ok()) {
    expired.binding_hash = *binding;
  }
  const std::string tool = f.pending.value("tool", Json::object()).value("name", "");
  Emit(t.path, std::move(expired));
  f.key.clear();  // its timer fired: nothing to cancel
  f.key_due_ns = 0;
  Stop(StopReason::kApprovalExpired, nullptr,
       MakeError(error_type::kAuthorization, 403, "Approval expired",
                 "nobody approved the call of '" + tool + "' in time (denied by default)", t.path),
       "approval_expired");
}

// ---------------------------------------------------------------------------------------
// Agent decisions

void Machine::StartDecision(Frame& f, const Task& t, const AgentCall& call) {
  Json request_template{{"goal", call.goal}, {"options", call.options}};
  if (!call.context.is_null()) request_template["context"] = call.context;
  Result<Json> evaluated = Eval(request_template, /*implicit=*/false, *f.tinput, &f);
  if (!evaluated.ok()) return Fault(ExpressionError(evaluated.status(), t.path));
  auto invalid = [&](const std::string& detail) {
    Fault(MakeError(error_type::kValidation, 400, "Invalid agent request", detail, t.path));
  };
  const Json& goal = (*evaluated)["goal"];
  const Json& options = (*evaluated)["options"];
  const Json context = evaluated->contains("context") ? (*evaluated)["context"] : *f.tinput;
  if (!goal.is_string() || goal.get_ref<const std::string&>().empty() ||
      goal.get_ref<const std::string&>().size() > limits::agent_goal_bytes_max) {
    return invalid("the goal must be a non-empty string of at most " +
                   std::to_string(limits::agent_goal_bytes_max) + " bytes, got " +
                   std::string(JsonTypeName(goal)));
  }
  if (!options.is_array() || options.empty() || options.size() > limits::agent_options_max) {
    return invalid("the options must be a list of 1 to " +
                   std::to_string(limits::agent_options_max) + " strings, got " +
                   (options.is_array() ? std::to_string(options.size()) + " entries"
                                       : std::string(JsonTypeName(options))));
  }
  std::set<std::string> seen;
  for (const Json& option : options) {
    if (!option.is_string() || option.get_ref<const std::string&>().empty() ||
        option.get_ref<const std::string&>().size() > limits::agent_option_bytes_max) {
      return invalid("each option must be a non-empty string of at most " +
                     std::to_string(limits::agent_option_bytes_max) + " bytes, got " +
                     DumpJson(option).substr(0, 80));
    }
    if (!seen.insert(option.get<std::string>()).second) {
      return invalid("option '" + option.get<std::string>() + "' is listed twice");
    }
  }
  if (DumpJson(context).size() > limits::agent_context_bytes_max) {
    return invalid("the context is larger than " + std::to_string(limits::agent_context_bytes_max) +
                   " bytes of JSON");
  }
  // The read tools the agent may call: each must be a catalog read tool the policy allows.
  Json offers = Json::array();
  for (const std::string& name : call.tools) {
    std::optional<ToolSpec> spec = tools_ ? tools_(name) : std::nullopt;
    if (!spec) {
      return Fault(MakeError(error_type::kConfiguration, 400, "Unknown tool",
                             "no tool named '" + name + "' is registered for the agent", t.path));
    }
    if (spec->effect != storage::EffectKind::kRead) {
      return Fault(MakeError(
          error_type::kConfiguration, 400, "Not a read tool",
          "tool '" + name + "' writes (effect: write); agents may call only read tools", t.path));
    }
    const policy::Verdict verdict = AskPolicy(t, *spec, Json(), /*for_agent=*/true);
    if (verdict.decision != policy::Decision::kAllow) {
      return Stop(StopReason::kPolicyDenied, nullptr,
                  MakeError(error_type::kAuthorization, 403, "Denied by policy",
                            "tool '" + name + "' offered to the agent: " + verdict.detail, t.path),
                  "policy_denied: " + verdict.rule_id);
    }
    offers.push_back(Json{{"name", spec->name}, {"description", spec->description}});
  }
  // Bounds: the task's own, within the run's remaining budget and enclosing timeouts.
  const uint64_t timeout_ms = WithinEnclosingTimeouts(
      call.timeout_ms != 0 ? call.timeout_ms : limits::agent_timeout_ms_default);
  const storage::BudgetAmounts& caps = s_.budget_caps;
  bool run_bound_tokens = false;
  bool run_bound_cost = false;
  uint64_t max_tokens = call.budget_tokens;
  int64_t max_cost = call.budget_cost_micros;
  if (caps.tokens != 0) {
    const uint64_t left =
        Saturating(caps.tokens, s_.budget_spent.tokens, s_.budget_reserved.tokens);
    if (left == 0) return ExhaustBudget("tokens", t.path);
    if (max_tokens == 0 || left < max_tokens) {
      max_tokens = left;
      run_bound_tokens = true;
    }
  }
  if (caps.cost_micros != 0) {
    const int64_t used = s_.budget_spent.cost_micros + s_.budget_reserved.cost_micros;
    const int64_t left = used >= caps.cost_micros ? 0 : caps.cost_micros - used;
    if (left == 0) return ExhaustBudget("cost", t.path);
    if (max_cost == 0 || left < max_cost) {
      max_cost = left;
      run_bound_cost = true;
    }
  }
  const uint32_t max_steps = call.max_steps != 0 ? call.max_steps : limits::agent_steps_default;
  f.key = s_.run_id + "#" + std::to_string(++s_.effects);
  f.phase = TaskPhase::kDecision;
  const std::string agent_label = call.agent.empty() ? "the default agent" : "agent " + call.agent;
  Charge(t.path, Phase::kReserve, f.key, storage::BudgetAmounts{0, max_tokens, max_cost, 0, 0}, {},
         true, "decision by " + agent_label);
  f.pending = Json{{"options", options},
                   {"reserved", {{"tokens", max_tokens}, {"cost", max_cost}}},
                   {"run_bound", {{"tokens", run_bound_tokens}, {"cost", run_bound_cost}}}};
  DecisionCommand command;
  command.decision_key = f.key;
  command.agent = call.agent;
  command.task_path = t.path;
  command.request = Json{{"goal", goal},
                         {"options", options},
                         {"context", context},
                         {"tools", std::move(offers)},
                         {"limits",
                          {{"max_steps", max_steps},
                           {"timeout_ms", timeout_ms},
                           {"max_tokens", max_tokens},
                           {"max_cost_micros", max_cost}}}};
  out_.decide = std::move(command);
  s_.waiting_on = "decision " + f.key;
}

Json DecisionOutput(const storage::AgentDecided& decided) {
  agent::DecisionOutcome outcome;
  outcome.agent = decided.agent;
  outcome.model = decided.model;
  outcome.option = decided.option;
  outcome.rationale = decided.rationale;
  if (decided.has_confidence) outcome.confidence = decided.confidence;
  outcome.steps_used = decided.steps_used;
  outcome.usage =
      agent::Usage{decided.usage.prompt_tokens, decided.usage.completion_tokens,
                   decided.usage.cost_micros, decided.usage.cost_known, decided.usage.calls};
  return outcome.ToTaskOutput();
}

void Machine::ReleaseDecision(const Frame& f, const Task& t) {
  const Json reserved = f.pending.value("reserved", Json::object());
  storage::BudgetAmounts release;
  release.tokens = reserved.value("tokens", uint64_t{0});
  release.cost_micros = reserved.value("cost", int64_t{0});
  Charge(t.path, Phase::kRelease, f.key, {}, release, true, "decision abandoned");
}

void Machine::OnDecided(const storage::AgentDecided& decided) {
  if (s_.stack.empty()) return;
  Frame& f = s_.stack.back();
  storage::BudgetAmounts actual;
  actual.tokens = decided.usage.prompt_tokens + decided.usage.completion_tokens;
  if (f.is_list || f.phase != TaskPhase::kDecision || f.key != decided.decision_key) {
    // A late answer to an abandoned decision (its reservation was released): not acted
    // on, but what it used is spent.
    actual.cost_micros = decided.usage.cost_known ? decided.usage.cost_micros : 0;
    Charge("/", Phase::kSettle, decided.decision_key, actual, {}, decided.usage.cost_known,
           "late answer of an abandoned decision");
    return;
  }
  const Task& t = TaskOf(f.task);
  const Json reserved = f.pending.value("reserved", Json::object());
  const Json run_bound = f.pending.value("run_bound", Json::object());
  const Json options = f.pending.value("options", Json::array());
  storage::BudgetAmounts release;
  release.tokens = reserved.value("tokens", uint64_t{0});
  release.cost_micros = reserved.value("cost", int64_t{0});
  // An unknown cost is never counted as zero: it takes the whole reservation.
  actual.cost_micros = decided.usage.cost_known ? decided.usage.cost_micros : release.cost_micros;
  Charge(t.path, Phase::kSettle, f.key, actual, release, decided.usage.cost_known,
         "decision by " + (decided.agent.empty() ? std::string("an agent") : decided.agent));
  f.key.clear();
  f.pending = nullptr;
  f.phase = TaskPhase::kChild;
  s_.waiting_on.clear();
  s_.status = RunStatus::kRunning;
  std::string reason = decided.reason_code;
  std::string detail = decided.detail;
  if (reason == "decided") {
    if (std::find(options.begin(), options.end(), Json(decided.option)) != options.end()) {
      return Complete(DecisionOutput(decided));
    }
    reason = "option_not_allowed";
    detail = "'" + decided.option.substr(0, 80) + "' is not one of the options";
  }
  if ((reason == "token_budget_exceeded" && run_bound.value("tokens", false)) ||
      (reason == "cost_budget_exceeded" && run_bound.value("cost", false))) {
    return ExhaustBudget(reason == "token_budget_exceeded" ? "tokens" : "cost", t.path);
  }
  Fault(MakeError(kAgentErrorTypePrefix + reason, DecisionErrorStatus(reason),
                  "Agent decision refused", reason + (detail.empty() ? "" : ": " + detail),
                  t.path));
}

}  // namespace internal
}  // namespace cairn::engine
