// Helpers for the agent tests: an AgentIo whose answers the test chooses, an Agent made of
// a lambda, and a request with sane defaults.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "agent/agent.h"
#include "base/clock.h"

namespace cairn::agent::testing {

using namespace std::chrono_literals;

// AgentIo with handlers set by the test; every call is recorded. Without a handler: HTTP
// and commands answer kFailedPrecondition, an unknown tool kNotFound. Thread-safe.
class FakeAgentIo final : public AgentIo {
 public:
  using ToolHandler =
      std::function<Result<Json>(const Json& arguments, std::chrono::milliseconds timeout)>;
  using CommandHandler = std::function<Result<CommandReply>(
      const CommandSpec& command, const std::string& stdin_text, std::chrono::milliseconds)>;

  struct ToolCall {
    std::string name;
    Json arguments;
    std::chrono::milliseconds timeout;
  };

  void SetTool(const std::string& name, ToolHandler handler) {
    std::lock_guard lock(mu_);
    tools_[name] = std::move(handler);
  }
  void SetCommand(CommandHandler handler) {
    std::lock_guard lock(mu_);
    command_ = std::move(handler);
  }
  std::vector<ToolCall> tool_calls() const {
    std::lock_guard lock(mu_);
    return tool_calls_;
  }

  Result<HttpReply> PostJson(const std::string& url,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::string& body, std::chrono::milliseconds timeout) override {
    return Status::FailedPrecondition("FakeAgentIo: no HTTP");
  }
  Result<CommandReply> RunCommand(const CommandSpec& command, const std::string& stdin_text,
                                  std::chrono::milliseconds timeout) override {
    CommandHandler handler;
    {
      std::lock_guard lock(mu_);
      handler = command_;
    }
    if (!handler) return Status::FailedPrecondition("FakeAgentIo: no command handler");
    return handler(command, stdin_text, timeout);
  }
  Result<Json> CallTool(const std::string& name, const Json& arguments,
                        std::chrono::milliseconds timeout) override {
    ToolHandler handler;
    {
      std::lock_guard lock(mu_);
      tool_calls_.push_back({name, arguments, timeout});
      auto it = tools_.find(name);
      if (it == tools_.end()) return Status::NotFound("FakeAgentIo: no tool " + name);
      handler = it->second;
    }
    return handler(arguments, timeout);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, ToolHandler> tools_;
  CommandHandler command_;
  std::vector<ToolCall> tool_calls_;
};

// An agent whose Propose is a lambda.
class LambdaAgent final : public Agent {
 public:
  using Fn = std::function<std::optional<Proposal>(Session&)>;
  explicit LambdaAgent(Fn fn, std::string name = "lambda")
      : name_(std::move(name)), fn_(std::move(fn)) {}
  const std::string& name() const override { return name_; }
  std::string_view kind() const override { return "lambda"; }
  std::optional<Proposal> Propose(Session& session) override { return fn_(session); }

 private:
  std::string name_;
  Fn fn_;
};

inline DecisionRequest MakeRequest() {
  DecisionRequest request;
  request.run_id = "run-1";
  request.task_path = "/do/0/choosePlan";
  request.workflow = "acme/plans:1.0.0";
  request.decision_key = "run-1#1";
  request.goal = "pick a plan";
  request.options = {"starter", "business", "enterprise"};
  request.context = {{"team_size", 12}, {"plan", "starter"}};
  request.tools = {{"crm.get_usage", "usage of an account", Json::object()}};
  request.limits.max_steps = 4;
  request.limits.timeout = 10s;
  return request;
}

// One step, then `proposal`.
inline LambdaAgent::Fn Answers(Proposal proposal) {
  return [proposal](Session& session) -> std::optional<Proposal> {
    if (!session.BeginStep()) return std::nullopt;
    return proposal;
  };
}

// "reason_code: detail", for failure messages.
inline std::string Show(const DecisionOutcome& outcome) {
  return std::string(ReasonCode(outcome.reason)) + ": " + outcome.detail;
}

}  // namespace cairn::agent::testing
