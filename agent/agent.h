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
  uint32_t max_steps = 4;                      // model turns (>= 1)
  std::chrono::milliseconds timeout{60'000};   // the whole decision
  uint64_t max_tokens = 0;                     // prompt + completion; 0: no cap
  int64_t max_cost_micros = 0;                 // 0: no cap
};

struct DecisionRequest {
  std::string run_id;
  std::string task_path;
  std::string workflow;       // "namespace/name:version", for prompts and logs
  std::string decision_key;   // RUN_ID#N: stable across a crash and re-ask
  std::string goal;
  std::vector<std::string> options;  // the allowlist: non-empty, unique
  Json context = Json::object();
  std::vector<ToolOffer> tools;
  DecisionLimits limits;
};

struct Usage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  int64_t cost_micros = 0;
  bool cost_known = true;  // false: the cost could not be measured (never counted as zero)
  uint32_t calls = 0;      // model calls (or program runs) made

  uint64_t tokens() const { return prompt_tokens + completion_tokens; }
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
  // {option, rationale, confidence?, steps_used, usage: {...}, model}: the task's output.
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
  virtual Result<HttpReply> PostJson(const std::string& url,
                                     const std::vector<std::pair<std::string, std::string>>& headers,
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
// first violation it sees ends the decision (Failed() is then set and stays set).
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
  // the decision with kToolNotAllowed (fail-closed) and returns kPermissionDenied; a tool
  // that fails returns its error, for the agent to see. Recorded in the transcripts.
  Result<Json> CallTool(const std::string& name, const Json& arguments);
  // Transcript entries (bounded; beyond the bound entries are replaced by a marker).
  void RecordRequest(Json entry);
  void RecordResponse(Json entry);
  // Ends the decision with a failure; the first failure wins.
  void Fail(Reason reason, std::string detail);
  bool failed() const { return failure_.has_value(); }

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
  Json requests_ = Json::array();
  Json responses_ = Json::array();
  size_t transcript_bytes_ = 0;
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
DecisionOutcome Decide(Agent& agent, const DecisionRequest& request, AgentIo& io,
                       const Clock& clock);

// Checks a request before it is made (options non-empty, unique, bounded; limits sane).
// kInvalidArgument naming what is wrong.
Status ValidateRequest(const DecisionRequest& request);

}  // namespace cairn::agent
