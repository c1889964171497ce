// The agents file: which agents exist and how each is reached. Operators write it; code
// never hard-codes an agent.
//
//   default: planner              # the agent `call: agent` uses without with.agent
//   agents:
//     planner:
//       kind: scripted
//       rules:
//         - when: [{path: /context/team_size, gte: 10}]
//           option: business
//           rationale: Teams of ten or more need shared billing.
//           confidence: 0.9
//       otherwise: {option: starter, rationale: Small teams start small.}
//     gpt:
//       kind: openai              # see agent/openai_agent.h for its keys
//       base_url: http://127.0.0.1:11434/v1
//       model: llama3.1
//     triage:
//       kind: command
//       command: ./agents/triage.py "$@"    # shell line; a path is resolved against this file
//       arguments: [--strict]               # $1, $2, ... of the line
//       environment: {MODE: prod}
//       timeout: 20s                        # optional: at most this per run of the program
//
// Errors name file, line, column and the agent ("agents.yaml:7:9: agent 'gpt': model:
// must not be empty"), every problem at once (base/yaml_config.h).
//
// Rules: the file is at most limits::agents_file_bytes_max bytes and defines at most
// limits::agents_max agents; the top-level keys are `default` and `agents` (both optional;
// an empty file is an empty registry); agent names are 1 to 128 of [A-Za-z0-9_.:-];
// `kind` is openai, command or scripted (`recorded` agents are made by replay, in code);
// each kind refuses keys it does not know, by name (agent/scripted_agent.h,
// agent/command_agent.h, agent/openai_agent.h); `default` must name a defined agent.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "agent/agent.h"
#include "base/sha256.h"
#include "base/status.h"

namespace cairn::agent {

// Lifecycle: loaded (or made empty and filled with Add) at start-up, then shared. Load,
// LoadFile and Add are not thread-safe; Find and the accessors are, once filling is done.
class AgentRegistry {
 public:
  // An empty registry (no agents, no default, the hash of "").
  AgentRegistry();

  // Parses an agents file. `source_name` prefixes errors; relative program paths resolve
  // against `base_dir` (empty: kept as written). kInvalidArgument listing the problems.
  static Result<std::shared_ptr<AgentRegistry>> Load(std::string_view yaml,
                                                     std::string_view source_name,
                                                     const std::string& base_dir = "");
  static Result<std::shared_ptr<AgentRegistry>> LoadFile(const std::string& path);

  // Adds an agent made in code (tests, the recorded agent). kAlreadyExists for a name in
  // use; kInvalidArgument for a bad name.
  Status Add(std::shared_ptr<Agent> agent);
  // Null when unknown. `name` empty: the default agent (null when there is none).
  std::shared_ptr<Agent> Find(std::string_view name) const;
  const std::string& default_name() const { return default_; }
  void set_default_name(std::string name) { default_ = std::move(name); }
  // SHA-256 of the file's text (empty registry: of ""), recorded in run_started.
  const Sha256& hash() const { return hash_; }
  void set_hash(const Sha256& hash) { hash_ = hash; }
  size_t size() const { return agents_.size(); }

 private:
  std::map<std::string, std::shared_ptr<Agent>, std::less<>> agents_;
  std::string default_;
  Sha256 hash_;
};

}  // namespace cairn::agent
