// Policy: loading (through policy/parse.cc), verdicts, budget caps, kill switches.
//
// Everything after Load is a pure function of the loaded values and the question: no
// clock, no I/O, no hash-map order. Replay relies on it to re-evaluate recorded verdicts.
#include "policy/policy.h"

#include <utility>

#include "base/limits.h"
#include "base/yaml_config.h"
#include "policy/parse.h"
#include "policy/policy_data.h"

namespace cairn::policy {

class Policy::Impl {
 public:
  Impl(std::string text, PolicyData data)
      : text(std::move(text)), hash(Sha256::Of(this->text)), data(std::move(data)) {}

  const std::string text;
  const Sha256 hash;
  const PolicyData data;
};

namespace {

// The policy in force when an operator has applied none. Its hash is what such runs
// record: changing this text changes that hash (tests pin it).
constexpr const char* kDefaultText =
    "# cairn's built-in policy: reads are allowed, writes are denied.\n"
    "version: 1\n"
    "name: default\n"
    "defaults:\n"
    "  read: allow\n"
    "  write: deny\n";

// A verdict's detail quotes the matching rule's conditions up to this many bytes.
constexpr size_t kDetailConditionsBytesMax = 400;

std::string WorkflowLabel(std::string_view workflow_namespace, std::string_view workflow_name) {
  if (workflow_namespace.empty()) return std::string(workflow_name);
  return std::string(workflow_namespace) + "/" + std::string(workflow_name);
}

// A question without a risk level is judged as the riskiest (what an unknown tool is).
storage::RiskLevel EffectiveRisk(storage::RiskLevel risk) {
  return risk == storage::RiskLevel::kUnspecified ? storage::RiskLevel::kCritical : risk;
}

// "write tool 'billing.change_plan' for workflow 'billing/plan-change'"
std::string UseLabel(const ToolUse& use) {
  return std::string(storage::Name(use.effect)) + " tool '" + use.tool + "' for workflow '" +
         WorkflowLabel(use.workflow_namespace, use.workflow_name) + "'";
}

// What rules' `when` conditions read (policy/README.md).
Json UseDocument(const ToolUse& use) {
  return Json{{"arguments", use.arguments},
              {"tool", use.tool},
              {"effect", storage::Name(use.effect)},
              {"risk", storage::Name(EffectiveRisk(use.risk))},
              {"workflow", {{"namespace", use.workflow_namespace}, {"name", use.workflow_name}}},
              {"run_id", use.run_id},
              {"task_path", use.task_path},
              {"for_agent", use.for_agent}};
}

template <typename Pattern, typename... Args>
bool AnyMatches(const std::vector<Pattern>& patterns, const Args&... args) {
  for (const Pattern& pattern : patterns) {
    if (pattern.Matches(args...)) return true;
  }
  return false;
}

// Everything but the `when` conditions.
bool SelectorsMatch(const Rule& rule, const ToolUse& use) {
  if (!rule.workflows.empty() &&
      !AnyMatches(rule.workflows, use.workflow_namespace, use.workflow_name)) {
    return false;
  }
  if (!rule.tools.empty() && !AnyMatches(rule.tools, use.tool)) return false;
  if (rule.effect && *rule.effect != use.effect) return false;
  const unsigned risk_bit = 1u << static_cast<unsigned>(EffectiveRisk(use.risk));
  if (rule.risk_mask != 0 && (rule.risk_mask & risk_bit) == 0) return false;
  if (rule.agent_tools && *rule.agent_tools != use.for_agent) return false;
  return true;
}

// `text` cut to at most `bytes_max` bytes on a UTF-8 character boundary, "..." marking a cut.
std::string Shortened(std::string text, size_t bytes_max) {
  if (text.size() <= bytes_max) return text;
  size_t end = bytes_max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text + "...";
}

std::string ConditionsText(const std::vector<Condition>& conditions) {
  std::string text;
  for (const Condition& condition : conditions) {
    if (!text.empty()) text += " and ";
    text += condition.ToString();
    if (text.size() > kDetailConditionsBytesMax) break;
  }
  return Shortened(std::move(text), kDetailConditionsBytesMax);
}

// Approval settings: the rule's, else the file's, else the limits' default, per field.
void FillApproval(const ApprovalSettings* rule, const ApprovalSettings& file, Verdict* verdict) {
  verdict->approval_expires_after_ms = limits::approval_expiry_ms_default;
  if (file.expires_after_ms) verdict->approval_expires_after_ms = *file.expires_after_ms;
  if (rule != nullptr && rule->expires_after_ms) {
    verdict->approval_expires_after_ms = *rule->expires_after_ms;
  }
  if (file.approvers) verdict->approvers = *file.approvers;
  if (rule != nullptr && rule->approvers) verdict->approvers = *rule->approvers;
}

Verdict RuleVerdict(const Rule& rule, const ToolUse& use, const PolicyData& data) {
  Verdict verdict;
  verdict.decision = rule.decision;
  verdict.rule_id = rule.id;
  const char* verb = "denies";
  switch (rule.decision) {
    case Decision::kAllow:
      verdict.reason_code = reason::kAllowedByRule;
      verb = "allows";
      break;
    case Decision::kRequireApproval:
      verdict.reason_code = reason::kApprovalRequiredByRule;
      verb = "requires approval for";
      FillApproval(&rule.approval, data.approvals, &verdict);
      break;
    case Decision::kDeny:
      verdict.reason_code = reason::kDeniedByRule;
      break;
  }
  verdict.detail = "rule '" + rule.id + "' " + verb + " " + UseLabel(use);
  if (!rule.when.empty()) verdict.detail += " (when " + rule.when_text + ")";
  if (!rule.reason.empty()) verdict.detail += ": " + rule.reason;
  return verdict;
}

Verdict DefaultVerdict(const ToolUse& use, const PolicyData& data) {
  const bool read = use.effect == storage::EffectKind::kRead;
  Verdict verdict;
  verdict.decision = read ? data.default_read : data.default_write;
  verdict.rule_id = read ? "defaults.read" : "defaults.write";
  const std::string kind = read ? "reads" : "writes";
  std::string outcome;
  switch (verdict.decision) {
    case Decision::kAllow:
      verdict.reason_code = reason::kAllowedByDefault;
      outcome = "are allowed";
      break;
    case Decision::kRequireApproval:
      verdict.reason_code = reason::kApprovalRequiredByDefault;
      outcome = "require approval";
      FillApproval(nullptr, data.approvals, &verdict);
      break;
    case Decision::kDeny:
      verdict.reason_code = reason::kDeniedByDefault;
      outcome = "are denied";
      break;
  }
  verdict.detail =
      std::string(verdict.decision == Decision::kDeny ? "no rule allows " : "no rule matches ") +
      UseLabel(use) + "; " + kind + " " + outcome + " by default";
  return verdict;
}

void Override(const BudgetSettings& settings, BudgetCaps* caps) {
  if (settings.steps) caps->steps = *settings.steps;
  if (settings.wall_ms) caps->wall_ms = *settings.wall_ms;
  if (settings.tokens) caps->tokens = *settings.tokens;
  if (settings.cost_micros) caps->cost_micros = *settings.cost_micros;
  if (settings.tool_calls) caps->tool_calls = *settings.tool_calls;
}

// spent + reserved + more > cap, for a set cap, without overflow.
bool Over(uint64_t cap, uint64_t spent, uint64_t reserved, uint64_t more) {
  if (cap == 0) return false;
  const unsigned __int128 total =
      static_cast<unsigned __int128>(spent) + static_cast<unsigned __int128>(reserved) + more;
  return total > cap;
}

bool Over(int64_t cap, int64_t spent, int64_t reserved, int64_t more) {
  if (cap == 0) return false;
  const __int128 total = static_cast<__int128>(spent) + static_cast<__int128>(reserved) + more;
  return total > cap;
}

}  // namespace

std::string_view DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kAllow:
      return "allow";
    case Decision::kRequireApproval:
      return "require_approval";
    case Decision::kDeny:
      return "deny";
  }
  return "deny";
}

