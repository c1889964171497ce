// The `openai` agent: any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama,
// vLLM, llama.cpp server).
//
// It sends the goal, the context and the options, with `response_format: json_schema`
// whose `option` is an enum of the allowed options, and re-validates whatever comes back
// (Decide does, fail-closed). When the request offers read tools they are sent as
// `tools` (function calling): the agent runs a bounded loop — each model turn is a step;
// requested tool calls are made through the Session (which refuses tools not offered)
// and their results sent back — until the model answers or max_steps is reached.
// 429 and 5xx answers and transport failures are retried with exponential backoff
// (honouring Retry-After) within the decision's time. Usage comes from the response's
// `usage`; cost from the configured prices (unknown when no price is configured).
//
// Keys in the agents file (agent/config.h):
//   kind: openai
//   base_url: https://api.openai.com/v1     # required, http:// or https://; POSTs go to
//                                            # BASE_URL/chat/completions (a trailing / is
//                                            # dropped)
//   model: gpt-4o-mini                       # required
//   api_key_env: OPENAI_API_KEY              # optional: the variable's value is sent as
//                                            # Authorization: Bearer, read at each decision
//   headers: {OpenAI-Organization: org-1}    # optional extra headers (not Content-Type,
//                                            # Content-Length, Host, Connection,
//                                            # Transfer-Encoding; not Authorization with
//                                            # api_key_env)
//   temperature: 0                           # optional, 0 to 2
//   max_completion_tokens: 512               # optional, per model call (1 to 1,000,000)
//   request_timeout: 30s                     # optional (default 30s), per HTTP request;
//                                            # never past the decision's timeout
//   retries: {attempts: 3, backoff: 500ms, max_backoff: 8s}   # optional; these defaults.
//                                            # attempts counts the first try (1 to
//                                            # limits::agent_http_attempts_max; 1: no retry)
//   prices: {prompt_per_million: 0.15, completion_per_million: 0.60}  # optional; both
//                                            # keys or none; money per million tokens
//   system_prompt: "..."                     # optional, replaces the built-in one
// Unknown keys are refused by name; every problem is reported with its line.
//
// One model turn (a step: Session::BeginStep before each) POSTs
//   {model, messages, response_format: {type: json_schema, json_schema: {name: decision,
//    strict: true, schema: {type: object, properties: {option: {type: string, enum:
//    OPTIONS}, rationale: {type: string}, confidence: {type: number}}, required: [option,
//    rationale, confidence], additionalProperties: false}}}, temperature?,
//    max_completion_tokens?, tools?}
// `messages` starts with the system prompt and a user message whose content is the JSON
// {workflow, task, goal, options, context, max_steps}; each tool-calling turn appends
// the assistant's message and one `role: tool` message per call. `confidence` is in
// `required` because OpenAI's strict mode requires every property; an answer without it
// is still accepted. Tools go as {type: function, function: {name, description,
// parameters: input_schema (an empty schema as {type: object, properties: {}})}}; names
// that OpenAI would refuse (it allows [A-Za-z0-9_-]{1,64}, cairn names have dots) are
// sent with '_' for each other character ("crm.get_account" -> "crm_get_account", a
// suffix _2, _3... on a collision) and mapped back when the model calls them.
//
// Reading the response (2xx):
//   - usage.prompt_tokens / completion_tokens are added to the session (Session::AddUsage,
//     one call each); the cost is tokens x price / 1e6 per kind, rounded up to a whole
//     micro, so that a budget never undercounts. Without prices, or without `usage` in the
//     response, the cost is unknown (cost_known = false; tokens 0 without usage).
//   - the model is the response's `model`, else the configured one.
//   - a body that is not a JSON object, or has no choices[0].message: kAgentError.
//   - message.tool_calls, non-empty: at most limits::agent_tool_calls_per_step_max per
//     turn (more: kMalformedAnswer — the answer breaks the protocol, no tool was named
//     wrongly); each needs function.name and JSON-object arguments (a JSON text, "" for
//     {}; else kMalformedAnswer); each is made with Session::CallTool, which fails the
//     decision at once with kToolNotAllowed for a tool that was not offered. A tool's error
//     is sent back to the model as {"error": MESSAGE}. Then the next turn.
//   - otherwise message.content (a string, or text parts joined) is the answer: over
//     limits::agent_answer_bytes_max -> kAnswerTooLarge; `refusal` set, no content, not
//     JSON, not an object, option or rationale not strings, confidence not a number ->
//     kMalformedAnswer, the detail saying what was wrong, quoting the answer and noting
//     a cut-off answer (finish_reason: length). Blanks and a Markdown code fence around
//     the JSON are tolerated (models without schema support add them); other keys are
//     ignored. Whether the option is allowed is Decide's check, not the agent's.
//
// HTTP (through AgentIo::PostJson, each request with a timeout of min(request_timeout,
// the decision's time left)):
//   - headers: Content-Type: application/json, Authorization: Bearer KEY when api_key_env
//     is set (unset or empty variable: kAgentError "API key variable X is not set", before
//     any request), then `headers`.
//   - 429, 408 and 5xx, and transport failures (kUnavailable, or kDeadlineExceeded of a
//     request bounded by request_timeout) are retried: attempt n+1 waits
//     backoff x 2^(n-1), at most max_backoff, and at least the Retry-After seconds (the
//     HTTP-date form is ignored). No jitter: waits are deterministic. A wait that would
//     end past the decision's deadline is not slept: kTimeout at once. After `attempts`
//     tries: kAgentUnavailable with the last status and a body excerpt (512 bytes).
//   - a request that timed out on the decision's own deadline: kTimeout.
//   - other statuses (1xx, 3xx, 4xx): kAgentError with the status and a body excerpt;
//     other PostJson errors (a refused header): kAgentError.
//   - waits sleep the agent's thread (agents run on worker threads of their own).
//
// Transcripts: each attempt's request as {step, attempt, method, url, headers, body}
// (later attempts of a turn as {step, attempt, body_as_attempt: 1}); header values whose
// names hold auth, key, token, secret, password or cookie are "<redacted>": the API key
// is never recorded or logged. Each response as {step, attempt, status, body (the raw
// text)} or {step, attempt, error}. Session::CallTool records the tool calls.
//
// Thread-safety: the agent is immutable after MakeOpenAiAgent; Propose may run on many
// threads at once (each decision has its own Session).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "base/yaml_config.h"

namespace cairn::agent {

struct OpenAiConfig;  // defined in openai_agent.cc

// Reads an `openai` agent's keys from `node` (a map; its `kind` key is accepted and left
// to the caller to check; other keys are refused by name). The configuration, immutable,
// or nullopt after adding every problem found to ctx (each naming the key and the value
// seen).
std::optional<std::shared_ptr<const OpenAiConfig>> ParseOpenAiConfig(const YamlContext& ctx,
                                                                     const YAML::Node& node);

// The agent `name` over `config` (not null). `getenv` reads the API key variable at each
// decision (tests pass their own; empty: std::getenv). Never fails.
std::shared_ptr<Agent> MakeOpenAiAgent(
    std::string name, std::shared_ptr<const OpenAiConfig> config,
    std::function<std::optional<std::string>(const std::string&)> getenv);

}  // namespace cairn::agent
