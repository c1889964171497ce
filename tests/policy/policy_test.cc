#include "policy/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "base/limits.h"
#include "base/random.h"
#include "tests/support/assertions.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace cairn::policy {
namespace {

using ::cairn::testing::IsError;
using ::cairn::testing::Must;
using storage::EffectKind;
using storage::RiskLevel;

std::shared_ptr<const Policy> Load(const std::string& yaml) {
  return Must(Policy::Load(yaml, "p.yaml"));
}

// The problems of an invalid policy, one per line; "(loaded)" when it loads.
std::string Problems(const std::string& yaml) {
  auto policy = Policy::Load(yaml, "p.yaml");
  if (policy.ok()) return "(loaded)";
  EXPECT_EQ(policy.status().code(), StatusCode::kInvalidArgument);
  return policy.status().message();
}

// The one problem of `yaml`: a policy with a single error.
std::string Problem(const std::string& yaml) {
  const std::string problems = Problems(yaml);
  EXPECT_EQ(problems.find('\n'), std::string::npos) << "expected one problem:\n" << problems;
  return problems;
}

ToolUse Use(std::string workflow_namespace, std::string workflow_name, std::string tool,
            EffectKind effect = EffectKind::kWrite, RiskLevel risk = RiskLevel::kHigh,
            Json arguments = Json::object()) {
  ToolUse use;
  use.workflow_namespace = std::move(workflow_namespace);
  use.workflow_name = std::move(workflow_name);
  use.run_id = "run-1";
  use.task_path = "/do/0/change";
  use.tool = std::move(tool);
  use.effect = effect;
  use.risk = risk;
  use.arguments = std::move(arguments);
  return use;
}

ToolUse PlanChange(Json arguments = Json::object()) {
  return Use("billing", "plan-change", "billing.change_plan", EffectKind::kWrite,
             RiskLevel::kMedium, std::move(arguments));
}

// The rule id that decides `use` ("defaults.write" etc. when none).
std::string Decider(const Policy& policy, const ToolUse& use) {
  return policy.Evaluate(use).rule_id;
}

// ---- defaults ----

TEST(PolicyTest, TheDefaultPolicyAllowsReadsAndDeniesWrites) {
  auto policy = Policy::Default();
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy.get(), Policy::Default().get()) << "built once";
  EXPECT_EQ(policy->name(), "default");
  EXPECT_EQ(policy->rule_count(), 0u);

  const Verdict write = policy->Evaluate(PlanChange());
  EXPECT_EQ(write.decision, Decision::kDeny);
  EXPECT_EQ(write.rule_id, "defaults.write");
  EXPECT_EQ(write.reason_code, reason::kDeniedByDefault);
  EXPECT_EQ(write.detail,
            "no rule allows write tool 'billing.change_plan' for workflow 'billing/plan-change'; "
            "writes are denied by default");
  EXPECT_EQ(write.approval_expires_after_ms, 0u);

  const Verdict read =
      policy->Evaluate(Use("crm", "sync", "crm.get_account", EffectKind::kRead, RiskLevel::kLow));
  EXPECT_EQ(read.decision, Decision::kAllow);
  EXPECT_EQ(read.rule_id, "defaults.read");
  EXPECT_EQ(read.reason_code, reason::kAllowedByDefault);
  EXPECT_EQ(read.detail,
            "no rule matches read tool 'crm.get_account' for workflow 'crm/sync'; reads are "
            "allowed by default");

  const BudgetCaps caps = policy->BudgetsFor("billing", "plan-change");
  EXPECT_EQ(caps.ToAmounts(), storage::BudgetAmounts{});
  std::string why = "unchanged";
  EXPECT_FALSE(policy->KillSwitchCovers("billing", "plan-change", "run-1", &why));
  EXPECT_EQ(why, "unchanged");
}

TEST(PolicyTest, TheDefaultPolicyIsARealPolicyText) {
  auto policy = Policy::Default();
  auto reloaded = Load(policy->text());
  EXPECT_EQ(reloaded->hash(), policy->hash());
  EXPECT_EQ(policy->hash(), Sha256::Of(policy->text()));
  // Runs record this hash: a change of the built-in text must be deliberate.
  EXPECT_EQ(policy->hash().Hex(),
            "df08233bb1f8c53609fba628d4916ccc7147ae0c240e49b75a9512384bab0b1b");
}

TEST(PolicyTest, AMinimalFileIsDefaultDenyForWrites) {
  auto policy = Load("version: 1\n");
  EXPECT_EQ(policy->name(), "");
  EXPECT_EQ(policy->Evaluate(PlanChange()).decision, Decision::kDeny);
  EXPECT_EQ(policy->Evaluate(Use("a", "b", "t", EffectKind::kRead)).decision, Decision::kAllow);
}

TEST(PolicyTest, DefaultsByEffect) {
  auto policy = Load(
      "version: 1\n"
      "defaults: {read: deny, write: require_approval}\n");
  const Verdict read = policy->Evaluate(Use("a", "b", "t", EffectKind::kRead));
  EXPECT_EQ(read.decision, Decision::kDeny);
  EXPECT_EQ(read.rule_id, "defaults.read");
  EXPECT_EQ(read.reason_code, reason::kDeniedByDefault);
  EXPECT_EQ(read.detail,
            "no rule allows read tool 't' for workflow 'a/b'; reads are denied by default");

  const Verdict write = policy->Evaluate(Use("", "b", "t"));
  EXPECT_EQ(write.decision, Decision::kRequireApproval);
  EXPECT_EQ(write.rule_id, "defaults.write");
  EXPECT_EQ(write.reason_code, reason::kApprovalRequiredByDefault);
  EXPECT_EQ(write.detail,
            "no rule matches write tool 't' for workflow 'b'; writes require approval by default");
  EXPECT_EQ(write.approval_expires_after_ms, limits::approval_expiry_ms_default);
  EXPECT_TRUE(write.approvers.empty());

  auto allowing = Load("version: 1\ndefaults: {write: allow}\n");
  const Verdict allowed = allowing->Evaluate(Use("a", "b", "t"));
  EXPECT_EQ(allowed.decision, Decision::kAllow);
  EXPECT_EQ(allowed.reason_code, reason::kAllowedByDefault);
  EXPECT_EQ(allowed.detail,
            "no rule matches write tool 't' for workflow 'a/b'; writes are allowed by default");
}

TEST(PolicyTest, DecisionNames) {
  EXPECT_EQ(DecisionName(Decision::kAllow), "allow");
  EXPECT_EQ(DecisionName(Decision::kRequireApproval), "require_approval");
  EXPECT_EQ(DecisionName(Decision::kDeny), "deny");
}

// ---- rules ----

TEST(PolicyTest, TheFirstMatchingRuleDecides) {
  auto policy = Load(
      "version: 1\n"
      "rules:\n"
      "  - id: no-enterprise\n"
      "    tools: [billing.change_plan]\n"
      "    when: [{path: /arguments/plan, eq: enterprise}]\n"
      "    decision: deny\n"
      "    reason: enterprise plans are sold by people\n"
      "  - id: small\n"
      "    tools: [billing.change_plan]\n"
      "    decision: allow\n"
      "  - id: never-reached\n"
      "    decision: deny\n");
  EXPECT_EQ(policy->rule_count(), 3u);
  const Verdict denied = policy->Evaluate(PlanChange({{"plan", "enterprise"}}));
  EXPECT_EQ(denied.decision, Decision::kDeny);
  EXPECT_EQ(denied.rule_id, "no-enterprise");
  EXPECT_EQ(denied.reason_code, reason::kDeniedByRule);
  EXPECT_EQ(denied.detail,
            "rule 'no-enterprise' denies write tool 'billing.change_plan' for workflow "
            "'billing/plan-change' (when /arguments/plan eq \"enterprise\"): enterprise plans "
            "are sold by people");

  const Verdict allowed = policy->Evaluate(PlanChange({{"plan", "team"}}));
  EXPECT_EQ(allowed.decision, Decision::kAllow);
  EXPECT_EQ(allowed.rule_id, "small");
  EXPECT_EQ(allowed.reason_code, reason::kAllowedByRule);
  EXPECT_EQ(allowed.detail,
            "rule 'small' allows write tool 'billing.change_plan' for workflow "
            "'billing/plan-change'");

  EXPECT_EQ(Decider(*policy, Use("a", "b", "other.tool")), "never-reached");
}

