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
//   base_url: https://api.openai.com/v1     # required; POSTs go to BASE_URL/chat/completions
//   model: gpt-4o-mini                       # required
//   api_key_env: OPENAI_API_KEY              # optional: sent as Authorization: Bearer
//   headers: {OpenAI-Organization: org-1}    # optional extra headers
//   temperature: 0                           # optional
//   max_completion_tokens: 512               # optional, per model call
//   request_timeout: 30s                     # optional, per HTTP request (within the
//                                            # decision's timeout)
//   retries: {attempts: 3, backoff: 500ms, max_backoff: 8s}   # optional
//   prices: {prompt_per_million: 0.15, completion_per_million: 0.60}  # optional
//   system_prompt: "..."                     # optional, replaces the built-in one
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "base/yaml_config.h"

namespace cairn::agent {

struct OpenAiConfig;  // defined in openai_agent.cc

// Reads an `openai` agent's keys (the `kind` key is already checked by the caller; other
// keys are refused by name). nullopt after adding problems to ctx.
std::optional<std::shared_ptr<const OpenAiConfig>> ParseOpenAiConfig(const YamlContext& ctx,
                                                                     const YAML::Node& node);

// `getenv` reads the API key variable (tests pass their own).
std::shared_ptr<Agent> MakeOpenAiAgent(std::string name,
                                       std::shared_ptr<const OpenAiConfig> config,
                                       std::function<std::optional<std::string>(const std::string&)>
                                           getenv);

}  // namespace cairn::agent
