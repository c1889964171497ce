// The `scripted` agent: rules over the decision request, for demos and tests.
//
// Keys in the agents file (agent/config.h):
//   kind: scripted
//   call_tools:                       # optional: read tools called first, in order
//     - {tool: crm.get_usage, arguments: {account: acme}}
//   rules:                            # optional; evaluated in order, the first match wins
//     - when: [{path: /context/team_size, gte: 10}]     # base/condition.h; [] always holds
//       option: business
//       rationale: Teams of ten or more need shared billing.
//       confidence: 0.9               # optional, in [0, 1]
//   otherwise: {option: starter, rationale: Small teams start small.}   # optional
//
// Conditions read the document
//   {"goal", "options", "context", "run_id", "task_path", "workflow",
//    "tool_results": [{"tool", "result"} or {"tool", "error"}, ...]}
// where tool_results holds the answers of call_tools, in order (a tool that failed gives
// {"tool", "error": "code: message"}; the decision goes on).
//
// One decision is one step, zero tokens, a known cost of 0 and one call; the model is
// "scripted". When no rule matches and there is no `otherwise`, the decision fails with
// kMalformedAnswer ("no rule matched and there is no 'otherwise'"). A rule's option is not
// checked against the allowlist here: Decide does it, fail-closed, like for every agent.
// A tool in call_tools that the request does not offer fails the decision with
// kToolNotAllowed (the Session refuses it).
//
// Thread-safe: the agent is immutable once made.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "base/condition.h"
#include "base/yaml_config.h"

namespace cairn::agent {

struct ScriptedAnswer {
  std::string option;
  std::string rationale;
  std::optional<double> confidence;
};

struct ScriptedRule {
  std::vector<Condition> when;
  ScriptedAnswer answer;
};

struct ScriptedToolCall {
  std::string tool;
  Json arguments = Json::object();
};

struct ScriptedConfig {
  std::vector<ScriptedToolCall> call_tools;
  std::vector<ScriptedRule> rules;
  std::optional<ScriptedAnswer> otherwise;
};

// Reads a `scripted` agent's keys (`kind` included in the known keys; others are refused
// by name). nullopt after adding problems to ctx.
std::optional<ScriptedConfig> ParseScriptedConfig(const YamlContext& ctx, const YAML::Node& node);

std::shared_ptr<Agent> MakeScriptedAgent(std::string name, ScriptedConfig config);

}  // namespace cairn::agent