TEST(PolicyTest, WorkflowSelectors) {
  auto policy = Load(
      "version: 1\n"
      "rules:\n"
      "  - {id: exact, workflows: [billing/plan-change], decision: allow}\n"
      "  - {id: any-namespace, workflows: [refund], decision: allow}\n"
      "  - {id: prefix, workflows: [ops/sync-*], decision: allow}\n"
      "  - {id: namespace, workflows: [ops/*], decision: allow}\n"
      "  - {id: name-prefix, workflows: [nightly-*], decision: allow}\n"
      "  - {id: either, workflows: [x/one, y/two], decision: allow}\n"
      "  - {id: everything, workflows: ['*'], decision: deny}\n");
  EXPECT_EQ(Decider(*policy, Use("billing", "plan-change", "t")), "exact");
  EXPECT_EQ(Decider(*policy, Use("other", "plan-change", "t")), "everything");
  EXPECT_EQ(Decider(*policy, Use("billing", "plan-change-2", "t")), "everything");
  EXPECT_EQ(Decider(*policy, Use("shop", "refund", "t")), "any-namespace");
  EXPECT_EQ(Decider(*policy, Use("", "refund", "t")), "any-namespace");
  EXPECT_EQ(Decider(*policy, Use("ops", "sync-crm", "t")), "prefix");
  EXPECT_EQ(Decider(*policy, Use("ops", "sync-", "t")), "prefix");
  EXPECT_EQ(Decider(*policy, Use("ops", "backup", "t")), "namespace");
  EXPECT_EQ(Decider(*policy, Use("opsx", "backup", "t")), "everything");
  EXPECT_EQ(Decider(*policy, Use("a", "nightly-report", "t")), "name-prefix");
  EXPECT_EQ(Decider(*policy, Use("x", "one", "t")), "either");
  EXPECT_EQ(Decider(*policy, Use("y", "two", "t")), "either");
  EXPECT_EQ(Decider(*policy, Use("x", "two", "t")), "everything");
}

TEST(PolicyTest, ToolSelectors) {
  auto policy = Load(
      "version: 1\n"
      "rules:\n"
      "  - {id: exact, tools: [billing.change_plan], decision: allow}\n"
      "  - {id: prefix, tools: [billing.*], decision: require_approval}\n"
      "  - {id: inline, tools: [http, shell], decision: deny}\n"
      "  - {id: any, tools: ['*'], decision: allow}\n");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "billing.change_plan")), "exact");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "billing.change_plan2")), "prefix");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "billing.refund")), "prefix");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "billing")), "any");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "http")), "inline");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "shell")), "inline");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "mcp")), "any");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "")), "any");
}

TEST(PolicyTest, EffectRiskAndAgentSelectors) {
  auto policy = Load(
      "version: 1\n"
      "defaults: {read: deny}\n"
      "rules:\n"
      "  - {id: agent-reads, effect: read, agent_tools: true, decision: allow}\n"
      "  - {id: workflow-reads, effect: read, agent_tools: false, risk: low, decision: allow}\n"
      "  - {id: critical, risk: critical, decision: deny}\n"
      "  - {id: medium-or-high, effect: write, risk: [medium, high], decision: require_approval}\n"
      "  - {id: low-writes, effect: write, risk: [low], decision: allow}\n");
  ToolUse agent_read = Use("a", "b", "crm.get", EffectKind::kRead, RiskLevel::kHigh);
  agent_read.for_agent = true;
  EXPECT_EQ(Decider(*policy, agent_read), "agent-reads");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "crm.get", EffectKind::kRead, RiskLevel::kLow)),
            "workflow-reads");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "crm.get", EffectKind::kRead, RiskLevel::kMedium)),
            "defaults.read");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "crm.get", EffectKind::kRead, RiskLevel::kCritical)),
            "critical");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "t", EffectKind::kWrite, RiskLevel::kMedium)),
            "medium-or-high");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "t", EffectKind::kWrite, RiskLevel::kHigh)),
            "medium-or-high");
  EXPECT_EQ(Decider(*policy, Use("a", "b", "t", EffectKind::kWrite, RiskLevel::kLow)),
            "low-writes");
  // An unspecified risk is judged as the highest.
  EXPECT_EQ(Decider(*policy, Use("a", "b", "t", EffectKind::kWrite, RiskLevel::kUnspecified)),
            "critical");
  ToolUse agent_write = Use("a", "b", "t", EffectKind::kWrite, RiskLevel::kLow);
  agent_write.for_agent = true;
  EXPECT_EQ(Decider(*policy, agent_write), "low-writes");
}

TEST(PolicyTest, EverySelectorMustMatch) {
  auto policy = Load(
      "version: 1\n"
      "rules:\n"
      "  - id: all-of-them\n"
      "    workflows: [billing/*]\n"
      "    tools: [billing.*]\n"
      "    effect: write\n"
      "    risk: medium\n"
      "    agent_tools: false\n"
      "    when: [{path: /arguments/seats, lt: 10}]\n"
      "    decision: allow\n");
  const Json small = {{"seats", 3}};
  auto use = [&] {
    return Use("billing", "plan-change", "billing.change_plan", EffectKind::kWrite,
               RiskLevel::kMedium, small);
  };
  EXPECT_EQ(Decider(*policy, use()), "all-of-them");
  ToolUse changed = use();
  changed.workflow_namespace = "shop";
  EXPECT_EQ(Decider(*policy, changed), "defaults.write");
  changed = use();
  changed.tool = "crm.update";
  EXPECT_EQ(Decider(*policy, changed), "defaults.write");
  changed = use();
  changed.effect = EffectKind::kRead;
  EXPECT_EQ(Decider(*policy, changed), "defaults.read");
  changed = use();
  changed.risk = RiskLevel::kHigh;
  EXPECT_EQ(Decider(*policy, changed), "defaults.write");
  changed = use();
  changed.for_agent = true;
  EXPECT_EQ(Decider(*policy, changed), "defaults.write");
  changed = use();
  changed.arguments = {{"seats", 10}};
  EXPECT_EQ(Decider(*policy, changed), "defaults.write");
}

