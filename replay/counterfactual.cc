#include "replay/counterfactual.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "base/assert.h"
#include "replay/counterfactual_impl.h"

namespace cairn::replay {
namespace {

std::string WireDecisionName(storage::PolicyVerdict::Decision d) {
  switch (d) {
    case storage::PolicyVerdict::Decision::kAllow:
      return "allow";
    case storage::PolicyVerdict::Decision::kRequireApproval:
      return "require_approval";
    case storage::PolicyVerdict::Decision::kDeny:
      return "deny";
  }
  return "deny";
}

// The budget dimensions as policies name them, with their key in BudgetToJson.
struct Dimension {
  const char* name;
  const char* key;
};
constexpr Dimension kDimensions[] = {{"steps", "steps"},
                                     {"wall_clock", "wall_ms"},
                                     {"tokens", "tokens"},
                                     {"cost", "cost_micros"},
                                     {"tool_calls", "tool_calls"}};

// A cap or an amount for people: "none" for no cap, money in decimal units, time in ms.
std::string Amount(std::string_view dimension, const Json& value, bool is_cap) {
  const int64_t n = value.is_number() ? value.get<int64_t>() : 0;
  if (is_cap && n == 0) return "none";
  if (dimension == "cost") {
    std::string fraction = std::to_string(1'000'000 + n % 1'000'000).substr(1);
    while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
    return std::to_string(n / 1'000'000) + "." + fraction;
  }
  if (dimension == "wall_clock") return std::to_string(n) + " ms";
  return std::to_string(n);
}

std::string DescribeCaps(const Difference& d) {
  const Json recorded = d.recorded.value("caps", Json::object());
  const Json counterfactual = d.counterfactual.value("caps", Json::object());
  std::string text;
  for (const Dimension& dim : kDimensions) {
    const Json r = recorded.value(dim.key, Json(0));
    const Json c = counterfactual.value(dim.key, Json(0));
    if (r == c) continue;
    if (!text.empty()) text += ", ";
    text += std::string(dim.name) + " " + Amount(dim.name, r, true) + " -> " +
            Amount(dim.name, c, true);
  }
  return text;
}

std::string DescribeDecision(const Json& side) {
  const std::string agent = side.value("agent", "");
  const std::string who = agent.empty() ? "the agent" : agent;
  const std::string reason = side.value("reason_code", "");
  if (reason == "decided") return who + " chose " + side.value("option", "");
  return who + " failed (" + reason + ")";
}

}  // namespace

std::string DescribeDifference(const Difference& d) {
  std::string line = "seq " + std::to_string(d.seq) + " " +
                     (d.task_path.empty() ? "/" : d.task_path) + ": " + d.kind + " ";
  const Json& r = d.recorded;
  const Json& c = d.counterfactual;
  if (d.kind == "policy_verdict") {
    line += r.value("tool", "") + " " + r.value("decision", "") + " (rule " +
            r.value("rule_id", "") + ") -> " + c.value("decision", "") + " (rule " +
            c.value("rule_id", "") + ": " + c.value("reason_code", "") + ")";
  } else if (d.kind == "agent_decision") {
    line += DescribeDecision(r) + " -> " + DescribeDecision(c);
  } else if (d.kind == "budget") {
    line += DescribeCaps(d) + ": " + d.note;
  } else if (d.kind == "kill_switch") {
    line += std::string(r.value("covered", false) ? "engaged" : "off") + " -> " +
            (c.value("covered", false) ? "engaged" : "off") + ": " + d.note;
  } else {
    line += d.note;
  }
  return line;
}

Json DifferenceToJson(const Difference& d) {
  return Json{{"run_id", d.run_id.str()},
              {"seq", d.seq},
              {"task_path", d.task_path},
              {"kind", d.kind},
              {"recorded", d.recorded},
              {"counterfactual", d.counterfactual},
              {"note", d.note}};
}

namespace internal {

CounterfactualRun::CounterfactualRun(const RunId& run_id,
                                     const std::vector<storage::Event>& history,
                                     std::shared_ptr<const engine::Definition> definition,
                                     std::shared_ptr<const policy::Policy> recorded_policy,
                                     std::shared_ptr<const policy::Policy> policy,
                                     const DecisionHook* agent)
    : run_id_(run_id),
      history_(history),
      definition_(std::move(definition)),
      recorded_policy_(std::move(recorded_policy)),
      policy_(std::move(policy)),
      agent_(agent != nullptr && *agent ? agent : nullptr) {}

engine::PolicyObserver CounterfactualRun::Observer() {
  if (!policy_) return {};
  return [this](const policy::ToolUse& use, const policy::Verdict& verdict, size_t index) {
    observed_.push_back(Observed{use, verdict, index});
  };
}

Difference CounterfactualRun::Make(size_t index, std::string task_path, std::string kind) {
  Difference d;
  d.run_id = run_id_;
  d.seq = history_[index].seq.value();
  d.task_path = std::move(task_path);
  d.kind = std::move(kind);
  return d;
}

// ---------------------------------------------------------------------------------------
// Policy verdicts

void CounterfactualRun::CompareVerdict(const Observed& observed, size_t index) {
  const storage::Event& recorded = history_[index];
  ++points_.verdicts;
  ++verdicts_seen_;
  const policy::Verdict mine = policy_->Evaluate(observed.use);
  // Only the decision is an outcome: another rule deciding the same is not a difference.
  if (mine.decision == observed.verdict.decision) return;
  const auto* verdict = std::get_if<storage::PolicyVerdict>(&recorded.body);
  CAIRN_ASSERT(verdict != nullptr, "an observed verdict matched a recorded policy_verdict");
  const storage::PolicyVerdict& event = *verdict;
  Difference d = Make(index, recorded.task_path, "policy_verdict");
  d.recorded = Json{{"tool", event.tool},
                    {"decision", WireDecisionName(event.decision)},
                    {"rule_id", event.rule_id},
                    {"reason_code", event.reason_code}};
  d.counterfactual = Json{{"decision", std::string(policy::DecisionName(mine.decision))},
                          {"rule_id", mine.rule_id},
                          {"reason_code", mine.reason_code},
                          {"detail", mine.detail},
                          {"approvers", mine.approvers}};
  if (observed.use.for_agent) {
    d.note = mine.decision == policy::Decision::kAllow
                 ? "the tool would have been offered to the agent"
                 : "the tool would not have been offered to the agent: the run would have "
                   "stopped (policy_denied)";
  } else if (mine.decision == policy::Decision::kDeny) {
    d.note = "the call would have been refused: the run would have stopped (policy_denied)";
  } else if (mine.decision == policy::Decision::kRequireApproval) {
    std::string who;
    for (const std::string& a : mine.approvers) who += (who.empty() ? " by " : ", ") + a;
    d.note = "the call would have waited for an approval" + who;
  } else {
    d.note = observed.verdict.decision == policy::Decision::kDeny
                 ? "the call would have run"
                 : "the call would have run without an approval";
  }
  differences_.push_back(std::move(d));
}

// ---------------------------------------------------------------------------------------
// Agent decisions

Status CounterfactualRun::BeforeInput(size_t index) {
  const auto* decided = std::get_if<storage::AgentDecided>(&history_[index].body);
  if (agent_ == nullptr || decided == nullptr) return Status::Ok();
  auto it = decisions_.find(decided->decision_key);
  if (it == decisions_.end()) return Status::Ok();  // not a decision this replay asked
  Result<storage::AgentDecided> mine = (*agent_)(run_id_, *definition_, it->second);
  if (!mine.ok()) {
    return mine.status().WithContext("the counterfactual agent at seq " +
                                     std::to_string(history_[index].seq.value()));
  }
  ++points_.decisions;
  if (mine->option != decided->option || mine->reason_code != decided->reason_code) {
    Difference d = Make(index, it->second.task_path, "agent_decision");
    d.recorded = Json{{"agent", decided->agent},
                      {"option", decided->option},
                      {"reason_code", decided->reason_code},
                      {"rationale", decided->rationale}};
    d.counterfactual = Json{{"agent", mine->agent},
                            {"option", mine->option},
                            {"reason_code", mine->reason_code},
                            {"rationale", mine->rationale},
                            {"detail", mine->detail}};
    d.note = mine->reason_code == "decided"
                 ? "the task's output would have been option '" + mine->option + "'"
                 : "the decision would have failed (" + mine->reason_code +
                       "): the task would have faulted";
    differences_.push_back(std::move(d));
  }
  decisions_.erase(it);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Steps

void CounterfactualRun::AfterStep(const engine::StepOutput& out, size_t first, size_t matched,
                                  const engine::RunState& state) {
  for (const Observed& observed : observed_) {
    if (observed.event_index < matched) {
      CompareVerdict(observed, first + observed.event_index);
    }
  }
  observed_.clear();
  if (out.decide && matched == out.events.size()) {
    decisions_[out.decide->decision_key] = *out.decide;
  }
  if (policy_ && matched == out.events.size()) WatchSteps(first, matched, state);
  steps_before_ = state.steps;
}

// Where the steps cap of the counterfactual policy would have stopped the run: at the
// task entered over the cap (its task_routed, or its skipped task_completed).
void CounterfactualRun::WatchSteps(size_t first, size_t matched, const engine::RunState& state) {
  const auto& started = std::get<storage::RunStarted>(history_.front().body);
  const uint64_t cap = policy_->BudgetsFor(started.workflow_namespace, started.workflow_name).steps;
  if (cap == 0 || steps_exhausted_ || state.steps <= cap || matched == 0) return;
  uint64_t entered = steps_before_;
  size_t at = first;
  for (size_t i = first; i < first + matched; ++i) {
    const storage::EventBody& body = history_[i].body;
    const auto* completed = std::get_if<storage::TaskCompleted>(&body);
    if (std::holds_alternative<storage::TaskRouted>(body) ||
        (completed != nullptr && completed->status == storage::TaskCompleted::Status::kSkipped)) {
      if (++entered > cap) {
        at = i;
        break;
      }
    }
  }
  steps_exhausted_ = Exhaustion{at, "steps", Json(cap + 1), Json(cap)};
}

// ---------------------------------------------------------------------------------------
// The run-level points

void CounterfactualRun::Note(std::optional<Exhaustion>& first, Exhaustion candidate) {
  if (!first || candidate.index < first->index) first = std::move(candidate);
}

// The first event over a counterfactual cap on the recorded path: the wall clock by the
// events' times; tool calls by their effect_intents; tokens and cost by the ledger each
// budget_charged records (a reservation with nothing left, or a settlement over the cap:
// the decision would have been refused).
std::optional<CounterfactualRun::Exhaustion> CounterfactualRun::FirstExhaustion(size_t checked) {
  const auto& started = std::get<storage::RunStarted>(history_.front().body);
  const storage::BudgetAmounts caps =
      policy_->BudgetsFor(started.workflow_namespace, started.workflow_name).ToAmounts();
  std::optional<Exhaustion> first = steps_exhausted_;
  const int64_t start_ns = history_.front().time_ns;
  uint64_t calls = 0;
  for (size_t i = 0; i < checked && i < history_.size(); ++i) {
    if (first && first->index <= i) break;
    const storage::Event& e = history_[i];
    const int64_t elapsed_ms = (e.time_ns - start_ns) / 1'000'000;
    if (caps.wall_ms != 0 && elapsed_ms >= 0 && static_cast<uint64_t>(elapsed_ms) >= caps.wall_ms) {
      Note(first, Exhaustion{i, "wall_clock", Json(elapsed_ms), Json(caps.wall_ms)});
      break;
    }
    if (std::holds_alternative<storage::EffectIntent>(e.body) && caps.tool_calls != 0 &&
        ++calls > caps.tool_calls) {
      Note(first, Exhaustion{i, "tool_calls", Json(calls), Json(caps.tool_calls)});
      break;
    }
    const auto* charged = std::get_if<storage::BudgetCharged>(&e.body);
    if (charged == nullptr) continue;
    const bool reserve = charged->phase == storage::BudgetCharged::Phase::kReserve;
    const storage::BudgetAmounts& spent = charged->spent_after;
    if (caps.tokens != 0 && (reserve ? spent.tokens >= caps.tokens : spent.tokens > caps.tokens)) {
      Note(first, Exhaustion{i, "tokens", Json(spent.tokens), Json(caps.tokens)});
      break;
    }
    if (caps.cost_micros != 0 &&
        (reserve ? spent.cost_micros >= caps.cost_micros : spent.cost_micros > caps.cost_micros)) {
      Note(first, Exhaustion{i, "cost", Json(spent.cost_micros), Json(caps.cost_micros)});
      break;
    }
  }
  return first;
}

void CounterfactualRun::AddBudget(size_t checked, std::vector<Difference>& differences) {
  ++points_.run;
  const auto& started = std::get<storage::RunStarted>(history_.front().body);
  const storage::BudgetAmounts caps =
      policy_->BudgetsFor(started.workflow_namespace, started.workflow_name).ToAmounts();
  if (caps == started.budget_limits) return;
  std::optional<Exhaustion> exhausted = FirstExhaustion(checked);
  const size_t index = exhausted ? exhausted->index : 0;
  Difference d = Make(index, exhausted ? history_[index].task_path : "/", "budget");
  if (d.task_path.empty()) d.task_path = "/";
  d.recorded = Json{{"caps", engine::BudgetToJson(started.budget_limits)}};
  d.counterfactual = Json{{"caps", engine::BudgetToJson(caps)}, {"exhausted", nullptr}};
  if (exhausted) {
    d.counterfactual["exhausted"] = Json{
        {"dimension", exhausted->dimension}, {"used", exhausted->used}, {"cap", exhausted->cap}};
    d.note = "the run would have stopped here (budget_exhausted: " + exhausted->dimension + "; " +
             Amount(exhausted->dimension, exhausted->used, false) + " over a cap of " +
             Amount(exhausted->dimension, exhausted->cap, true) + ")";
  } else {
    const auto* stopped = checked == history_.size() && !history_.empty()
                              ? std::get_if<storage::RunStopped>(&history_.back().body)
                              : nullptr;
    d.note = stopped != nullptr && stopped->reason == storage::StopReason::kBudgetExhausted
                 ? "the run stopped at its own budget (" + stopped->detail +
                       "); it might have gone further, which a replay cannot show"
                 : "the recorded run stays within these caps";
  }
  differences.push_back(std::move(d));
}

void CounterfactualRun::AddKillSwitch(std::vector<Difference>& differences) {
  ++points_.run;
  const auto& started = std::get<storage::RunStarted>(history_.front().body);
  std::string recorded_why;
  std::string why;
  const bool recorded = recorded_policy_->KillSwitchCovers(
      started.workflow_namespace, started.workflow_name, run_id_.str(), &recorded_why);
  const bool covered = policy_->KillSwitchCovers(started.workflow_namespace, started.workflow_name,
                                                 run_id_.str(), &why);
  if (covered == recorded) return;
  Difference d = Make(0, "/", "kill_switch");
  d.recorded = Json{{"covered", recorded}, {"detail", recorded_why}};
  d.counterfactual = Json{{"covered", covered}, {"detail", why}};
  if (!covered) {
    d.note = "the policy's kill switch would no longer deny the run's tool calls";
  } else if (verdicts_seen_ == 0) {
    d.note = why + "; the run asked the policy nothing, so nothing it did would have changed";
  } else {
    d.note = why + (verdicts_seen_ == 1 ? "; the run's one policy verdict would have been deny"
                                        : "; each of the run's " + std::to_string(verdicts_seen_) +
                                              " policy verdicts would have been deny");
  }
  differences.push_back(std::move(d));
}

void CounterfactualRun::Finish(size_t checked, std::vector<Difference>& differences,
                               CounterfactualPoints& points) {
  differences = std::move(differences_);
  if (policy_ && !history_.empty()) {
    AddKillSwitch(differences);
    AddBudget(checked, differences);
  }
  std::stable_sort(differences.begin(), differences.end(),
                   [](const Difference& a, const Difference& b) { return a.seq < b.seq; });
  points = points_;
}

}  // namespace internal
}  // namespace cairn::replay
