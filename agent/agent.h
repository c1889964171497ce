// Bounded agents: decision makers consulted at the uncertain steps of a workflow.
//
// An agent gets a goal, a context and an allowlist of options, may call a few read-only
// tools, and proposes one option with a rationale. It never touches state: the workflow
// owns every side effect. The runtime around every agent (Decide) is fail-closed: an
// option outside the allowlist, a malformed or oversized answer, a call to a tool that was
// not offered, a step, time, token or cost overrun — each ends the decision with a typed
// reason code instead of an option, and the workflow task faults with it.
//
// Agent kinds (agent/config.h reads them from an operator's agents file):
//   openai    any OpenAI-compatible chat-completions endpoint (agent/openai_agent.h)
//   command   any program: the decision request as JSON on stdin, the answer on stdout
//   scripted  rules over the request (for demos and tests)
//   recorded  returns the decisions of a recorded run (replay)
//
// Thread-safety: an Agent is shared by all runs: Propose is called concurrently from
// several threads and must be thread-safe. A Session belongs to one decision.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/json.h"
#include "base/status.h"

namespace cairn::agent {

// Why a decision ended. kDecided is the only success.
enum class Reason : uint8_t {
  kDecided = 0,
  kOptionNotAllowed,     // the answer named an option outside the allowlist
  kMalformedAnswer,      // not the expected JSON shape (no option, wrong types, bad JSON)
  kAnswerTooLarge,       // the answer (or a rationale) is over its size bound
  kToolNotAllowed,       // asked for a tool that was not offered (or not read-only)
  kMaxStepsExceeded,     // needed more model turns than max_steps
  kTimeout,              // the decision's time ran out
  kTokenBudgetExceeded,  // used more tokens than the decision's budget
  kCostBudgetExceeded,   // cost more than the decision's budget
  kAgentUnavailable,     // could not reach the agent (after retries): 429/5xx/transport
  kAgentError,           // the agent failed otherwise (4xx, a program's non-zero exit)
  kUnknownAgent,         // no configured agent by that name
};
// "decided", "option_not_allowed", "malformed_answer", "answer_too_large",
// "tool_not_allowed", "max_steps_exceeded", "timeout", "token_budget_exceeded",
// "cost_budget_exceeded", "agent_unavailable", "agent_error", "unknown_agent".
std::string_view ReasonCode(Reason reason);
std::optional<Reason> ReasonFromCode(std::string_view code);

// A read tool an agent may call while deciding.
struct ToolOffer {
  std::string name;
  std::string description;
  Json input_schema = Json::object();  // JSON Schema of its arguments (may be {})
};

struct DecisionLimits {
  uint32_t max_steps = 4;                     // model turns (>= 1)
  std::chrono::milliseconds timeout{60'000};  // the whole decision
  uint64_t max_tokens = 0;                    // prompt + completion; 0: no cap
  int64_t max_cost_micros = 0;                // 0: no cap
};

struct DecisionRequest {
  std::string run_id;
  std::string task_path;
  std::string workflow;      // "namespace/name:version", for prompts and logs
  std::string decision_key;  // RUN_ID#N: stable across a crash and re-ask
  std::string goal;
  std::vector<std::string> options;  // the allowlist: non-empty, unique
  Json context = Json::object();
  std::vector<ToolOffer> tools;
  DecisionLimits limits;
};

// Sums that stop at the type's bounds instead of wrapping (usage from outside is untrusted).
uint64_t SaturatingAdd(uint64_t a, uint64_t b);
int64_t SaturatingAdd(int64_t a, int64_t b);

struct Usage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  int64_t cost_micros = 0;
  bool cost_known = true;  // false: the cost could not be measured (never counted as zero)
  uint32_t calls = 0;      // model calls (or program runs) made

  // Saturating: a server reporting absurd counts cannot wrap past a token cap.
  uint64_t tokens() const { return SaturatingAdd(prompt_tokens, completion_tokens); }
  Usage& operator+=(const Usage& other);
};

// What an agent proposes; Decide validates it.
struct Proposal {
  std::string option;
  std::string rationale;
  std::optional<double> confidence;  // in [0, 1] when given
};

// The result of a decision, successful or not: what the engine records as agent_decided.
struct DecisionOutcome {
  Reason reason = Reason::kAgentError;
  std::string detail;  // why, for people (empty when decided)
  std::string agent;   // the configured agent's name
  std::string model;
  std::string option;  // set only when decided
  std::string rationale;
  std::optional<double> confidence;
  uint32_t steps_used = 0;
  Usage usage;
  // What was sent and what came back (prompts, responses, tool calls and their results),
  // for the blob store; the event keeps their hashes.
  Json request_transcript = Json::array();
  Json response_transcript = Json::array();
  uint64_t duration_ms = 0;