TEST(PolicyTest, ConditionsOnArgumentsAndTheUse) {
  auto policy = Load(
      "version: 1\n"
      "rules:\n"
      "  - id: small-plan-changes\n"
      "    tools: [billing.change_plan]\n"
      "    when:\n"
      "      - {path: /arguments/monthly_price, lte: 500}\n"
      "      - {path: /arguments/plan, in: [team, business]}\n"
      "    decision: allow\n"
      "    reason: within the self-serve price range\n"
      "  - id: no-coupon\n"
      "    when: [{path: /arguments/coupon, exists: false}, {path: /risk, eq: medium}]\n"
      "    decision: require_approval\n"
      "  - id: by-run\n"
      "    when: [{path: /run_id, eq: run-7}, {path: /task_path, ne: /do/1/x}]\n"
      "    decision: allow\n"
      "  - id: by-workflow\n"
      "    when: [{path: /workflow/namespace, eq: ops}, {path: /workflow/name, eq: sync},\n"
      "           {path: /effect, eq: write}, {path: /tool, eq: t}, {path: /for_agent, eq: "
      "false}]\n"
      "    decision: allow\n"
      "  - id: whole-document\n"
      "    when: [{path: '', exists: true}]\n"
      "    decision: deny\n");
  const Verdict small = policy->Evaluate(PlanChange({{"monthly_price", 500}, {"plan", "team"}}));
  EXPECT_EQ(small.rule_id, "small-plan-changes");
  EXPECT_EQ(small.detail,
            "rule 'small-plan-changes' allows write tool 'billing.change_plan' for workflow "
            "'billing/plan-change' (when /arguments/monthly_price lte 500 and /arguments/plan in "
            "[\"team\",\"business\"]): within the self-serve price range");
  EXPECT_EQ(Decider(*policy, PlanChange({{"monthly_price", 499.5}, {"plan", "business"}})),
            "small-plan-changes");
  EXPECT_EQ(Decider(*policy, PlanChange({{"monthly_price", 501}, {"plan", "team"}})), "no-coupon");
  // Not a number: lte fails, so the next rule is tried.
  EXPECT_EQ(Decider(*policy, PlanChange({{"monthly_price", "400"}, {"plan", "team"}})),
            "no-coupon");
  EXPECT_EQ(Decider(*policy, PlanChange({{"plan", "team"}})), "no-coupon");
  EXPECT_EQ(Decider(*policy, PlanChange({{"coupon", "X"}})), "whole-document");
  // Arguments that are not an object at all.
  EXPECT_EQ(Decider(*policy, PlanChange(Json::array({1, 2}))), "no-coupon");

  ToolUse run7 = Use("a", "b", "t", EffectKind::kWrite, RiskLevel::kHigh);
  run7.run_id = "run-7";
  EXPECT_EQ(Decider(*policy, run7), "by-run");
  run7.task_path = "/do/1/x";
  EXPECT_EQ(Decider(*policy, run7), "whole-document");
  EXPECT_EQ(Decider(*policy, Use("ops", "sync", "t")), "by-workflow");
  ToolUse for_agent = Use("ops", "sync", "t");
  for_agent.for_agent = true;
  EXPECT_EQ(Decider(*policy, for_agent), "whole-document");
}

TEST(PolicyTest, EvaluateIsDeterministic) {
  auto policy = Load(
      "version: 1\n"
      "rules:\n"
      "  - {id: r, when: [{path: /arguments/n, gt: 1}], decision: require_approval,\n"
      "     approval: {approvers: [b, a]}}\n");
  const ToolUse use = PlanChange({{"n", 2}, {"z", {1, 2, 3}}});
  const Verdict first = policy->Evaluate(use);
  for (int i = 0; i < 3; ++i) {
    const Verdict again = Load(policy->text())->Evaluate(use);
    EXPECT_EQ(again.decision, first.decision);
    EXPECT_EQ(again.rule_id, first.rule_id);
    EXPECT_EQ(again.reason_code, first.reason_code);
    EXPECT_EQ(again.detail, first.detail);
    EXPECT_EQ(again.approval_expires_after_ms, first.approval_expires_after_ms);
    EXPECT_EQ(again.approvers, first.approvers);
  }
  EXPECT_EQ(first.approvers, (std::vector<std::string>{"b", "a"})) << "order as written";
}

TEST(PolicyTest, LongConditionsAreShortenedInTheDetail) {
  std::string list;
  for (int i = 0; i < 200; ++i) list += (i ? ", " : "") + std::string("value-") + std::to_string(i);
  auto policy = Load("version: 1\nrules:\n  - {id: r, when: [{path: /tool, in: [" + list +
                     "]}], decision: deny}\n");
  const Verdict verdict = policy->Evaluate(Use("a", "b", "value-150"));
  EXPECT_EQ(verdict.rule_id, "r");
  EXPECT_LT(verdict.detail.size(), 600u);
  EXPECT_NE(verdict.detail.find("...)"), std::string::npos) << verdict.detail;
}

// ---- approvals ----

TEST(PolicyTest, ApprovalSettingsAreInheritedFieldByField) {
  auto policy = Load(
      "version: 1\n"
      "approvals:\n"
      "  expires_after: 2h\n"
      "  approvers: [alice, bob]\n"
      "rules:\n"
      "  - {id: own, tools: [a], decision: require_approval,\n"
      "     approval: {expires_after: 30m, approvers: [carol]}}\n"
      "  - {id: own-approvers, tools: [b], decision: require_approval,\n"
      "     approval: {approvers: [dave]}}\n"
      "  - {id: own-expiry, tools: [c], decision: require_approval,\n"
      "     approval: {expires_after: 1d}}\n"
      "  - {id: anyone, tools: [d], decision: require_approval, approval: {approvers: []}}\n"
      "  - {id: inherited, tools: [e], decision: require_approval}\n");
  const Verdict own = policy->Evaluate(Use("w", "f", "a"));
  EXPECT_EQ(own.decision, Decision::kRequireApproval);
  EXPECT_EQ(own.reason_code, reason::kApprovalRequiredByRule);
  EXPECT_EQ(own.detail, "rule 'own' requires approval for write tool 'a' for workflow 'w/f'");
  EXPECT_EQ(own.approval_expires_after_ms, 30u * 60 * 1000);
  EXPECT_EQ(own.approvers, (std::vector<std::string>{"carol"}));

  const Verdict approvers = policy->Evaluate(Use("w", "f", "b"));
  EXPECT_EQ(approvers.approval_expires_after_ms, 2u * 3600 * 1000);
  EXPECT_EQ(approvers.approvers, (std::vector<std::string>{"dave"}));

  const Verdict expiry = policy->Evaluate(Use("w", "f", "c"));
  EXPECT_EQ(expiry.approval_expires_after_ms, 24u * 3600 * 1000);
  EXPECT_EQ(expiry.approvers, (std::vector<std::string>{"alice", "bob"}));

  EXPECT_TRUE(policy->Evaluate(Use("w", "f", "d")).approvers.empty());

  const Verdict inherited = policy->Evaluate(Use("w", "f", "e"));
  EXPECT_EQ(inherited.approval_expires_after_ms, 2u * 3600 * 1000);
  EXPECT_EQ(inherited.approvers, (std::vector<std::string>{"alice", "bob"}));

  // Without any settings: the limits' default, anyone.
  auto bare = Load("version: 1\nrules: [{id: r, decision: require_approval}]\n");
  const Verdict verdict = bare->Evaluate(Use("w", "f", "x"));
  EXPECT_EQ(verdict.approval_expires_after_ms, limits::approval_expiry_ms_default);
  EXPECT_TRUE(verdict.approvers.empty());

  // Allow and deny verdicts carry no approval settings.
  auto mixed = Load("version: 1\napprovals: {approvers: [a]}\nrules: [{id: r, decision: allow}]\n");
  const Verdict allowed = mixed->Evaluate(Use("w", "f", "x"));
  EXPECT_EQ(allowed.approval_expires_after_ms, 0u);
  EXPECT_TRUE(allowed.approvers.empty());
}

// ---- kill switches ----

TEST(PolicyTest, KillSwitchesDenyBeforeAnyRule) {
  auto policy = Load(
      "version: 1\n"
      "kill_switch:\n"
      "  workflows: [billing/plan-change, ops/*]\n"
      "  runs: [01JD0000000000000000000000]\n"
      "  reason: incident 42\n"
      "rules:\n"
      "  - {id: allow-all, decision: allow}\n");
  const Verdict killed = policy->Evaluate(PlanChange());
  EXPECT_EQ(killed.decision, Decision::kDeny);
  EXPECT_EQ(killed.rule_id, "kill_switch");
  EXPECT_EQ(killed.reason_code, reason::kKillSwitch);
  EXPECT_EQ(killed.detail,
            "the policy's kill switch covers workflow 'billing/plan-change': incident 42");

  std::string why;
  EXPECT_TRUE(policy->KillSwitchCovers("ops", "backup", "r", &why));
  EXPECT_EQ(why, "the policy's kill switch covers workflow 'ops/backup' (as 'ops/*'): incident 42");
  EXPECT_TRUE(policy->KillSwitchCovers("shop", "order", "01JD0000000000000000000000", &why));
  EXPECT_EQ(why, "the policy's kill switch covers run '01JD0000000000000000000000': incident 42");
  EXPECT_TRUE(policy->KillSwitchCovers("ops", "backup", "r", nullptr));
  EXPECT_FALSE(policy->KillSwitchCovers("shop", "order", "01JD0000000000000000000001", &why));
  EXPECT_FALSE(policy->KillSwitchCovers("shop", "order", "", nullptr));

  const Verdict other = policy->Evaluate(Use("shop", "order", "t"));
  EXPECT_EQ(other.rule_id, "allow-all");
}

