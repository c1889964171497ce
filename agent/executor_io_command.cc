// ExecutorAgentIo::RunCommand and CallTool: programs through the engine's shell executor,
// read tools through the engine's callback.
//
// RunCommand blocks the calling thread until the executor answers. The executor answers
// on one of its own threads, so RunCommand must not be called from a thread that the
// executor needs to make progress (with a one-thread io_context, not from that thread).
#include <future>
#include <memory>

#include "agent/executor_io.h"
#include "base/limits.h"
#include "engine/process/shell_executor.h"

namespace cairn::agent {
namespace {

// The executor always answers (by its contract, at the latest at the call's timeout plus
// the time to kill and reap); this is only a backstop against a broken executor.
constexpr std::chrono::seconds kAnswerGrace{30};

Status StatusOf(const engine::ToolResponse& response) {
  const storage::ErrorInfo& error = response.error;
  if (response.status == engine::ToolResponse::Status::kTimedOut) {
    return Status::DeadlineExceeded(error.detail.empty() ? error.title : error.detail);
  }
  std::string message = error.title;
  if (!error.detail.empty()) message += ": " + error.detail;
  if (error.title == engine::process::kOutputTooLargeTitle)
    return Status::ResourceExhausted(message);
  if (error.status == 503) return Status::Unavailable(std::move(message));
  if (error.status == 400) return Status::InvalidArgument(std::move(message));
  return Status::FailedPrecondition(std::move(message));
}

// `return: all` gives {code, stdout, stderr}; anything else is an executor bug.
Result<CommandReply> ReplyOf(const Json& output) {
  if (!output.is_object() || !output.contains("code") || !output["code"].is_number_integer() ||
      !output.contains("stdout") || !output["stdout"].is_string() || !output.contains("stderr") ||
      !output["stderr"].is_string()) {
    return Status::Internal("the shell executor answered " +
                            QuoteForMessage(DumpJson(output), 200) +
                            " (expected {code, stdout, stderr})");
  }
  CommandReply reply;
  reply.exit_code = output["code"].get<int>();
  reply.stdout_text = output["stdout"].get<std::string>();
  std::string stderr_text = output["stderr"].get<std::string>();
  if (stderr_text.size() > limits::tool_stderr_bytes_max) {
    stderr_text.erase(0, stderr_text.size() - limits::tool_stderr_bytes_max);
  }
  reply.stderr_tail = std::move(stderr_text);
  return reply;
}

}  // namespace

Result<CommandReply> ExecutorAgentIo::RunCommand(const CommandSpec& command,
                                                 const std::string& stdin_text,
                                                 std::chrono::milliseconds timeout) {
  if (shell_ == nullptr) {
    return Status::FailedPrecondition("no shell executor is configured: command agents cannot run");
  }
  if (timeout.count() <= 0) return Status::DeadlineExceeded("no time left to run the program");
  engine::ToolRequest request;
  request.tool = "agent.command";
  request.arguments = {{"command", command.command},
                       {"arguments", command.arguments},
                       {"environment", Json(command.environment)},
                       {"stdin", stdin_text},
                       {"return", "all"}};
  request.timeout = timeout;
  auto answer = std::make_shared<std::promise<engine::ToolResponse>>();
  std::future<engine::ToolResponse> future = answer->get_future();
  shell_->Call(std::move(request),
               [answer](engine::ToolResponse response) { answer->set_value(std::move(response)); });
  if (future.wait_for(timeout + kAnswerGrace) != std::future_status::ready) {
    return Status::DeadlineExceeded("the shell executor did not answer within " +
                                    std::to_string((timeout + kAnswerGrace).count()) + " ms");
  }
  engine::ToolResponse response = future.get();
  if (response.status != engine::ToolResponse::Status::kOk) return StatusOf(response);
  return ReplyOf(response.output);
}

Result<Json> ExecutorAgentIo::CallTool(const std::string& name, const Json& arguments,
                                       std::chrono::milliseconds timeout) {
  if (!tools_) {
    return Status::FailedPrecondition("no tool caller is configured: agents cannot call tools");
  }
  return tools_(name, arguments, timeout);
}

}  // namespace cairn::agent
