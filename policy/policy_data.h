// Internal to policy/: a policy file as checked values, and the selectors' matching.
//
// policy/parse.cc builds a PolicyData from YAML (every field already validated);
// policy/policy.cc answers questions with it. Everything here is a plain value: pure,
// no I/O, immutable once built, safe to share between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/condition.h"
#include "policy/policy.h"
#include "storage/event.h"

namespace cairn::policy {

// A workflow selector, as written in `workflows:` lists of rules and kill switches:
//   "ns/name"   that workflow            "name"   that name in any namespace
//   "ns/pre*"   names starting with pre  "pre*"   names starting with pre, any namespace
//   "ns/*"      every workflow of ns     "*"      every workflow
struct WorkflowPattern {
  std::string text;        // as written, for messages
  std::string namespace_;  // empty: any namespace
  std::string name;        // the exact name, or the prefix when `prefix`
  bool prefix = false;

  bool Matches(std::string_view workflow_namespace, std::string_view workflow_name) const;
};

// A tool selector: an exact name, a prefix ending in '*' ("billing.*"), or "*".
struct ToolPattern {
  std::string text;  // the exact name, or the prefix when `prefix`
  bool prefix = false;

  bool Matches(std::string_view tool) const;
};

// Parses a selector; nullopt and `why` set ("... (expected ...)") when malformed.
std::optional<WorkflowPattern> ParseWorkflowPattern(std::string_view text, std::string* why);
std::optional<ToolPattern> ParseToolPattern(std::string_view text, std::string* why);

// Approval settings; an unset field is inherited (rule, then file, then limits).
struct ApprovalSettings {
  std::optional<uint64_t> expires_after_ms;
  std::optional<std::vector<std::string>> approvers;
};

// Budget caps as written; an unset dimension is inherited from the file's `budgets`.
struct BudgetSettings {
  std::optional<uint64_t> steps;
  std::optional<uint64_t> wall_ms;
  std::optional<uint64_t> tokens;
  std::optional<int64_t> cost_micros;
  std::optional<uint64_t> tool_calls;
};

struct Rule {
  std::string id;
  std::string description;
  std::vector<WorkflowPattern> workflows;  // empty: every workflow
  std::vector<ToolPattern> tools;          // empty: every tool
  std::optional<storage::EffectKind> effect;
  uint32_t risk_mask = 0;           // bit (1 << RiskLevel); 0: every level
  std::optional<bool> agent_tools;  // ToolUse::for_agent must equal it
  std::vector<Condition> when;      // over the tool use's document
  std::string when_text;            // `when` as verdicts show it, built once at load
  Decision decision = Decision::kDeny;
  std::string reason;
  ApprovalSettings approval;
};

struct KillSwitch {
  bool all = false;
  std::vector<WorkflowPattern> workflows;
  std::vector<std::string> runs;
  std::string reason;
};

struct PolicyData {
  std::string name;
  Decision default_read = Decision::kAllow;
  Decision default_write = Decision::kDeny;
  ApprovalSettings approvals;
  BudgetSettings budgets;
  // Keyed by "ns/name" or "name", as written.
  std::map<std::string, BudgetSettings, std::less<>> workflow_budgets;
  KillSwitch kill_switch;
  std::vector<Rule> rules;
};

}  // namespace cairn::policy