TEST(PolicyTest, TheGlobalKillSwitch) {
  auto policy = Load("version: 1\nkill_switch: {all: true}\n");
  const Verdict verdict =
      policy->Evaluate(Use("a", "b", "crm.get", EffectKind::kRead, RiskLevel::kLow));
  EXPECT_EQ(verdict.decision, Decision::kDeny);
  EXPECT_EQ(verdict.rule_id, "kill_switch");
  EXPECT_EQ(verdict.detail, "the policy's kill switch covers all runs");

  auto off = Load("version: 1\nkill_switch: {all: false, workflows: [], runs: []}\n");
  EXPECT_FALSE(off->KillSwitchCovers("a", "b", "c", nullptr));
  EXPECT_EQ(Decider(*off, Use("a", "b", "t")), "defaults.write");
}

// ---- budgets ----

TEST(PolicyTest, BudgetsPerWorkflowOverrideTheFileByDimension) {
  auto policy = Load(
      "version: 1\n"
      "budgets:\n"
      "  steps: 200\n"
      "  wall_clock: 2h\n"
      "  tokens: 100000\n"
      "  cost: 2.50\n"
      "  tool_calls: 50\n"
      "workflows:\n"
      "  billing/plan-change:\n"
      "    budgets: {cost: 1.00, steps: 0}\n"
      "  plan-change:\n"
      "    budgets: {tokens: 5}\n"
      "  refund:\n"
      "    budgets: {wall_clock: 90s, tool_calls: 3}\n"
      "  quiet: {}\n");
  const BudgetCaps file = policy->BudgetsFor("shop", "order");
  EXPECT_EQ(file.steps, 200u);
  EXPECT_EQ(file.wall_ms, 2u * 3600 * 1000);
  EXPECT_EQ(file.tokens, 100000u);
  EXPECT_EQ(file.cost_micros, 2'500'000);
  EXPECT_EQ(file.tool_calls, 50u);

  // "ns/name" first; an explicit 0 removes the cap.
  const BudgetCaps own = policy->BudgetsFor("billing", "plan-change");
  EXPECT_EQ(own.cost_micros, 1'000'000);
  EXPECT_EQ(own.steps, 0u);
  EXPECT_EQ(own.tokens, 100000u) << "not merged with the 'plan-change' entry";
  EXPECT_EQ(own.wall_ms, 2u * 3600 * 1000);

  // "name" in any other namespace.
  const BudgetCaps by_name = policy->BudgetsFor("other", "plan-change");
  EXPECT_EQ(by_name.tokens, 5u);
  EXPECT_EQ(by_name.cost_micros, 2'500'000);
  const BudgetCaps refund = policy->BudgetsFor("", "refund");
  EXPECT_EQ(refund.wall_ms, 90'000u);
  EXPECT_EQ(refund.tool_calls, 3u);
  EXPECT_EQ(refund.steps, 200u);
  const BudgetCaps quiet = policy->BudgetsFor("x", "quiet");
  EXPECT_EQ(quiet.ToAmounts(), file.ToAmounts());

  storage::BudgetAmounts amounts = own.ToAmounts();
  EXPECT_EQ(amounts.steps, 0u);
  EXPECT_EQ(amounts.wall_ms, 2u * 3600 * 1000);
  EXPECT_EQ(amounts.tokens, 100000u);
  EXPECT_EQ(amounts.cost_micros, 1'000'000);
  EXPECT_EQ(amounts.tool_calls, 50u);
}

TEST(PolicyTest, AZeroWallClockIsNoCap) {
  auto policy =
      Load("version: 1\nbudgets: {wall_clock: 1h}\nworkflows: {a: {budgets: {wall_clock: 0}}}\n");
  EXPECT_EQ(policy->BudgetsFor("x", "b").wall_ms, 3'600'000u);
  EXPECT_EQ(policy->BudgetsFor("x", "a").wall_ms, 0u);
}

storage::BudgetAmounts Amounts(uint64_t steps, uint64_t wall_ms, uint64_t tokens,
                               int64_t cost_micros, uint64_t tool_calls) {
  storage::BudgetAmounts amounts;
  amounts.steps = steps;
  amounts.wall_ms = wall_ms;
  amounts.tokens = tokens;
  amounts.cost_micros = cost_micros;
  amounts.tool_calls = tool_calls;
  return amounts;
}

TEST(PolicyTest, ExceededDimension) {
  const storage::BudgetAmounts caps = Amounts(10, 1000, 500, 2'000'000, 3);
  const storage::BudgetAmounts none{};
  EXPECT_EQ(ExceededDimension(caps, none, none, none), std::nullopt);
  // Exactly at the cap is within it.
  EXPECT_EQ(ExceededDimension(caps, Amounts(5, 500, 200, 1'000'000, 1),
                              Amounts(4, 400, 200, 500'000, 1), Amounts(1, 100, 100, 500'000, 1)),
            std::nullopt);
  EXPECT_EQ(ExceededDimension(caps, Amounts(10, 0, 0, 0, 0), none, Amounts(1, 0, 0, 0, 0)),
            "steps");
  EXPECT_EQ(ExceededDimension(caps, none, Amounts(0, 1001, 0, 0, 0), none), "wall_clock");
  EXPECT_EQ(ExceededDimension(caps, Amounts(0, 0, 400, 0, 0), Amounts(0, 0, 100, 0, 0),
                              Amounts(0, 0, 1, 0, 0)),
            "tokens");
  EXPECT_EQ(ExceededDimension(caps, none, none, Amounts(0, 0, 0, 2'000'001, 0)), "cost");
  EXPECT_EQ(ExceededDimension(caps, none, none, Amounts(0, 0, 0, 0, 4)), "tool_calls");
  // The first exceeded in the documented order.
  EXPECT_EQ(ExceededDimension(caps, none, none, Amounts(11, 2000, 600, 3'000'000, 4)), "steps");
  EXPECT_EQ(ExceededDimension(caps, none, none, Amounts(0, 2000, 600, 3'000'000, 4)), "wall_clock");
  EXPECT_EQ(ExceededDimension(caps, none, none, Amounts(0, 0, 600, 3'000'000, 4)), "tokens");
  EXPECT_EQ(ExceededDimension(caps, none, none, Amounts(0, 0, 0, 3'000'000, 4)), "cost");
  // A zero cap is no cap, however much is spent.
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  constexpr int64_t kMaxCost = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(ExceededDimension(none, Amounts(kMax, kMax, kMax, kMaxCost, kMax),
                              Amounts(kMax, kMax, kMax, kMaxCost, kMax),
                              Amounts(kMax, kMax, kMax, kMaxCost, kMax)),
            std::nullopt);
}

TEST(PolicyTest, ExceededDimensionDoesNotOverflow) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  constexpr int64_t kMaxCost = std::numeric_limits<int64_t>::max();
  const storage::BudgetAmounts none{};
  // Sums that wrap around in 64 bits would look small.
  EXPECT_EQ(ExceededDimension(Amounts(10, 0, 0, 0, 0), Amounts(kMax, 0, 0, 0, 0),
                              Amounts(2, 0, 0, 0, 0), none),
            "steps");
  EXPECT_EQ(ExceededDimension(Amounts(0, 0, 0, 0, 5), Amounts(0, 0, 0, 0, kMax),
                              Amounts(0, 0, 0, 0, kMax), Amounts(0, 0, 0, 0, 2)),
            "tool_calls");
  EXPECT_EQ(ExceededDimension(Amounts(0, 0, 0, 100, 0), Amounts(0, 0, 0, kMaxCost, 0),
                              Amounts(0, 0, 0, kMaxCost, 0), Amounts(0, 0, 0, 1, 0)),
            "cost");
  // The largest cap holds the largest sum that fits.
  EXPECT_EQ(ExceededDimension(Amounts(kMax, 0, 0, 0, 0), Amounts(kMax - 1, 0, 0, 0, 0), none,
                              Amounts(1, 0, 0, 0, 0)),
            std::nullopt);
  EXPECT_EQ(ExceededDimension(Amounts(kMax, 0, 0, 0, 0), Amounts(kMax, 0, 0, 0, 0), none,
                              Amounts(1, 0, 0, 0, 0)),
            "steps");
  EXPECT_EQ(
      ExceededDimension(Amounts(0, 0, 0, kMaxCost, 0), Amounts(0, 0, 0, kMaxCost, 0), none, none),
      std::nullopt);
  EXPECT_EQ(ExceededDimension(Amounts(0, 0, 0, kMaxCost, 0), Amounts(0, 0, 0, kMaxCost, 0), none,
                              Amounts(0, 0, 0, 1, 0)),
            "cost");
  // A negative charge (a refund) counts as such; it cannot hide an overrun elsewhere.
  EXPECT_EQ(ExceededDimension(Amounts(0, 0, 0, 100, 0), Amounts(0, 0, 0, 150, 0), none,
                              Amounts(0, 0, 0, -60, 0)),
            std::nullopt);
}

