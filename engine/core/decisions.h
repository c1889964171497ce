// Between the interpreter's decision commands and the agents that answer them: the agent
// request a DecisionCommand stands for, and the agent_decided event that records an
// outcome. One definition for the engine (engine.cc) and for whoever asks an agent outside
// it (counterfactual replay, `cairn replay --agent`), so that both ask the same question
// and record the answer the same way.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "agent/agent.h"
#include "engine/core/interpreter.h"
#include "engine/definition/definition.h"
#include "storage/event.h"

namespace cairn::engine {

// The request `command` asks of an agent in run `run_id` of `definition`: goal, options,
// context, the offered read tools and the limits of the command's request JSON (what is
// absent or mistyped gets its default: limits::agent_steps_default,
// limits::agent_timeout_ms_default, no token or cost cap; options that are not strings
// are left out — the interpreter never makes such a command).
agent::DecisionRequest MakeDecisionRequest(const std::string& run_id, const Definition& definition,
                                           const DecisionCommand& command);

// The outcome of a decision that no configured agent could take: kUnknownAgent, naming
// `name` (empty: "no default agent is configured").
agent::DecisionOutcome UnknownAgentOutcome(const std::string& name);

// The agent_decided event recording `outcome` for `request`: the outcome's fields, the
// request's options, goal and decision key, and the SHA-256 of each transcript (as
// compact JSON). `blobs`, when not null, receives the two transcripts' texts (request,
// then response) for the blob store.
storage::AgentDecided MakeAgentDecided(const agent::DecisionOutcome& outcome,
                                       const agent::DecisionRequest& request,
                                       std::vector<std::string>* blobs);

}  // namespace cairn::engine
