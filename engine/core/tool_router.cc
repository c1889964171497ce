#include "engine/core/tool_router.h"

#include <boost/asio/post.hpp>
#include <set>

namespace cairn::engine {

void ToolRouter::Add(const std::string& name, std::shared_ptr<ToolExecutor> executor) {
  executors_[name] = std::move(executor);
}

ToolRequest BuildToolRequest(const RunId& run_id, const EffectCommand& command) {
  ToolRequest request;
  request.tool = command.tool.name;
  request.idempotency_key = command.idempotency_key;
  request.run_id = run_id;
  request.task_path = command.task_path;
  request.timeout = std::chrono::milliseconds(command.timeout_ms);
  const ToolSpec& spec = command.tool;
  const Json& config = spec.config;
  const bool inline_call = spec.name == spec.executor;  // http, mcp, shell
  if (inline_call || spec.executor == "cpp") {
    request.arguments = command.arguments;
  } else if (spec.executor == "command") {
    request.arguments = Json{{"command", config.value("command", "")},
                             {"stdin", command.arguments},
                             {"return", "stdout"}};
    if (config.contains("arguments")) request.arguments["arguments"] = config["arguments"];
    if (config.contains("environment")) request.arguments["environment"] = config["environment"];
  } else if (spec.executor == "http") {
    request.arguments = config;
    std::string method = config.value("method", "post");
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (method == "get" || method == "delete" || method == "head") {
      if (command.arguments.is_object()) {
        Json query = config.value("query", Json::object());
        for (const auto& [k, v] : command.arguments.items()) {
          query[k] = v.is_string() ? v.get<std::string>() : DumpJson(v);
        }
        request.arguments["query"] = std::move(query);
      }
    } else {
      request.arguments["body"] = command.arguments;
    }
  } else if (spec.executor == "mcp") {
    request.arguments = Json{{"method", "tools/call"},
                             {"parameters",
                              {{"name", config.value("tool", spec.name)},
                               {"arguments", command.arguments}}},
                             {"transport", config.value("transport", Json::object())}};
  } else {
    request.arguments = command.arguments;
  }
  return request;
}

void ToolRouter::Call(const RunId& run_id, const EffectCommand& command, ToolCallback done) {
  auto it = executors_.find(command.tool.executor);
  if (it == executors_.end()) {
    // Answer off the caller's stack, as executors do.
    boost::asio::post(io_, [done = std::move(done), executor = command.tool.executor] {
      done(ToolResponse::Failed(error_type::kConfiguration, 501, "No executor",
                                "this engine has no '" + executor + "' executor"));
    });
    return;
  }
  it->second->Call(BuildToolRequest(run_id, command), std::move(done));
}

void ToolRouter::Shutdown() {
  std::set<ToolExecutor*> done;
  for (auto& [name, executor] : executors_) {
    if (done.insert(executor.get()).second) executor->Shutdown();
  }
}

}  // namespace cairn::engine