// ---- hash and text ----

TEST(PolicyTest, TheHashIsOfTheExactText) {
  const std::string text = "version: 1\nname: back-office\n";
  auto policy = Load(text);
  EXPECT_EQ(policy->text(), text);
  EXPECT_EQ(policy->name(), "back-office");
  EXPECT_EQ(policy->hash(), Sha256::Of(text));
  EXPECT_EQ(Load(text)->hash(), policy->hash());
  // The same meaning written differently is another policy text.
  EXPECT_NE(Load("version: 1\nname: back-office  # the same\n")->hash(), policy->hash());
}

TEST(PolicyTest, LoadFile) {
  ::cairn::testing::TempDir dir;
  const std::string path = dir.Sub("policy.yaml");
  std::ofstream(path) << "version: 1\nrules: [{id: r, decision: allow}]\n";
  auto policy = Must(Policy::LoadFile(path));
  EXPECT_EQ(policy->rule_count(), 1u);
  EXPECT_EQ(policy->hash(), Sha256::Of("version: 1\nrules: [{id: r, decision: allow}]\n"));

  EXPECT_TRUE(IsError(Policy::LoadFile(dir.Sub("missing.yaml")).status(), StatusCode::kNotFound,
                      {"cannot read policy", "missing.yaml"}));
  EXPECT_TRUE(IsError(Policy::LoadFile(dir.path()).status(), StatusCode::kInvalidArgument,
                      {"is a directory"}));
  const std::string bad = dir.Sub("bad.yaml");
  std::ofstream(bad) << "version: 1\nrules: [{id: r}]\n";
  EXPECT_TRUE(IsError(Policy::LoadFile(bad).status(), StatusCode::kInvalidArgument,
                      {bad + ":2:9: rule 'r': rule: missing 'decision'"}));
}

// ---- bad input: every problem with its position ----

TEST(PolicyLoadTest, Version) {
  EXPECT_EQ(Problem("name: x\n"), "p.yaml:1:1: policy: missing 'version' (expected version: 1)");
  EXPECT_EQ(Problem("version: 2\n"), "p.yaml:1:10: version: expected 1, found '2'");
  EXPECT_EQ(Problem("version: [1]\n"), "p.yaml:1:10: version: expected 1, found a list");
  // yaml-cpp places an empty value where the next token starts.
  EXPECT_EQ(Problem("version:\n"), "p.yaml:2:1: version: expected 1, found nothing");
}

TEST(PolicyLoadTest, NotAPolicyDocument) {
  EXPECT_EQ(Problem(""), "p.yaml: the policy is empty (expected a map with at least version: 1)");
  EXPECT_EQ(Problem("# only a comment\n"),
            "p.yaml: the policy is empty (expected a map with at least version: 1)");
  EXPECT_EQ(Problem("- version: 1\n"),
            "p.yaml:1:1: expected a policy (a map with version, defaults, rules, ...), found a "
            "list");
  EXPECT_EQ(Problem("just text\n"),
            "p.yaml:1:1: expected a policy (a map with version, defaults, rules, ...), found "
            "'just text'");
}

TEST(PolicyLoadTest, InvalidYamlHasAPosition) {
  EXPECT_EQ(Problem("version: 1\nrules: [\n"),
            "p.yaml:3:1: invalid YAML: end of sequence flow not found");
  const std::string tab = Problem("version: 1\n\tname: x\n");
  EXPECT_EQ(tab.rfind("p.yaml:2:", 0), 0u) << tab;
}

TEST(PolicyLoadTest, UnknownKeysAreRefusedByName) {
  EXPECT_EQ(Problems("version: 1\n"
                     "rulez: []\n"
                     "defaults: {read: allow, writes: deny}\n"
                     "approvals: {expires: 1h}\n"
                     "budgets: {money: 3}\n"
                     "workflows: {a: {budget: {}}}\n"
                     "kill_switch: {everything: true}\n"
                     "rules:\n"
                     "  - {id: r, decision: allow, tool: [x]}\n"
                     "  - {id: s, decision: require_approval, approval: {who: [a]}}\n"),
            "p.yaml:2:1: policy: unknown key 'rulez' (expected version, name, defaults, "
            "approvals, budgets, workflows, kill_switch, rules)\n"
            "p.yaml:3:25: defaults: unknown key 'writes' (expected read, write)\n"
            "p.yaml:4:13: approvals: unknown key 'expires' (expected expires_after, approvers)\n"
            "p.yaml:5:11: budgets: unknown key 'money' (expected steps, wall_clock, tokens, cost, "
            "tool_calls)\n"
            "p.yaml:6:17: workflow 'a': settings: unknown key 'budget' (expected budgets)\n"
            "p.yaml:7:15: kill_switch: unknown key 'everything' (expected all, workflows, runs, "
            "reason)\n"
            "p.yaml:9:30: rule 'r': rule: unknown key 'tool' (expected id, description, "
            "workflows, tools, effect, risk, agent_tools, when, decision, reason, approval)\n"
            "p.yaml:10:52: rule 's': approval: unknown key 'who' (expected expires_after, "
            "approvers)");
}

TEST(PolicyLoadTest, DuplicateKeysAndRuleIds) {
  EXPECT_EQ(Problems("version: 1\n"
                     "name: a\n"
                     "name: b\n"
                     "rules:\n"
                     "  - {id: a, decision: allow}\n"
                     "  - {id: b, decision: allow, decision: deny}\n"
                     "  - id: a\n"
                     "    decision: deny\n"),
            "p.yaml:3:1: policy: 'name' appears twice\n"
            "p.yaml:6:30: rule 'b': rule: 'decision' appears twice\n"
            "p.yaml:7:9: rule 'a': id: 'a' is already the id of the rule at line 5");
}

