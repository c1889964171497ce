// AgentIo over the engine's tool executors: HTTP through engine/http (Beast, TLS, bounds),
// commands through engine/process (process groups, bounded output, kill at the deadline),
// read tools through a callback the engine gives (its catalog and router).
#pragma once

#include <functional>

#include "agent/agent.h"
#include "engine/tools/tool.h"

namespace cairn::agent {

using ToolCaller = std::function<Result<Json>(const std::string& name, const Json& arguments,
                                              std::chrono::milliseconds timeout)>;

class ExecutorAgentIo final : public AgentIo {
 public:
  // Not owned; each may be null (then its calls answer kFailedPrecondition).
  ExecutorAgentIo(engine::ToolExecutor* http, engine::ToolExecutor* shell, ToolCaller tools)
      : http_(http), shell_(shell), tools_(std::move(tools)) {}

  // executor_io_http.cc
  Result<HttpReply> PostJson(const std::string& url,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::string& body, std::chrono::milliseconds timeout) override;
  // executor_io_command.cc
  Result<CommandReply> RunCommand(const CommandSpec& command, const std::string& stdin_text,
                                  std::chrono::milliseconds timeout) override;
  Result<Json> CallTool(const std::string& name, const Json& arguments,
                        std::chrono::milliseconds timeout) override;

 private:
  engine::ToolExecutor* http_;
  engine::ToolExecutor* shell_;
  ToolCaller tools_;
};

}  // namespace cairn::agent
