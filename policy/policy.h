// The policy: operator-owned rules that authorize every tool call before it runs.
//
// A policy is a YAML file, separate from workflow definitions (see policy/README.md for
// the format). It is default-deny: a write tool that no rule allows never runs. It says,
// per workflow, tool, effect and risk level (and conditions on the call's arguments),
// whether a call is allowed, needs a human approval, or is denied; the budget caps of each
// run; and static kill switches.
//
// A run records the hash of the policy it is governed by when it starts; verdicts are
// pure functions of (policy, question), so that replay re-evaluates them exactly and
// counterfactual replay can ask another policy the same questions.
//
// Thread-safety: a loaded Policy is immutable and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/condition.h"
#include "base/json.h"
#include "base/sha256.h"
#include "base/status.h"
#include "storage/event.h"

namespace cairn::policy {

enum class Decision : uint8_t { kAllow = 0, kRequireApproval, kDeny };
std::string_view DecisionName(Decision decision);  // "allow" | "require_approval" | "deny"

// Reason codes of verdicts (stable strings; recorded in policy_verdict events).
namespace reason {
inline constexpr const char* kAllowedByRule = "allowed_by_rule";
inline constexpr const char* kApprovalRequiredByRule = "approval_required_by_rule";
inline constexpr const char* kDeniedByRule = "denied_by_rule";
inline constexpr const char* kAllowedByDefault = "allowed_by_default";
inline constexpr const char* kApprovalRequiredByDefault = "approval_required_by_default";
inline constexpr const char* kDeniedByDefault = "denied_by_default";
inline constexpr const char* kKillSwitch = "kill_switch_engaged";
inline constexpr const char* kBudgetExhausted = "budget_exhausted";
}  // namespace reason

// A question to the policy: may this run call this tool with these arguments?
struct ToolUse {
  std::string workflow_namespace;
  std::string workflow_name;
  std::string run_id;
  std::string task_path;
  // A catalog tool's name, or the inline kind ("http", "mcp", "shell").
  std::string tool;
  storage::EffectKind effect = storage::EffectKind::kWrite;
  storage::RiskLevel risk = storage::RiskLevel::kCritical;
  // The call's evaluated arguments. Rules' `when` conditions read the document
  //   {arguments, tool, effect, risk, workflow: {namespace, name}, run_id, task_path,
  //    for_agent}
  // (effect and risk by name: "write", "high").
  Json arguments;
  // True when the tool is offered to an agent as one it may call while deciding.
  bool for_agent = false;
};

struct Verdict {
  Decision decision = Decision::kDeny;
  // The matching rule's id; "defaults.read" / "defaults.write" when no rule matched;
  // "kill_switch" for a static kill switch.
  std::string rule_id;
  std::string reason_code;  // one of reason::*
  std::string detail;       // for people: which rule, which condition, why
  // kRequireApproval: how long the approval request stays open (then: denied, as
  // approval_expired), and who may answer it (empty: anyone with the approver role).
  uint64_t approval_expires_after_ms = 0;
  std::vector<std::string> approvers;
};

// Budget caps of one run; 0 means no cap in that dimension.
struct BudgetCaps {
  uint64_t steps = 0;       // tasks entered
  uint64_t wall_ms = 0;     // from the run's start
  uint64_t tokens = 0;      // agent tokens (prompt + completion)
  int64_t cost_micros = 0;  // money, in millionths of the currency unit
  uint64_t tool_calls = 0;  // effects started

  storage::BudgetAmounts ToAmounts() const;
};

class Policy {
 public:
  // Parses and checks a policy. `source_name` (a file name) prefixes every error:
  // kInvalidArgument listing every problem as "FILE:LINE:COL: SUBJECT: what is wrong
  // (expected ...)" (base/yaml_config.h). Bounded: limits on bytes, rules, conditions.
  static Result<std::shared_ptr<const Policy>> Load(std::string_view yaml,
                                                    std::string_view source_name);
  // Reads and loads a file (kNotFound when missing; kInvalidArgument when unreadable or
  // larger than limits::policy_bytes_max). Errors are prefixed with `path`.
  static Result<std::shared_ptr<const Policy>> LoadFile(const std::string& path);
  // The built-in policy in force when an operator has applied none: reads are allowed,
  // writes are denied, no budget caps, no kill switch. Its text is a valid policy file.
  static std::shared_ptr<const Policy> Default();

  // SHA-256 of the policy's text as loaded (what runs record; the text is stored by it).
  const Sha256& hash() const;
  const std::string& text() const;
  const std::string& name() const;  // the file's `name`, or "" when it has none
  size_t rule_count() const;        // the number of rules in the file

  // The verdict for a tool use. Rules are tried in file order; the first whose selectors
  // (workflows, tools, effect, risk, for_agent) and `when` conditions all match decides.
  // Without a match the defaults decide (read: allow, write: deny unless the file says
  // otherwise). A static kill switch covering the workflow or run denies everything.
  // A use whose risk is kUnspecified is judged as kCritical. For kRequireApproval the
  // verdict carries the approval settings: the rule's `approval`, else the file's
  // `approvals`, else limits::approval_expiry_ms_default and anyone, field by field.
  // Pure and deterministic: the same policy and use always give the same verdict.
  Verdict Evaluate(const ToolUse& use) const;

  // The caps a new run of this workflow gets: the file's `budgets`, with the dimensions
  // that the workflow's own entry sets (looked up as "ns/name", then as "name") replaced.
  BudgetCaps BudgetsFor(std::string_view workflow_namespace, std::string_view workflow_name) const;

  // True (and `why`, when not null, set to a sentence naming what is covered and the
  // switch's reason) when a static kill switch of this file covers the run: `all`, a
  // pattern of `workflows` matching the workflow, or `run_id` listed in `runs`.
  bool KillSwitchCovers(std::string_view workflow_namespace, std::string_view workflow_name,
                        std::string_view run_id, std::string* why) const;

  class Impl;
  explicit Policy(std::unique_ptr<Impl> impl);
  ~Policy();

 private:
  std::unique_ptr<Impl> impl_;
};

// Which budget dimension a ledger would exceed, if any: "steps", "wall_clock", "tokens",
// "cost", "tool_calls" (checked in that order; the first exceeded is returned). `spent`
// and `reserved` are the run's ledger; `more` what is about to be reserved or charged. A
// dimension is exceeded when its cap is not 0 and spent + reserved + more > cap, computed
// without overflow. Pure.
std::optional<std::string> ExceededDimension(const storage::BudgetAmounts& caps,
                                             const storage::BudgetAmounts& spent,
                                             const storage::BudgetAmounts& reserved,
                                             const storage::BudgetAmounts& more);

}  // namespace cairn::policy