TEST(PolicyLoadTest, RuleIds) {
  EXPECT_EQ(Problems("version: 1\n"
                     "rules:\n"
                     "  - {decision: allow}\n"
                     "  - {id: 'has space', decision: allow}\n"
                     "  - {id: kill_switch, decision: allow}\n"
                     "  - {id: defaults.write, decision: allow}\n"
                     "  - {id: [x], decision: allow}\n"
                     "  - {id: 'A-z_0.9:x', decision: allow}\n"),
            "p.yaml:3:5: rule #1: rule: missing 'id'\n"
            "p.yaml:4:10: rule #2: id: 'has space' is not a rule id (expected 1 to 128 of A-Z "
            "a-z 0-9 _ . : -)\n"
            "p.yaml:5:10: rule 'kill_switch': id: 'kill_switch' is reserved (verdicts without a "
            "rule use kill_switch, defaults.read and defaults.write)\n"
            "p.yaml:6:10: rule 'defaults.write': id: 'defaults.write' is reserved (verdicts "
            "without a rule use kill_switch, defaults.read and defaults.write)\n"
            "p.yaml:7:10: rule #5: id: expected a string, found a list");
  const std::string long_id(129, 'x');
  EXPECT_EQ(Problem("version: 1\nrules: [{id: " + long_id + ", decision: allow}]\n"),
            "p.yaml:2:14: rule #1: id: '" + long_id.substr(0, 57) +
                "...' is not a rule id (expected 1 to 128 of A-Z a-z 0-9 _ . : -)");
  EXPECT_EQ(Problems("version: 1\nrules: [{id: " + long_id.substr(1) + ", decision: allow}]\n"),
            "(loaded)");
}

TEST(PolicyLoadTest, Decisions) {
  EXPECT_EQ(Problems("version: 1\n"
                     "rules:\n"
                     "  - {id: a}\n"
                     "  - {id: b, decision: permit}\n"
                     "  - {id: c, decision: allow, approval: {expires_after: 1h}}\n"
                     "  - {id: d, decision: deny, approval: {}}\n"
                     "  - just-a-name\n"),
            "p.yaml:3:5: rule 'a': rule: missing 'decision' (expected one of allow, "
            "require_approval, deny)\n"
            "p.yaml:4:23: rule 'b': decision: unknown value 'permit' (expected allow, "
            "require_approval, deny)\n"
            "p.yaml:5:40: rule 'c': approval: only a rule whose decision is require_approval may "
            "have one (this rule's decision is allow)\n"
            "p.yaml:6:39: rule 'd': approval: only a rule whose decision is require_approval may "
            "have one (this rule's decision is deny)\n"
            "p.yaml:7:5: rule #5: expected a rule (a map with id, decision and selectors), found "
            "'just-a-name'");
  EXPECT_EQ(Problem("version: 1\ndefaults: {write: maybe}\n"),
            "p.yaml:2:19: defaults.write: unknown value 'maybe' (expected allow, "
            "require_approval, deny)");
  EXPECT_EQ(Problem("version: 1\ndefaults: [allow]\n"),
            "p.yaml:2:11: defaults: expected a map {read, write}, found a list");
}

TEST(PolicyLoadTest, Selectors) {
  EXPECT_EQ(Problems("version: 1\n"
                     "rules:\n"
                     "  - {id: a, workflows: [], decision: allow}\n"
                     "  - {id: b, tools: [], decision: allow}\n"
                     "  - {id: c, risk: [], decision: allow}\n"
                     "  - {id: d, when: [], decision: allow}\n"
                     "  - {id: e, tools: billing.*, decision: allow}\n"
                     "  - {id: f, effect: delete, decision: allow}\n"
                     "  - {id: g, risk: [low, severe], decision: allow}\n"
                     "  - {id: h, risk: extreme, decision: allow}\n"
                     "  - {id: i, agent_tools: yes, decision: allow}\n"),
            "p.yaml:3:24: rule 'a': workflows: must not be empty (leave it out to match every "
            "workflow)\n"
            "p.yaml:4:20: rule 'b': tools: must not be empty (leave it out to match every tool)\n"
            "p.yaml:5:19: rule 'c': risk: must not be empty (leave it out to match every level)\n"
            "p.yaml:6:19: rule 'd': when: must not be empty (leave it out to match without "
            "conditions)\n"
            "p.yaml:7:20: rule 'e': tools: expected a list, found 'billing.*'\n"
            "p.yaml:8:21: rule 'f': effect: unknown value 'delete' (expected read, write)\n"
            "p.yaml:9:25: rule 'g': risk: unknown value 'severe' (expected low, medium, high, "
            "critical)\n"
            "p.yaml:10:19: rule 'h': risk: unknown value 'extreme' (expected low, medium, high, "
            "critical)\n"
            "p.yaml:11:26: rule 'i': agent_tools: expected true or false, found 'yes'");
}

TEST(PolicyLoadTest, Globs) {
  EXPECT_EQ(
      Problems("version: 1\n"
               "rules:\n"
               "  - {id: a, tools: ['bill*ing', '*x', '', 'a b'], decision: allow}\n"
               "  - {id: b, workflows: [a/b/c, /x, 'ns/', '*/x', 'n*s/x', 'ok/*'], decision: "
               "allow}\n"),
      "p.yaml:3:21: rule 'a': tools: not a tool pattern: 'bill*ing': '*' may only end a pattern "
      "(expected an exact tool name, a prefix ending in '*' such as billing.*, or *)\n"
      "p.yaml:3:33: rule 'a': tools: not a tool pattern: '*x': '*' may only end a pattern "
      "(expected an exact tool name, a prefix ending in '*' such as billing.*, or *)\n"
      "p.yaml:3:39: rule 'a': tools: not a tool pattern: an empty pattern (expected an exact "
      "tool name, a prefix ending in '*' such as billing.*, or *)\n"
      "p.yaml:3:43: rule 'a': tools: not a tool pattern: a pattern with spaces or control "
      "characters (expected an exact tool name, a prefix ending in '*' such as billing.*, or *)\n"
      "p.yaml:4:25: rule 'b': workflows: not a workflow pattern: 'a/b/c': more than one '/' "
      "(expected namespace/name, name, namespace/*, a name prefix ending in '*' such as "
      "billing/plan-*, or *)\n"
      "p.yaml:4:32: rule 'b': workflows: not a workflow pattern: '/x': the namespace before '/' "
      "is empty (expected namespace/name, name, namespace/*, a name prefix ending in '*' such as "
      "billing/plan-*, or *)\n"
      "p.yaml:4:36: rule 'b': workflows: not a workflow pattern: 'ns/': the name after '/' is "
      "empty (expected namespace/name, name, namespace/*, a name prefix ending in '*' such as "
      "billing/plan-*, or *)\n"
      "p.yaml:4:43: rule 'b': workflows: not a workflow pattern: '*/x': '*' may only end a "
      "pattern (expected namespace/name, name, namespace/*, a name prefix ending in '*' such as "
      "billing/plan-*, or *)\n"
      "p.yaml:4:50: rule 'b': workflows: not a workflow pattern: 'n*s/x': '*' may only end a "
      "pattern (expected namespace/name, name, namespace/*, a name prefix ending in '*' such as "
      "billing/plan-*, or *)");
}

