#include "engine/core/decisions.h"

#include <chrono>
#include <utility>

#include "base/limits.h"
#include "base/sha256.h"

namespace cairn::engine {

agent::DecisionRequest MakeDecisionRequest(const std::string& run_id, const Definition& definition,
                                           const DecisionCommand& command) {
  agent::DecisionRequest request;
  request.run_id = run_id;
  request.task_path = command.task_path;
  request.workflow = definition.namespace_ + "/" + definition.name + ":" + definition.version;
  request.decision_key = command.decision_key;
  const Json& r = command.request;
  request.goal = r.value("goal", "");
  for (const Json& option : r.value("options", Json::array())) {
    if (option.is_string()) request.options.push_back(option.get<std::string>());
  }
  request.context = r.value("context", Json::object());
  for (const Json& tool : r.value("tools", Json::array())) {
    request.tools.push_back(
        agent::ToolOffer{tool.value("name", ""), tool.value("description", ""), Json::object()});
  }
  const Json limits = r.value("limits", Json::object());
  request.limits.max_steps = limits.value("max_steps", limits::agent_steps_default);
  request.limits.timeout =
      std::chrono::milliseconds(limits.value("timeout_ms", limits::agent_timeout_ms_default));
  request.limits.max_tokens = limits.value("max_tokens", uint64_t{0});
  request.limits.max_cost_micros = limits.value("max_cost_micros", int64_t{0});
  return request;
}

agent::DecisionOutcome UnknownAgentOutcome(const std::string& name) {
  agent::DecisionOutcome outcome;
  outcome.reason = agent::Reason::kUnknownAgent;
  outcome.agent = name;
  outcome.detail = name.empty() ? "no default agent is configured (the agents file's `default`)"
                                : "no agent named '" + name + "' is configured";
  return outcome;
}

storage::AgentDecided MakeAgentDecided(const agent::DecisionOutcome& outcome,
                                       const agent::DecisionRequest& request,
                                       std::vector<std::string>* blobs) {
  storage::AgentDecided decided;
  decided.agent = outcome.agent;
  decided.model = outcome.model;
  decided.reason_code = std::string(agent::ReasonCode(outcome.reason));
  decided.option = outcome.option;
  decided.rationale = outcome.rationale;
  decided.has_confidence = outcome.confidence.has_value();
  decided.confidence = outcome.confidence.value_or(0);
  decided.steps_used = outcome.steps_used;
  decided.usage =
      storage::Usage{outcome.usage.prompt_tokens, outcome.usage.completion_tokens,
                     outcome.usage.cost_micros, outcome.usage.cost_known, outcome.usage.calls};
  decided.options = request.options;
  decided.duration_ms = outcome.duration_ms;
  decided.detail = outcome.detail;
  decided.goal = request.goal;
  decided.decision_key = request.decision_key;
  std::string request_text = DumpJson(outcome.request_transcript);
  std::string response_text = DumpJson(outcome.response_transcript);
  decided.request_blob = Sha256::Of(request_text);
  decided.response_blob = Sha256::Of(response_text);
  if (blobs != nullptr) {
    blobs->push_back(std::move(request_text));
    blobs->push_back(std::move(response_text));
  }
  return decided;
}

}  // namespace cairn::engine