storage::BudgetAmounts BudgetCaps::ToAmounts() const {
  storage::BudgetAmounts amounts;
  amounts.steps = steps;
  amounts.wall_ms = wall_ms;
  amounts.tokens = tokens;
  amounts.cost_micros = cost_micros;
  amounts.tool_calls = tool_calls;
  return amounts;
}

Policy::Policy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  CAIRN_ASSERT(impl_ != nullptr, "Policy without a body");
}

Policy::~Policy() = default;

Result<std::shared_ptr<const Policy>> Policy::Load(std::string_view yaml,
                                                   std::string_view source_name) {
  CAIRN_ASSIGN_OR_RETURN(PolicyData data, ParsePolicyText(yaml, source_name));
  // Verdicts name a rule's conditions: the text is the same every time.
  for (Rule& rule : data.rules) rule.when_text = ConditionsText(rule.when);
  auto impl = std::make_unique<Impl>(std::string(yaml), std::move(data));
  return std::shared_ptr<const Policy>(std::make_shared<Policy>(std::move(impl)));
}

Result<std::shared_ptr<const Policy>> Policy::LoadFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, "policy", limits::policy_bytes_max));
  return Load(text, path);
}

std::shared_ptr<const Policy> Policy::Default() {
  // Built once, immutable: a constant, not mutable global state.
  static const std::shared_ptr<const Policy> policy = [] {
    auto loaded = Load(kDefaultText, "built-in default policy");
    CAIRN_ASSERT(loaded.ok(), loaded.status().ToString());
    return std::move(loaded).value();
  }();
  return policy;
}