TEST(PolicyLoadTest, Conditions) {
  EXPECT_EQ(Problems("version: 1\n"
                     "rules:\n"
                     "  - id: a\n"
                     "    when:\n"
                     "      - {path: /argument/price, gt: 1}\n"
                     "      - {path: /tool/name, eq: x}\n"
                     "      - {path: /workflow/version, eq: x}\n"
                     "      - {path: /arguments/price, gt: cheap}\n"
                     "      - {path: price, eq: 1}\n"
                     "      - {path: /arguments/x, eq: 1, ne: 2}\n"
                     "      - {path: /arguments/x, like: 1}\n"
                     "    decision: allow\n"),
            "p.yaml:8:9: rule 'a': when: gt: expected a number, found string\n"
            "p.yaml:9:9: rule 'a': when: path: 'price' is not a JSON pointer (expected e.g. "
            "/arguments/amount)\n"
            "p.yaml:10:9: rule 'a': when: expected exactly one operator, found 2 (expected a list "
            "of {path: /pointer, OP: value}, OP one of eq, ne, gt, gte, lt, lte, in, not_in, "
            "exists)\n"
            "p.yaml:11:30: rule 'a': when: unknown key 'like' (expected a list of {path: "
            "/pointer, OP: value}, OP one of eq, ne, gt, gte, lt, lte, in, not_in, exists)\n"
            "p.yaml:11:9: rule 'a': when: expected exactly one operator, found 0 (expected a "
            "list of {path: /pointer, OP: value}, OP one of eq, ne, gt, gte, lt, lte, in, "
            "not_in, exists)");
  // Paths are checked once the conditions themselves are well formed.
  EXPECT_EQ(Problems("version: 1\n"
                     "rules:\n"
                     "  - id: a\n"
                     "    when:\n"
                     "      - {path: /argument/price, gt: 1}\n"
                     "      - {path: /tool/name, eq: x}\n"
                     "      - {path: /workflow/version, eq: x}\n"
                     "      - {path: /workflow, exists: true}\n"
                     "      - {path: /arguments/a~1b/~0c, eq: 1}\n"
                     "    decision: allow\n"),
            "p.yaml:5:16: rule 'a': when: path '/argument/price' names nothing in the tool use "
            "(expected /arguments/..., /tool, /effect, /risk, /workflow/namespace, "
            "/workflow/name, /run_id, /task_path or /for_agent)\n"
            "p.yaml:6:16: rule 'a': when: path '/tool/name' points inside 'tool', which has no "
            "fields\n"
            "p.yaml:7:16: rule 'a': when: path '/workflow/version' names nothing in the tool use "
            "(expected /arguments/..., /tool, /effect, /risk, /workflow/namespace, "
            "/workflow/name, /run_id, /task_path or /for_agent)");
}

TEST(PolicyLoadTest, Budgets) {
  EXPECT_EQ(Problems("version: 1\n"
                     "budgets:\n"
                     "  steps: -1\n"
                     "  wall_clock: 0s\n"
                     "  tokens: lots\n"
                     "  cost: 1.2345678\n"
                     "  tool_calls: 1000001\n"
                     "workflows:\n"
                     "  a/b:\n"
                     "    budgets: {steps: 100001, wall_clock: soon, cost: -1}\n"
                     "  c: {budgets: [1]}\n"
                     "  d: 5\n"),
            "p.yaml:3:10: budgets.steps: '-1' is not a whole number (expected an integer from 0 "
            "to 100000)\n"
            "p.yaml:4:15: budgets.wall_clock: must be positive\n"
            "p.yaml:5:11: budgets.tokens: 'lots' is not a whole number (expected an integer from "
            "0 to 1000000000000)\n"
            "p.yaml:6:9: budgets.cost: '1.2345678' is not an amount (expected a number such as "
            "12 or 12.50, at most 6 decimals)\n"
            "p.yaml:7:15: budgets.tool_calls: 1000001 is out of range (expected an integer from "
            "0 to 1000000)\n"
            "p.yaml:10:22: workflow 'a/b': budgets.steps: 100001 is out of range (expected an "
            "integer from 0 to 100000)\n"
            "p.yaml:10:42: workflow 'a/b': budgets.wall_clock: 'soon' is not a duration "
            "(expected e.g. 500ms, 10s, 2m, 1h, 1d, 1m30s, or an integer of milliseconds)\n"
            "p.yaml:10:54: workflow 'a/b': budgets.cost: '-1' is not an amount (expected a "
            "number such as 12 or 12.50, at most 6 decimals)\n"
            "p.yaml:11:16: workflow 'c': budgets: expected a map of caps {steps, wall_clock, "
            "tokens, cost, tool_calls}, found a list\n"
            "p.yaml:12:6: workflow 'd': settings: expected a map {budgets}, found '5'");
  EXPECT_EQ(Problem("version: 1\nbudgets: {wall_clock: 366d}\n"),
            "p.yaml:2:23: budgets.wall_clock: '366d' is longer than the limit of 31536000000 ms");
  EXPECT_EQ(Problem("version: 1\nbudgets: {cost: 1000001}\n"),
            "p.yaml:2:17: budgets.cost: 1000001 is more than the limit of 1000000");
  EXPECT_EQ(Problems("version: 1\nbudgets: {steps: 100000, wall_clock: 365d, tokens: "
                     "1000000000000, cost: '1000000.000000', tool_calls: 1000000}\n"),
            "(loaded)");
}

TEST(PolicyLoadTest, WorkflowEntries) {
  EXPECT_EQ(Problems("version: 1\n"
                     "workflows:\n"
                     "  billing/*: {}\n"
                     "  a/b/c: {}\n"
                     "  [x]: {}\n"
                     "  ok: {}\n"
                     "  ok: {}\n"),
            "p.yaml:3:3: workflow 'billing/*': not a workflow name (expected namespace/name or "
            "name; patterns with '*' are for rules and kill switches)\n"
            "p.yaml:4:3: workflow 'a/b/c': not a workflow pattern: 'a/b/c': more than one '/' "
            "(expected namespace/name, name, namespace/*, a name prefix ending in '*' such as "
            "billing/plan-*, or *)\n"
            "p.yaml:5:3: workflows: keys must be strings, found a list\n"
            "p.yaml:7:3: workflows: 'ok' appears twice");
  EXPECT_EQ(Problem("version: 1\nworkflows: [a]\n"),
            "p.yaml:2:12: workflows: expected a map of workflow name to settings, found a list");
}

TEST(PolicyLoadTest, ApprovalsAndKillSwitch) {
  EXPECT_EQ(Problems("version: 1\n"
                     "approvals:\n"
                     "  expires_after: 31d\n"
                     "  approvers: [alice, '', [bob]]\n"
                     "kill_switch:\n"
                     "  all: maybe\n"
                     "  workflows: [a/b/c]\n"
                     "  runs: ['bad id', x]\n"
                     "  reason: ''\n"
                     "rules:\n"
                     "  - {id: r, decision: require_approval, approval: {expires_after: 0ms}}\n"),
            "p.yaml:3:18: approvals.expires_after: '31d' is longer than the limit of 2592000000 "
            "ms\n"
            "p.yaml:4:22: approvals.approvers: must not be empty\n"
            "p.yaml:4:26: approvals.approvers: expected a string, found a list\n"
            "p.yaml:6:8: kill_switch.all: expected true or false, found 'maybe'\n"
            "p.yaml:7:15: kill_switch.workflows: not a workflow pattern: 'a/b/c': more than one "
            "'/' (expected namespace/name, name, namespace/*, a name prefix ending in '*' such "
            "as billing/plan-*, or *)\n"
            "p.yaml:8:10: kill_switch.runs: run id has character ' ' at offset 3; allowed: "
            "letters, digits and . _ - : @\n"
            "p.yaml:9:11: kill_switch.reason: must not be empty\n"
            "p.yaml:11:67: rule 'r': approval.expires_after: must be positive");
}

TEST(PolicyLoadTest, TextsAreBounded) {
  const std::string long_reason(4097, 'r');
  EXPECT_EQ(Problem("version: 1\nrules: [{id: a, decision: deny, reason: " + long_reason + "}]\n"),
            "p.yaml:2:41: rule 'a': reason: 4097 bytes is more than the limit of 4096");
  EXPECT_EQ(Problem("version: 1\nname: " + std::string(129, 'n') + "\n"),
            "p.yaml:2:7: name: 129 bytes is more than the limit of 128");
}

TEST(PolicyLoadTest, AllProblemsAtOnceAndTheRestCounted) {
  std::string yaml = "version: 1\nrules:\n";
  for (int i = 0; i < 25; ++i) yaml += "  - {id: r" + std::to_string(i) + ", decision: nope}\n";
  const std::string problems = Problems(yaml);
  const size_t lines = std::count(problems.begin(), problems.end(), '\n') + 1;
  EXPECT_EQ(lines, 21u) << problems;
  EXPECT_EQ(problems.substr(0, problems.find('\n')),
            "p.yaml:3:24: rule 'r0': decision: unknown value 'nope' (expected allow, "
            "require_approval, deny)");
  EXPECT_EQ(problems.substr(problems.rfind('\n') + 1), "p.yaml: and 5 more problems");
}

