// The `command` agent: any program decides. The decision request goes to its stdin as one
// JSON object, and its answer comes back on stdout as one JSON object.
//
// Keys in the agents file (agent/config.h):
//   kind: command
//   command: ./agents/triage.py "$@"   # a shell command line (/bin/sh -c); a path as its first
//                                  # word is resolved against the agents file's folder and
//                                  # must be an executable file
//   arguments: [--strict]          # optional: $1, $2, ... of the command line (never
//                                  # parsed by the shell), as for catalog command tools:
//                                  # the line must use them (command: ./triage.py "$@")
//   environment: {MODE: prod}      # optional: added to the engine's environment
//   timeout: 20s                   # optional: at most this per run (never more than the
//                                  # decision's time left)
//
// stdin (compact JSON, one object):
//   {"goal", "options": [...], "context": {...},
//    "tools": [{"name", "description", "input_schema"}],   // what was offered (a command
//                                                          // agent cannot call them)
//    "run_id", "task_path", "workflow", "decision_key",
//    "limits": {"max_steps", "timeout_ms"}}                // timeout_ms: this run's time
// stdout (one JSON object, at most limits::agent_answer_bytes_max bytes):
//   {"option": "...", "rationale": "...", "confidence": 0.8,          // confidence optional
//    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0012},  // optional
//    "model": "..."}                                                  // optional
// Unknown keys in the answer are ignored. `cost` is in decimal units of money; when the
// answer has no usage.cost the cost is unknown, which fails a decision that has a cost
// cap (a program that spends nothing says "usage": {"cost": 0}).
//
// Outcomes: one run is one step and one call. A non-zero exit -> kAgentError (the detail
// has the exit code and the tail of stderr); stdout over the bound -> kAnswerTooLarge;
// empty stdout, not JSON, not an object, wrong types -> kMalformedAnswer; the program
// outlives its time -> kTimeout (its process group is killed by the executor); it cannot
// be started or the I/O refuses it -> kAgentError (kAgentUnavailable when the I/O says the
// failure is transient). The model is the answer's `model`, else "command".
//
// Thread-safe: the agent is immutable once made.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "base/yaml_config.h"

namespace cairn::agent {

struct CommandAgentConfig {
  CommandSpec command;
  std::optional<std::chrono::milliseconds> timeout;  // per run; nullopt: the decision's
};

// Reads a `command` agent's keys (`kind` included in the known keys; others are refused
// by name). nullopt after adding problems to ctx.
std::optional<CommandAgentConfig> ParseCommandConfig(const YamlContext& ctx,
                                                     const YAML::Node& node);

std::shared_ptr<Agent> MakeCommandAgent(std::string name, CommandAgentConfig config);

// The JSON object the program reads on stdin, given this run's time.
Json CommandAgentInput(const DecisionRequest& request, std::chrono::milliseconds timeout);

}  // namespace cairn::agent