const Sha256& Policy::hash() const { return impl_->hash; }
const std::string& Policy::text() const { return impl_->text; }
const std::string& Policy::name() const { return impl_->data.name; }
size_t Policy::rule_count() const { return impl_->data.rules.size(); }

Verdict Policy::Evaluate(const ToolUse& use) const {
  Verdict verdict;
  if (KillSwitchCovers(use.workflow_namespace, use.workflow_name, use.run_id, &verdict.detail)) {
    verdict.decision = Decision::kDeny;
    verdict.rule_id = "kill_switch";
    verdict.reason_code = reason::kKillSwitch;
    return verdict;
  }
  std::optional<Json> document;  // built once, when a rule's conditions first need it
  for (const Rule& rule : impl_->data.rules) {
    if (!SelectorsMatch(rule, use)) continue;
    if (!rule.when.empty()) {
      if (!document) document = UseDocument(use);
      if (!AllHold(rule.when, *document)) continue;
    }
    return RuleVerdict(rule, use, impl_->data);
  }
  return DefaultVerdict(use, impl_->data);
}

BudgetCaps Policy::BudgetsFor(std::string_view workflow_namespace,
                              std::string_view workflow_name) const {
  const PolicyData& data = impl_->data;
  BudgetCaps caps;
  Override(data.budgets, &caps);
  auto own = data.workflow_budgets.end();
  if (!workflow_namespace.empty()) {
    own = data.workflow_budgets.find(WorkflowLabel(workflow_namespace, workflow_name));
  }
  if (own == data.workflow_budgets.end()) own = data.workflow_budgets.find(workflow_name);
  if (own != data.workflow_budgets.end()) Override(own->second, &caps);
  return caps;
}

bool Policy::KillSwitchCovers(std::string_view workflow_namespace, std::string_view workflow_name,
                              std::string_view run_id, std::string* why) const {
  const KillSwitch& kill = impl_->data.kill_switch;
  std::string covered;
  if (kill.all) {
    covered = "all runs";
  } else {
    const std::string label = WorkflowLabel(workflow_namespace, workflow_name);
    for (const WorkflowPattern& pattern : kill.workflows) {
      if (!pattern.Matches(workflow_namespace, workflow_name)) continue;
      covered = "workflow '" + label + "'";
      if (pattern.text != label) covered += " (as '" + pattern.text + "')";
      break;
    }
    for (size_t i = 0; covered.empty() && i < kill.runs.size(); ++i) {
      if (kill.runs[i] == run_id) covered = "run '" + kill.runs[i] + "'";
    }
  }
  if (covered.empty()) return false;
  if (why != nullptr) {
    *why = "the policy's kill switch covers " + covered;
    if (!kill.reason.empty()) *why += ": " + kill.reason;
  }
  return true;
}

std::optional<std::string> ExceededDimension(const storage::BudgetAmounts& caps,
                                             const storage::BudgetAmounts& spent,
                                             const storage::BudgetAmounts& reserved,
                                             const storage::BudgetAmounts& more) {
  if (Over(caps.steps, spent.steps, reserved.steps, more.steps)) return "steps";
  if (Over(caps.wall_ms, spent.wall_ms, reserved.wall_ms, more.wall_ms)) return "wall_clock";
  if (Over(caps.tokens, spent.tokens, reserved.tokens, more.tokens)) return "tokens";
  if (Over(caps.cost_micros, spent.cost_micros, reserved.cost_micros, more.cost_micros)) {
    return "cost";
  }
  if (Over(caps.tool_calls, spent.tool_calls, reserved.tool_calls, more.tool_calls)) {
    return "tool_calls";
  }
  return std::nullopt;
}

}  // namespace cairn::policy
