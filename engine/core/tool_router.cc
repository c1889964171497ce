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
    // "all": the router checks the exit code and parses stdout as JSON itself, since a
    // command tool must answer JSON (text is an error here, unlike run.shell).
    request.arguments = Json{
        {"command", config.value("command", "")}, {"stdin", command.arguments}, {"return", "all"}};
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
    request.arguments =
        Json{{"method", "tools/call"},
             {"parameters",
              {{"name", config.value("tool", spec.name)}, {"arguments", command.arguments}}},
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
  if (command.tool.executor == "command") {
    done = [done = std::move(done), tool = command.tool.name](ToolResponse response) {
      done(CommandToolResponse(tool, std::move(response)));
    };
  }
  it->second->Call(BuildToolRequest(run_id, command), std::move(done));
}

ToolResponse CommandToolResponse(const std::string& tool, ToolResponse response) {
  if (response.status != ToolResponse::Status::kOk) return response;
  const Json& all = response.output;
  if (!all.is_object() || !all.contains("code")) {
    return ToolResponse::Failed(error_type::kRuntime, 500, "Command failed",
                                "tool '" + tool + "': the executor gave no exit code");
  }
  const std::string out = all.value("stdout", "");
  const std::string err = all.value("stderr", "");
  const int64_t code = all["code"].is_number_integer() ? all["code"].get<int64_t>() : -1;
  auto tail = [](const std::string& text) {
    return text.size() > 2048 ? "..." + text.substr(text.size() - 2048) : text;
  };
  if (code != 0) {
    return ToolResponse::Failed(error_type::kRuntime, 500, "Command failed",
                                "tool '" + tool + "' exited with code " + std::to_string(code) +
                                    (err.empty() ? "" : "; stderr: " + tail(err)));
  }
  Result<Json> parsed = ParseJson(out, "tool '" + tool + "' stdout");
  if (!parsed.ok()) {
    // The parser quotes the bad bytes: keep the message valid UTF-8 (it is persisted).
    const std::string detail =
        parsed.status().message() + "; stdout began: " + DumpJson(Json(out.substr(0, 200)));
    return ToolResponse::Failed(error_type::kRuntime, 502, "Command printed invalid JSON",
                                Json::parse(DumpJson(Json(detail))).get<std::string>());
  }
  return ToolResponse::Ok(std::move(parsed).value());
}

ToolExecutor* ToolRouter::Find(const std::string& name) const {
  auto it = executors_.find(name);
  return it == executors_.end() ? nullptr : it->second.get();
}

void ToolRouter::Shutdown() {
  std::set<ToolExecutor*> done;
  for (auto& [name, executor] : executors_) {
    if (done.insert(executor.get()).second) executor->Shutdown();
  }
}

}  // namespace cairn::engine
