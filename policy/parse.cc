// ParsePolicyText: a policy file's YAML, checked whole, every problem reported at once.
//
// Each section has its reader; a reader adds its problems to the context and leaves the
// field it could not read unset (the load then fails anyway, so no partial value is ever
// used). Every list and map is bounded before it is walked, and YAML aliases are counted
// as they expand before anything is read, so hostile input costs bounded time and memory.
#include "policy/parse.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/limits.h"
#include "base/yaml_config.h"

namespace cairn::policy {
namespace {

// Bounds of a policy file beyond those in base/limits.h (which bounds bytes, rules,
// conditions and selector lists).
constexpr size_t kIdBytesMax = 128;        // rule ids
constexpr size_t kNameBytesMax = 128;      // the policy's `name`
constexpr size_t kApproverBytesMax = 256;  // one approver's name
constexpr size_t kTextBytesMax = 4096;     // descriptions and reasons
// Caps a policy may set (larger ones are surely a typo).
constexpr uint64_t kTokensMax = 1'000'000'000'000;
constexpr int64_t kCostMicrosMax = 1'000'000'000'000;  // one million currency units
constexpr uint64_t kToolCallsMax = 1'000'000;
constexpr uint64_t kWallClockMsMax = 365ull * 24 * 3600 * 1000;

constexpr const char* kDecisions = "allow, require_approval, deny";

using yaml::ForEachEntry;
using yaml::RefuseUnknownKeys;
using yaml::Require;

// A section written as `key:` with nothing after it counts as absent.
bool Present(const YAML::Node& node) { return node && !node.IsNull(); }

std::string Line(const YAML::Node& node) {
  return node.Mark().is_null() ? "?" : std::to_string(node.Mark().line + 1);
}

std::optional<std::string> BoundedString(const YamlContext& ctx, const YAML::Node& node,
                                         const std::string& field, size_t bytes_max) {
  auto text = yaml::NonEmptyString(ctx, node, field);
  if (text && text->size() > bytes_max) {
    ctx.Add(node, field + ": " + std::to_string(text->size()) +
                      " bytes is more than the limit of " + std::to_string(bytes_max));
    return std::nullopt;
  }
  return text;
}

std::optional<Decision> ReadDecision(const YamlContext& ctx, const YAML::Node& node,
                                     const std::string& field) {
  auto name = yaml::OneOf(ctx, node, field, {"allow", "require_approval", "deny"});
  if (!name) return std::nullopt;
  if (*name == "allow") return Decision::kAllow;
  if (*name == "require_approval") return Decision::kRequireApproval;
  return Decision::kDeny;
}

// A map, or a problem "FIELD: expected a map EXPECTED, found ...".
bool IsMapOrAdd(const YamlContext& ctx, const YAML::Node& node, const std::string& field,
                std::string_view expected) {
  if (node.IsMap()) return true;
  ctx.Add(node, field + ": expected a map " + std::string(expected) + ", found " +
                    DescribeYamlNode(node));
  return false;
}

// Calls `visit` on each item of a list of at most `max` items; false (problem added) when
// `node` is not such a list, or is empty and `empty_hint` is not null.
template <typename Visit>
bool ForEachItem(const YamlContext& ctx, const YAML::Node& node, const std::string& field,
                 size_t max, const char* empty_hint, Visit visit) {
  if (!node.IsSequence()) {
    ctx.Add(node, field + ": expected a list, found " + DescribeYamlNode(node));
    return false;
  }
  if (node.size() > max) {
    ctx.Add(node, field + ": " + std::to_string(node.size()) +
                      " entries is more than the limit of " + std::to_string(max));
    return false;
  }
  if (node.size() == 0 && empty_hint != nullptr) {
    ctx.Add(node, field + ": must not be empty (" + empty_hint + ")");
    return false;
  }
  bool ok = true;
  for (const YAML::Node& item : node) ok = visit(item) && ok;
  return ok;
}

// ---- settings shared by sections ----

std::optional<std::vector<std::string>> ReadApprovers(const YamlContext& ctx,
                                                      const YAML::Node& node,
                                                      const std::string& field) {
  std::vector<std::string> approvers;
  const bool ok = ForEachItem(ctx, node, field, limits::policy_selectors_max, nullptr,
                              [&](const YAML::Node& item) {
                                auto name = BoundedString(ctx, item, field, kApproverBytesMax);
                                if (name) approvers.push_back(std::move(*name));
                                return name.has_value();
                              });
  if (!ok) return std::nullopt;
  return approvers;
}

void ReadApproval(const YamlContext& ctx, const YAML::Node& node, const std::string& field,
                  ApprovalSettings* out) {
  if (!IsMapOrAdd(ctx, node, field, "{expires_after, approvers}")) return;
  RefuseUnknownKeys(ctx, node, field, {"expires_after", "approvers"});
  if (const YAML::Node expires = node["expires_after"]) {
    out->expires_after_ms =
        yaml::DurationMs(ctx, expires, field + ".expires_after", limits::approval_expiry_ms_max);
  }
  if (const YAML::Node approvers = node["approvers"]) {
    out->approvers = ReadApprovers(ctx, approvers, field + ".approvers");
  }
}

std::optional<uint64_t> ReadWallClock(const YamlContext& ctx, const YAML::Node& node,
                                      const std::string& field) {
  // A plain 0 is "no cap", as in every dimension; "0s" is refused as a duration.
  if (node.IsScalar() && node.Scalar() == "0") return 0;
  return yaml::DurationMs(ctx, node, field, kWallClockMsMax);
}

void ReadBudgets(const YamlContext& ctx, const YAML::Node& node, const std::string& field,
                 BudgetSettings* out) {
  if (!IsMapOrAdd(ctx, node, field, "of caps {steps, wall_clock, tokens, cost, tool_calls}")) {
    return;
  }
  RefuseUnknownKeys(ctx, node, field, {"steps", "wall_clock", "tokens", "cost", "tool_calls"});
  if (const YAML::Node n = node["steps"]) {
    out->steps = yaml::Unsigned(ctx, n, field + ".steps", 0, limits::run_steps_max);
  }
  if (const YAML::Node n = node["wall_clock"]) {
    out->wall_ms = ReadWallClock(ctx, n, field + ".wall_clock");
  }
  if (const YAML::Node n = node["tokens"]) {
    out->tokens = yaml::Unsigned(ctx, n, field + ".tokens", 0, kTokensMax);
  }
  if (const YAML::Node n = node["cost"]) {
    out->cost_micros = yaml::Micros(ctx, n, field + ".cost", kCostMicrosMax);
  }
  if (const YAML::Node n = node["tool_calls"]) {
    out->tool_calls = yaml::Unsigned(ctx, n, field + ".tool_calls", 0, kToolCallsMax);
  }
}

std::optional<std::vector<WorkflowPattern>> ReadWorkflowPatterns(const YamlContext& ctx,
                                                                 const YAML::Node& node,
                                                                 const std::string& field,
                                                                 const char* empty_hint) {
  std::vector<WorkflowPattern> patterns;
  const bool ok = ForEachItem(ctx, node, field, limits::policy_selectors_max, empty_hint,
                              [&](const YAML::Node& item) {
                                auto text = yaml::String(ctx, item, field);
                                if (!text) return false;
                                std::string why;
                                auto pattern = ParseWorkflowPattern(*text, &why);
                                if (!pattern) {
                                  ctx.Add(item, field + ": " + why);
                                  return false;
                                }
                                patterns.push_back(std::move(*pattern));
                                return true;
                              });
  if (!ok) return std::nullopt;
  return patterns;
}

// ---- rules ----

std::optional<std::vector<ToolPattern>> ReadToolPatterns(const YamlContext& ctx,
                                                         const YAML::Node& node) {
  std::vector<ToolPattern> patterns;
  const bool ok = ForEachItem(ctx, node, "tools", limits::policy_selectors_max,
                              "leave it out to match every tool", [&](const YAML::Node& item) {
                                auto text = yaml::String(ctx, item, "tools");
                                if (!text) return false;
                                std::string why;
                                auto pattern = ParseToolPattern(*text, &why);
                                if (!pattern) {
                                  ctx.Add(item, "tools: " + why);
                                  return false;
                                }
                                patterns.push_back(std::move(*pattern));
                                return true;
                              });
  if (!ok) return std::nullopt;
  return patterns;
}

std::optional<storage::RiskLevel> ReadRiskLevel(const YamlContext& ctx, const YAML::Node& node) {
  auto name = yaml::OneOf(ctx, node, "risk", {"low", "medium", "high", "critical"});
  if (!name) return std::nullopt;
  return storage::ParseRiskLevel(*name);
}

// One level or a list of levels, as a mask of (1 << level).
std::optional<uint32_t> ReadRisks(const YamlContext& ctx, const YAML::Node& node) {
  uint32_t mask = 0;
  auto add = [&](const YAML::Node& item) {
    auto level = ReadRiskLevel(ctx, item);
    if (level) mask |= 1u << static_cast<unsigned>(*level);
    return level.has_value();
  };
  if (node.IsScalar()) {
    if (!add(node)) return std::nullopt;
    return mask;
  }
  if (!ForEachItem(ctx, node, "risk", limits::policy_selectors_max,
                   "leave it out to match every level", add)) {
    return std::nullopt;
  }
  return mask;
}

std::vector<std::string> PointerTokens(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  size_t start = 1;  // a valid pointer starts with '/'
  while (true) {
    const size_t end = std::min(pointer.find('/', start), pointer.size());
    std::string token;
    for (size_t i = start; i < end; ++i) {
      if (pointer[i] == '~' && i + 1 < end) {
        token += pointer[i + 1] == '1' ? '/' : '~';
        ++i;
      } else {
        token += pointer[i];
      }
    }
    tokens.push_back(std::move(token));
    if (end == pointer.size()) break;
    start = end + 1;
  }
  return tokens;
}

// Why a condition's path cannot name anything in the document a rule's conditions read
// (policy.cc, UseDocument), or "" when it can. A typo here would silently make a rule
// match always (ne, not_in, exists: false) or never.
std::string PathProblem(const std::string& path) {
  const std::vector<std::string> tokens = PointerTokens(path);
  if (tokens.empty() || tokens[0] == "arguments") return "";
  static constexpr std::array<std::string_view, 6> kScalars = {"tool",   "effect",    "risk",
                                                               "run_id", "task_path", "for_agent"};
  const bool scalar = std::find(kScalars.begin(), kScalars.end(), tokens[0]) != kScalars.end();
  if (scalar && tokens.size() == 1) return "";
  if (scalar) return "path '" + path + "' points inside '" + tokens[0] + "', which has no fields";
  if (tokens[0] == "workflow" &&
      (tokens.size() == 1 ||
       (tokens.size() == 2 && (tokens[1] == "namespace" || tokens[1] == "name")))) {
    return "";
  }
  return "path '" + path +
         "' names nothing in the tool use (expected /arguments/..., /tool, /effect, /risk, "
         "/workflow/namespace, /workflow/name, /run_id, /task_path or /for_agent)";
}

std::optional<std::vector<Condition>> ReadWhen(const YamlContext& ctx, const YAML::Node& node) {
  auto conditions = yaml::Conditions(ctx, node, "when", limits::policy_conditions_per_rule_max);
  if (!conditions) return std::nullopt;
  if (conditions->empty()) {
    ctx.Add(node, "when: must not be empty (leave it out to match without conditions)");
    return std::nullopt;
  }
  bool ok = true;
  for (size_t i = 0; i < conditions->size(); ++i) {
    const std::string problem = PathProblem((*conditions)[i].path);
    if (!problem.empty()) {
      ctx.Add(node[i]["path"], "when: " + problem);
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return conditions;
}

bool IsRuleIdChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
         c == '-';
}

bool IsValidRuleId(std::string_view id) {
  return !id.empty() && id.size() <= kIdBytesMax && std::all_of(id.begin(), id.end(), IsRuleIdChar);
}

// The rule's id if it has a well-formed one (for the subject of its problems).
std::optional<std::string> PeekRuleId(const YAML::Node& rule) {
  if (!rule.IsMap()) return std::nullopt;
  const YAML::Node id = rule["id"];
  if (!id || !id.IsScalar() || !IsValidRuleId(id.Scalar())) return std::nullopt;
  return id.Scalar();
}

// Ids of rules read so far, with the line where each was first used.
using SeenIds = std::map<std::string, std::string, std::less<>>;

void ReadRuleId(const YamlContext& ctx, const YAML::Node& rule, SeenIds& seen, Rule* out) {
  if (!Require(ctx, rule, "rule", "id")) return;
  const YAML::Node node = rule["id"];
  auto id = yaml::String(ctx, node, "id");
  if (!id) return;
  if (!IsValidRuleId(*id)) {
    ctx.Add(node, "id: " + DescribeYamlNode(node) +
                      " is not a rule id (expected 1 to 128 of A-Z a-z 0-9 _ . : -)");
    return;
  }
  if (*id == "kill_switch" || id->rfind("defaults.", 0) == 0) {
    ctx.Add(node, "id: '" + *id +
                      "' is reserved (verdicts without a rule use kill_switch, defaults.read "
                      "and defaults.write)");
    return;
  }
  const auto [it, inserted] = seen.emplace(*id, Line(node));
  if (!inserted) {
    ctx.Add(node, "id: '" + *id + "' is already the id of the rule at line " + it->second);
    return;
  }
  out->id = *id;
}

void ReadRuleSelectors(const YamlContext& ctx, const YAML::Node& rule, Rule* out) {
  if (const YAML::Node n = rule["workflows"]) {
    auto patterns =
        ReadWorkflowPatterns(ctx, n, "workflows", "leave it out to match every workflow");
    if (patterns) out->workflows = std::move(*patterns);
  }
  if (const YAML::Node n = rule["tools"]) {
    auto patterns = ReadToolPatterns(ctx, n);
    if (patterns) out->tools = std::move(*patterns);
  }
  if (const YAML::Node n = rule["effect"]) {
    if (auto effect = yaml::OneOf(ctx, n, "effect", {"read", "write"})) {
      out->effect = storage::ParseEffectKind(*effect);
    }
  }
  if (const YAML::Node n = rule["risk"]) {
    if (auto mask = ReadRisks(ctx, n)) out->risk_mask = *mask;
  }
  if (const YAML::Node n = rule["agent_tools"])
    out->agent_tools = yaml::Bool(ctx, n, "agent_tools");
  if (const YAML::Node n = rule["when"]) {
    auto conditions = ReadWhen(ctx, n);
    if (conditions) out->when = std::move(*conditions);
  }
}

void ReadRuleOutcome(const YamlContext& ctx, const YAML::Node& rule, Rule* out) {
  std::optional<Decision> decision;
  if (Require(ctx, rule, "rule", "decision", std::string("expected one of ") + kDecisions)) {
    decision = ReadDecision(ctx, rule["decision"], "decision");
    if (decision) out->decision = *decision;
  }
  if (const YAML::Node n = rule["reason"]) {
    if (auto reason = BoundedString(ctx, n, "reason", kTextBytesMax)) out->reason = *reason;
  }
  const YAML::Node approval = rule["approval"];
  if (!approval) return;
  if (decision && *decision != Decision::kRequireApproval) {
    ctx.Add(approval,
            "approval: only a rule whose decision is require_approval may have one "
            "(this rule's decision is " +
                std::string(DecisionName(*decision)) + ")");
    return;
  }
  ReadApproval(ctx, approval, "approval", &out->approval);
}

// Reads rule number `number` (from 1) into `rules`; its problems go to `problems`.
void ReadRule(YamlProblems& problems, const YAML::Node& node, size_t number, SeenIds& seen,
              std::vector<Rule>* rules) {
  const std::optional<std::string> peeked = PeekRuleId(node);
  const YamlContext ctx{
      problems, peeked ? "rule '" + *peeked + "'" : "rule #" + std::to_string(number), nullptr};
  if (!node.IsMap()) {
    ctx.Add(node, "expected a rule (a map with id, decision and selectors), found " +
                      DescribeYamlNode(node));
    return;
  }
  Rule rule;
  ReadRuleId(ctx, node, seen, &rule);
  RefuseUnknownKeys(ctx, node, "rule",
                    {"id", "description", "workflows", "tools", "effect", "risk", "agent_tools",
                     "when", "decision", "reason", "approval"});
  if (const YAML::Node n = node["description"]) {
    if (auto text = BoundedString(ctx, n, "description", kTextBytesMax)) rule.description = *text;
  }
  ReadRuleSelectors(ctx, node, &rule);
  ReadRuleOutcome(ctx, node, &rule);
  rules->push_back(std::move(rule));
}

void ReadRules(const YamlContext& top, const YAML::Node& node, PolicyData* data) {
  SeenIds seen;
  size_t number = 0;
  ForEachItem(top, node, "rules", limits::policy_rules_max, nullptr, [&](const YAML::Node& item) {
    ReadRule(top.problems, item, ++number, seen, &data->rules);
    return true;
  });
}

// ---- the other sections ----

void ReadVersion(const YamlContext& top, const YAML::Node& root) {
  if (!Require(top, root, "policy", "version", "expected version: 1")) return;
  const YAML::Node version = root["version"];
  if (!version.IsScalar() || version.Scalar() != "1") {
    top.Add(version, "version: expected 1, found " + DescribeYamlNode(version));
  }
}

void ReadDefaults(const YamlContext& top, const YAML::Node& node, PolicyData* data) {
  if (!IsMapOrAdd(top, node, "defaults", "{read, write}")) return;
  RefuseUnknownKeys(top, node, "defaults", {"read", "write"});
  if (const YAML::Node n = node["read"]) {
    if (auto decision = ReadDecision(top, n, "defaults.read")) data->default_read = *decision;
  }
  if (const YAML::Node n = node["write"]) {
    if (auto decision = ReadDecision(top, n, "defaults.write")) data->default_write = *decision;
  }
}

void ReadWorkflowEntry(YamlProblems& problems, const std::string& key, const YAML::Node& key_node,
                       const YAML::Node& value, PolicyData* data) {
  const YamlContext ctx{problems, "workflow '" + key + "'", nullptr};
  std::string why;
  if (key.find('*') != std::string::npos) {
    ctx.Add(key_node,
            "not a workflow name (expected namespace/name or name; patterns with '*' are for "
            "rules and kill switches)");
    return;
  }
  if (!ParseWorkflowPattern(key, &why)) {
    ctx.Add(key_node, why);
    return;
  }
  if (!IsMapOrAdd(ctx, value, "settings", "{budgets}")) return;
  RefuseUnknownKeys(ctx, value, "settings", {"budgets"});
  BudgetSettings budgets;
  if (const YAML::Node n = value["budgets"]) ReadBudgets(ctx, n, "budgets", &budgets);
  data->workflow_budgets.emplace(key, budgets);
}

void ReadWorkflows(const YamlContext& top, const YAML::Node& node, PolicyData* data) {
  if (!IsMapOrAdd(top, node, "workflows", "of workflow name to settings")) return;
  if (node.size() > limits::policy_rules_max) {
    top.Add(node, "workflows: " + std::to_string(node.size()) +
                      " entries is more than the limit of " +
                      std::to_string(limits::policy_rules_max));
    return;
  }
  ForEachEntry(top, node, "workflows",
               [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
                 ReadWorkflowEntry(top.problems, key, key_node, value, data);
               });
}

void ReadKillSwitch(const YamlContext& top, const YAML::Node& node, PolicyData* data) {
  if (!IsMapOrAdd(top, node, "kill_switch", "{all, workflows, runs, reason}")) return;
  RefuseUnknownKeys(top, node, "kill_switch", {"all", "workflows", "runs", "reason"});
  KillSwitch& kill = data->kill_switch;
  if (const YAML::Node n = node["all"])
    kill.all = yaml::Bool(top, n, "kill_switch.all").value_or(false);
  if (const YAML::Node n = node["workflows"]) {
    auto patterns = ReadWorkflowPatterns(top, n, "kill_switch.workflows", nullptr);
    if (patterns) kill.workflows = std::move(*patterns);
  }
  if (const YAML::Node n = node["runs"]) {
    ForEachItem(top, n, "kill_switch.runs", limits::policy_selectors_max, nullptr,
                [&](const YAML::Node& item) {
                  auto text = yaml::String(top, item, "kill_switch.runs");
                  if (!text) return false;
                  if (auto id = RunId::Parse(*text); !id.ok()) {
                    top.Add(item, "kill_switch.runs: " + id.status().message());
                    return false;
                  }
                  kill.runs.push_back(std::move(*text));
                  return true;
                });
  }
  if (const YAML::Node n = node["reason"]) {
    kill.reason = BoundedString(top, n, "kill_switch.reason", kTextBytesMax).value_or("");
  }
}

void ReadRoot(YamlProblems& problems, const YAML::Node& root, PolicyData* data) {
  const YamlContext top{problems, "", nullptr};
  if (!root.IsMap()) {
    top.Add(root, root.IsNull() ? "the policy is empty (expected a map with at least version: 1)"
                                : "expected a policy (a map with version, defaults, rules, ...), "
                                  "found " +
                                      DescribeYamlNode(root));
    return;
  }
  RefuseUnknownKeys(
      top, root, "policy",
      {"version", "name", "defaults", "approvals", "budgets", "workflows", "kill_switch", "rules"});
  ReadVersion(top, root);
  if (const YAML::Node n = root["name"]) {
    data->name = BoundedString(top, n, "name", kNameBytesMax).value_or("");
  }
  if (const YAML::Node n = root["defaults"]; Present(n)) ReadDefaults(top, n, data);
  if (const YAML::Node n = root["approvals"]; Present(n)) {
    ReadApproval(top, n, "approvals", &data->approvals);
  }
  if (const YAML::Node n = root["budgets"]; Present(n))
    ReadBudgets(top, n, "budgets", &data->budgets);
  if (const YAML::Node n = root["workflows"]; Present(n)) ReadWorkflows(top, n, data);
  if (const YAML::Node n = root["kill_switch"]; Present(n)) ReadKillSwitch(top, n, data);
  if (const YAML::Node n = root["rules"]; Present(n)) ReadRules(top, n, data);
}

}  // namespace

Result<PolicyData> ParsePolicyText(std::string_view text, std::string_view source_name) {
  YamlProblems problems(source_name);
  PolicyData data;
  try {
    std::optional<YAML::Node> root =
        ParseYamlText(problems, text, "policy", limits::policy_bytes_max);
    if (root) ReadRoot(problems, *root, &data);
  } catch (const YAML::Exception& e) {
    // Not expected (every access is checked first); kept so that no exception escapes.
    problems.Add(e.mark, "", "invalid YAML: " + e.msg);
  }
  if (!problems.empty()) return problems.ToStatus();
  return data;
}

}  // namespace cairn::policy
