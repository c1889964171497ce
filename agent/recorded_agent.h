// The `recorded` agent: what replay substitutes for a real agent. It answers each decision
// with the outcome recorded for its decision key, so that a replayed run sees exactly
// the decisions the original run saw, and no model or program is asked again.
//
// Made in code only (an agents file cannot name it). The replayer registers one per agent
// name found in the recorded history, under that same name, so that Decide's outcome
// names the original agent.
//
// Propose, for the request's decision_key:
//   - no recorded outcome -> kAgentError ("no recorded decision for key ...");
//   - a recorded decision that succeeded -> its option, rationale and confidence, with its
//     model, steps and usage restored as recorded (Session::Restore) and its transcripts;
//   - a recorded decision that failed -> the same reason and detail, with the same model,
//     steps, usage and transcripts.
// Decide then validates the proposal as it validates every agent's (the same request gives
// the same verdict). Only duration_ms differs from the record: it is measured.
//
// Thread-safe when `lookup` is.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent.h"

namespace cairn::agent {

using DecisionLookup =
    std::function<std::optional<DecisionOutcome>(const std::string& decision_key)>;

class RecordedAgent final : public Agent {
 public:
  RecordedAgent(std::string name, DecisionLookup lookup)
      : name_(std::move(name)), lookup_(std::move(lookup)) {}

  const std::string& name() const override { return name_; }
  std::string_view kind() const override { return "recorded"; }
  std::optional<Proposal> Propose(Session& session) override;

 private:
  const std::string name_;
  const DecisionLookup lookup_;
};

}  // namespace cairn::agent