// ---- bad input: hostile sizes and shapes never crash ----

TEST(PolicyLoadTest, TooLarge) {
  std::string yaml = "version: 1\nname: x\n# " + std::string(limits::policy_bytes_max, 'x') + "\n";
  EXPECT_EQ(Problem(yaml), "p.yaml: policy of " + std::to_string(yaml.size()) +
                               " bytes is more than the limit of " +
                               std::to_string(limits::policy_bytes_max));
}

TEST(PolicyLoadTest, TooManyRules) {
  std::string yaml = "version: 1\nrules:\n";
  for (size_t i = 0; i <= limits::policy_rules_max; ++i) {
    yaml += "- {id: r" + std::to_string(i) + ", decision: allow}\n";
  }
  EXPECT_EQ(Problem(yaml), "p.yaml:3:1: rules: 10001 entries is more than the limit of 10000");
  // Exactly at the limit loads, and the last rule is reachable.
  yaml = "version: 1\nrules:\n";
  for (size_t i = 0; i < limits::policy_rules_max; ++i) {
    yaml += "- {id: r" + std::to_string(i) + ", tools: [t" + std::to_string(i) +
            "], decision: allow}\n";
  }
  auto policy = Load(yaml);
  EXPECT_EQ(policy->rule_count(), limits::policy_rules_max);
  EXPECT_EQ(Decider(*policy, Use("a", "b", "t9999")), "r9999");
}

TEST(PolicyLoadTest, TooManySelectorsAndConditions) {
  std::string tools;
  for (size_t i = 0; i <= limits::policy_selectors_max; ++i) tools += "t" + std::to_string(i) + ",";
  EXPECT_EQ(Problem("version: 1\nrules: [{id: a, tools: [" + tools + "], decision: allow}]\n"),
            "p.yaml:2:24: rule 'a': tools: 1001 entries is more than the limit of 1000");
  std::string when;
  for (size_t i = 0; i <= limits::policy_conditions_per_rule_max; ++i) {
    when += "{path: /tool, ne: x" + std::to_string(i) + "},";
  }
  EXPECT_EQ(Problem("version: 1\nrules: [{id: a, when: [" + when + "], decision: allow}]\n"),
            "p.yaml:2:23: rule 'a': when: 33 conditions is more than the limit of 32");
}

TEST(PolicyLoadTest, DeepNesting) {
  // Deeper than yaml-cpp's parser goes: a syntax error with a position, not a crash.
  const std::string deep =
      "version: 1\nname: " + std::string(100'000, '[') + std::string(100'000, ']') + "\n";
  const std::string problem = Problem(deep);
  EXPECT_EQ(problem.rfind("p.yaml:2:", 0), 0u) << problem;
  EXPECT_NE(problem.find("invalid YAML"), std::string::npos) << problem;
  // Within the parser's depth: refused where a scalar is expected.
  const std::string nested =
      "version: 1\nrules: [{id: a, decision: allow, when: [{path: /tool, eq: " +
      std::string(100, '[') + std::string(100, ']') + "}]}]\n";
  // Reported where the operand gets too deep (16 levels in).
  EXPECT_EQ(Problem(nested), "p.yaml:2:75: rule 'a': when.eq: nested too deeply");
}

TEST(PolicyLoadTest, AliasesThatExpandWithoutBound) {
  // Each level multiplies the one below by ten: 10^9 nodes if expanded.
  std::string yaml = "version: 1\nx0: &a0 [v, v, v, v, v, v, v, v, v, v]\n";
  for (int i = 1; i < 9; ++i) {
    const std::string previous = "*a" + std::to_string(i - 1);
    yaml += "x" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) yaml += (j ? ", " : "") + previous;
    yaml += "]\n";
  }
  yaml += "rules: [{id: a, decision: allow, when: [{path: /tool, in: *a8}]}]\n";
  EXPECT_EQ(Problem(yaml),
            "p.yaml:1:1: the document expands (through YAML aliases) to more than 1000000 nodes");
  // An alias to a node that contains it.
  EXPECT_EQ(Problem("version: 1\nrules: &r [{id: a, decision: allow, when: [{path: /tool, in: "
                    "*r}]}]\n"),
            "p.yaml:1:1: the document expands (through YAML aliases) to more than 1000000 nodes");
  // A few aliases are fine.
  auto policy = Load(
      "version: 1\n"
      "rules:\n"
      "  - {id: a, tools: &billing [billing.a, billing.b], decision: allow, effect: read}\n"
      "  - {id: b, tools: *billing, decision: require_approval}\n");
  EXPECT_EQ(Decider(*policy, Use("w", "f", "billing.b")), "b");
}

TEST(PolicyLoadTest, NonStringKeysAndOddScalars) {
  EXPECT_EQ(Problems("version: 1\n"
                     "? [a]\n"
                     ": 1\n"
                     "rules:\n"
                     "  - {id: a, decision: allow, ? {x: 1} : 2}\n"),
            "p.yaml:2:3: policy: keys must be strings, found a list\n"
            "p.yaml:5:32: rule 'a': rule: keys must be strings, found a map");
  // Binary and odd UTF-8 in names is data, not a crash.
  auto policy = Load("version: 1\nrules: [{id: a, tools: [\"\\xff\\u00e9*\"], decision: deny}]\n");
  EXPECT_EQ(Decider(*policy, Use("w", "f", "\xc3\xbf\xc3\xa9tool")), "a");
}

TEST(PolicyLoadTest, MutatedPoliciesLoadOrFailCleanly) {
  const std::string valid =
      "version: 1\n"
      "name: back-office\n"
      "defaults: {read: allow, write: deny}\n"
      "approvals: {expires_after: 24h, approvers: [alice]}\n"
      "budgets: {steps: 200, wall_clock: 2h, tokens: 100000, cost: 2.50, tool_calls: 50}\n"
      "workflows:\n"
      "  billing/plan-change: {budgets: {cost: 1.00}}\n"
      "kill_switch: {all: false, workflows: [ops/*], runs: [r1], reason: x}\n"
      "rules:\n"
      "  - id: small\n"
      "    workflows: [billing/plan-change]\n"
      "    tools: [billing.*]\n"
      "    effect: write\n"
      "    risk: [low, medium]\n"
      "    agent_tools: false\n"
      "    when: [{path: /arguments/price, lte: 500}, {path: /arguments/plan, in: [a, b]}]\n"
      "    decision: require_approval\n"
      "    approval: {expires_after: 2h, approvers: [carol]}\n"
      "  - {id: rest, decision: deny, reason: no}\n";
  ASSERT_EQ(Problems(valid), "(loaded)");
  Random random(::cairn::testing::TestSeed());
  static constexpr char kBytes[] = "{}[]:,-&*!|>'\"#%@ \n\t/.*0123456789abcxyz";
  for (int i = 0; i < 2000; ++i) {
    std::string text = valid;
    const uint64_t edits = random.Uniform(4) + 1;
    for (uint64_t e = 0; e < edits; ++e) {
      const size_t at = random.Uniform(text.size());
      const char byte = kBytes[random.Uniform(sizeof kBytes - 1)];
      switch (random.Uniform(3)) {
        case 0:
          text[at] = byte;
          break;
        case 1:
          text.insert(at, 1, byte);
          break;
        default:
          text.erase(at, 1);
      }
    }
    auto policy = Policy::Load(text, "p.yaml");
    if (!policy.ok()) {
      ASSERT_EQ(policy.status().code(), StatusCode::kInvalidArgument) << text;
      ASSERT_EQ(policy.status().message().rfind("p.yaml", 0), 0u) << text;
      continue;
    }
    // Whatever loaded answers questions.
    (void)(*policy)->Evaluate(PlanChange({{"price", 100}, {"plan", "a"}}));
    (void)(*policy)->BudgetsFor("billing", "plan-change");
  }
}

}  // namespace
}  // namespace cairn::policy