  bool decided() const { return reason == Reason::kDecided; }
  // The `call: agent` task's output (meaningful when decided()):
  //   {"option": "business", "rationale": "...", "confidence": 0.9,   // only when given
  //    "steps_used": 1, "agent": "planner", "model": "gpt-4o-mini",
  //    "usage": {"prompt_tokens": 812, "completion_tokens": 40, "calls": 1,
  //              "cost": 0.00145}}     // decimal units of money; null when unknown
  Json ToTaskOutput() const;
};

// Blocking I/O out of an agent, given by the engine (its executors: bounded, with TLS,
// process-group kills) or by tests.
struct HttpReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  std::string body;
};
struct CommandSpec {
  std::string command;  // a shell command line (/bin/sh -c)
  std::vector<std::string> arguments;
  std::map<std::string, std::string> environment;
};
struct CommandReply {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_tail;
};

class AgentIo {
 public:
  virtual ~AgentIo() = default;
  // POSTs `body` (JSON text) to `url`. A reply of any status is a reply; transport
  // failures (connect, TLS, timeout) are errors (kUnavailable / kDeadlineExceeded).
  virtual Result<HttpReply> PostJson(
      const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
      const std::string& body, std::chrono::milliseconds timeout) = 0;
  // Runs a program with `stdin_text`; kDeadlineExceeded when it outlives `timeout` (it is
  // killed), other errors when it cannot start.
  virtual Result<CommandReply> RunCommand(const CommandSpec& command, const std::string& stdin_text,
                                          std::chrono::milliseconds timeout) = 0;
  // Calls a read tool of the engine's catalog. The session checks the allowlist first.
  virtual Result<Json> CallTool(const std::string& name, const Json& arguments,
                                std::chrono::milliseconds timeout) = 0;
};

// One decision in progress: the request, its bounds and its I/O. Agents call it; the
// first violation it sees ends the decision (failed() is then set and stays set).
//
// Fail-closed rules it applies (agent/README.md lists them all):
//   - a step or a tool call when out of time fails the decision with kTimeout;
//   - a step beyond request.limits.max_steps fails it with kMaxStepsExceeded;
//   - usage beyond limits.max_tokens fails it with kTokenBudgetExceeded, beyond
//     limits.max_cost_micros with kCostBudgetExceeded; a cost that is unknown while a
//     cost cap is set fails it with kCostBudgetExceeded too ("cost unknown under a cost
//     cap"): an unknown cost is never counted as zero;
//   - a call to a tool that was not offered fails it with kToolNotAllowed.
// Usage is always added, even past a cap or after a failure: it was spent.
//
// Lifecycle: made by Decide for one decision and destroyed with it; `request`, `io` and
// `clock` must outlive it. Not thread-safe: one agent thread drives it.
class Session {
 public:
  Session(const DecisionRequest& request, AgentIo& io, const Clock& clock);

  const DecisionRequest& request() const { return request_; }
  AgentIo& io() { return io_; }

  // Time left before the decision's timeout (zero or less: out of time).
  std::chrono::milliseconds Remaining() const;
  // Starts a model turn. False (and the decision fails with kMaxStepsExceeded) when
  // max_steps turns have been made already, or kTimeout when out of time.
  bool BeginStep();
  uint32_t steps_used() const { return steps_; }
  // Adds the usage of a call; false (and the decision fails) past a token or cost cap.
  bool AddUsage(const Usage& usage);
  const Usage& usage() const { return usage_; }
  void SetModel(std::string model) { model_ = std::move(model); }
  const std::string& model() const { return model_; }
  // Calls an offered read tool (within the time left). A tool that was not offered fails
  // the decision with kToolNotAllowed (fail-closed) and returns kPermissionDenied; out
  // of time fails it with kTimeout and returns kDeadlineExceeded; after the decision
  // failed, kFailedPrecondition. More than limits::agent_tool_calls_per_step_max calls in
  // one step return kResourceExhausted (the decision goes on). A tool that fails returns
  // its error, for the agent to see. The call and its result or error are recorded in
  // the transcripts ({"tool_call": {name, arguments}} / {"tool_result": {name, result}}
  // or {"tool_error": {name, code, message}}).
  Result<Json> CallTool(const std::string& name, const Json& arguments);
  // Transcript entries, each transcript bounded by limits::agent_transcript_bytes_max (of
  // compact JSON): the first entry that does not fit is replaced by {"truncated": true},
  // and every later entry of that transcript is dropped.
  void RecordRequest(Json entry);
  void RecordResponse(Json entry);
  // Ends the decision with a failure (`reason` is never kDecided); the first failure wins.
  void Fail(Reason reason, std::string detail);
  bool failed() const { return failure_.has_value(); }
  // For the recorded agent (replay): counts the steps and usage of a recorded decision
  // as they were, without checking them against the bounds (they were checked when the
  // decision was made, under the same request).
  void Restore(uint32_t steps, const Usage& usage);

