// Asks agents for decisions outside an engine: counterfactual replay (`cairn replay
// --agent NAME`) asks another agent at each decision point of a recorded run, with the
// request the run made. Model and program agents need HTTP and processes: the decider
// owns the engine's HTTP and shell executors (engine/core/executors.h), on one I/O thread
// of its own. Read-tool calls the agent makes while deciding go to the `tools` callback
// given at creation (the CLI answers each with an error: no tool runs in a replay).
//
// Nothing is recorded: Decide returns the agent_decided event the engine would record
// (the transcripts' hashes only; their texts are dropped).
//
// Lifecycle: Create, Decide any number of times, destroy (which shuts the executors down,
// answering calls in flight, and joins the I/O thread). Decide is thread-safe as far as
// the agent is (agents are, agent/agent.h); it blocks the calling thread, which must not
// be the decider's own I/O thread.
#pragma once

#include <memory>
#include <string>

#include "agent/agent.h"
#include "agent/executor_io.h"
#include "base/clock.h"
#include "base/status.h"
#include "engine/core/interpreter.h"
#include "engine/definition/definition.h"
#include "storage/event.h"

namespace cairn::engine {

class StandaloneDecider {
 public:
  // `clock` bounds each decision's time (Decide's timeout); not owned, must outlive the
  // decider. `verify_tls_peers` as EngineOptions. Errors: the executors' set-up (kInternal
  // for TLS).
  static Result<std::unique_ptr<StandaloneDecider>> Create(const Clock& clock,
                                                           agent::ToolCaller tools,
                                                           bool verify_tls_peers = true);
  ~StandaloneDecider();
  StandaloneDecider(const StandaloneDecider&) = delete;
  StandaloneDecider& operator=(const StandaloneDecider&) = delete;

  // Asks `agent` what `command` of run `run_id` (of `definition`) asks, within the
  // request's bounds (agent::Decide: fail-closed, never throws), and returns what the
  // engine would record as agent_decided. Failures of the agent are outcomes (their
  // reason_code), never errors.
  storage::AgentDecided Decide(agent::Agent& agent, const std::string& run_id,
                               const Definition& definition, const DecisionCommand& command);

 private:
  struct Impl;
  explicit StandaloneDecider(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::engine