  // Used by Decide.
  std::optional<std::pair<Reason, std::string>> failure() const { return failure_; }
  Json TakeRequestTranscript() { return std::move(requests_); }
  Json TakeResponseTranscript() { return std::move(responses_); }

 private:
  const DecisionRequest& request_;
  AgentIo& io_;
  const Clock& clock_;
  int64_t deadline_ns_;
  uint32_t steps_ = 0;
  Usage usage_;
  std::string model_;
  uint32_t tool_calls_in_step_ = 0;
  Json requests_ = Json::array();
  Json responses_ = Json::array();
  size_t request_bytes_ = 0;
  size_t response_bytes_ = 0;
  bool requests_truncated_ = false;
  bool responses_truncated_ = false;
  std::optional<std::pair<Reason, std::string>> failure_;
};

class Agent {
 public:
  virtual ~Agent() = default;
  // The configured name ("planner") and kind ("openai", "command", "scripted", "recorded").
  virtual const std::string& name() const = 0;
  virtual std::string_view kind() const = 0;
  // Proposes an option for session.request(), or returns nullopt after session.Fail().
  // Must respect session.Remaining() in all its I/O. Thread-safe.
  virtual std::optional<Proposal> Propose(Session& session) = 0;
};

// Runs `agent` on `request` within its bounds and validates the proposal fail-closed:
// the option must be one of request.options (exactly), the rationale at most
// limits::agent_rationale_bytes_max, a confidence within [0, 1], and the whole decision
// within its time, step, token and cost bounds. Never throws; always returns an outcome.
//
// The reason is the first that applies, in this order:
//   1. the request breaks ValidateRequest -> kAgentError, detail "invalid decision
//      request: ..." (the agent is not asked). The engine is expected to call
//      ValidateRequest itself first and fault the task with a validation error: a bad
//      request is the workflow's fault, not the agent's;
//   2. the session's own failure (the agent called Fail, a bound was hit; an exception
//      out of Propose -> kAgentError);
//   3. the decision's time ran out (measured at the end) -> kTimeout: a late answer is
//      never looked at;
//   4. no proposal -> kMalformedAnswer;
//   5. option not exactly one of request.options -> kOptionNotAllowed (the detail quotes
//      the option, cut to 80 bytes);
//   6. rationale over agent_rationale_bytes_max -> kAnswerTooLarge;
//   7. confidence NaN or outside [0, 1] -> kMalformedAnswer.
// Whatever the reason, the outcome carries the agent's name, the model, the steps used,
// the usage (spent is spent), the transcripts and the duration (clock.MonotonicNanos).
// Thread-safe as far as `agent` is; `io` must be usable from the calling thread.
DecisionOutcome Decide(Agent& agent, const DecisionRequest& request, AgentIo& io,
                       const Clock& clock);

// Checks a request before it is made: options non-empty (at most
// limits::agent_options_max), each non-empty, at most limits::agent_option_bytes_max and
// unique; goal at most agent_goal_bytes_max; context at most agent_context_bytes_max as
// compact JSON; at most agent_tools_max tools with non-empty unique names; max_steps in
// [1, agent_steps_max]; timeout in (0, agent_timeout_ms_max]; max_cost_micros >= 0.
// kInvalidArgument naming the field, the value seen and the bound. Pure; thread-safe.
Status ValidateRequest(const DecisionRequest& request);

// `text` in single quotes for a message; when longer than `bytes_max`, cut there (never
// inside a UTF-8 sequence) and followed by "..." and its full length.
std::string QuoteForMessage(std::string_view text, size_t bytes_max = 80);

}  // namespace cairn::agent
