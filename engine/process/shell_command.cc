#include "engine/process/shell_command.h"

#include <utility>

#include "base/limits.h"
#include "engine/process/arguments.h"
#include "engine/process/output_text.h"

namespace cairn::engine::process {
namespace {

Result<ReturnMode> ParseReturnMode(const Json& arguments) {
  auto it = arguments.find("return");
  if (it == arguments.end() || it->is_null()) return ReturnMode::kStdout;
  static const std::map<std::string, ReturnMode, std::less<>> kModes = {
      {"stdout", ReturnMode::kStdout},
      {"stderr", ReturnMode::kStderr},
      {"code", ReturnMode::kCode},
      {"all", ReturnMode::kAll},
      {"none", ReturnMode::kNone}};
  if (it->is_string()) {
    auto mode = kModes.find(it->get_ref<const std::string&>());
    if (mode != kModes.end()) return mode->second;
  }
  return Status::InvalidArgument("return: expected one of stdout, stderr, code, all, none; got " +
                                 Excerpt(DumpJson(*it), 100));
}

Result<bool> ParseAwait(const Json& arguments) {
  auto it = arguments.find("await");
  if (it == arguments.end() || it->is_null()) return true;
  if (!it->is_boolean()) {
    return Status::InvalidArgument("await: expected a boolean, got " +
                                   std::string(JsonTypeName(*it)));
  }
  return it->get<bool>();
}

std::optional<std::string> StdinBytes(const Json& arguments) {
  auto it = arguments.find("stdin");
  if (it == arguments.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  return DumpJson(*it);
}

std::string StderrForDetail(std::string_view stderr_bytes, size_t bytes_max) {
  if (stderr_bytes.empty()) return "; stderr was empty";
  std::string_view tail = stderr_bytes;
  std::string prefix;
  if (tail.size() > bytes_max) {
    tail.remove_prefix(tail.size() - bytes_max);
    prefix = "... ";
  }
  return "; stderr: " + prefix + SanitizeUtf8(DropTrailingNewline(tail));
}

}  // namespace

Result<ShellCommand> ParseShellCommand(const Json& arguments) {
  if (!arguments.is_object()) {
    return Status::InvalidArgument("shell arguments: expected an object, got " +
                                   std::string(JsonTypeName(arguments)));
  }
  ShellCommand command;
  CAIRN_ASSIGN_OR_RETURN(command.command, CommandField(arguments, "command"));
  CAIRN_ASSIGN_OR_RETURN(command.arguments, StringListField(arguments, "arguments"));
  CAIRN_ASSIGN_OR_RETURN(command.environment, EnvironmentField(arguments, "environment"));
  CAIRN_ASSIGN_OR_RETURN(command.return_mode, ParseReturnMode(arguments));
  CAIRN_ASSIGN_OR_RETURN(command.await, ParseAwait(arguments));
  command.stdin_bytes = StdinBytes(arguments);
  return command;
}

bool NeedsFullStderr(ReturnMode mode) {
  return mode == ReturnMode::kStderr || mode == ReturnMode::kAll;
}

std::vector<std::string> ShellArgv(const ShellCommand& command) {
  std::vector<std::string> argv = {"sh", "-c", command.command, "sh"};
  argv.insert(argv.end(), command.arguments.begin(), command.arguments.end());
  return argv;
}

Environment ShellEnvironment(const Environment& base, const ShellCommand& command,
                             const ToolRequest& request) {
  Environment environment = base;
  for (const auto& [name, value] : command.environment) environment.insert_or_assign(name, value);
  environment.insert_or_assign("CAIRN_IDEMPOTENCY_KEY", request.idempotency_key);
  environment.insert_or_assign("CAIRN_RUN_ID", request.run_id.str());
  environment.insert_or_assign("CAIRN_TASK_PATH", request.task_path);
  return environment;
}

Json OutputValue(std::string_view text) {
  Result<Json> parsed = ParseJson(text, "output", limits::tool_output_bytes_max);
  if (parsed.ok()) return std::move(parsed).value();
  return SanitizeUtf8(DropTrailingNewline(text));
}

ToolResponse ShellResult(const ShellCommand& command, const ExitStatus& exit,
                         std::string_view stdout_bytes, std::string_view stderr_bytes,
                         size_t stderr_detail_bytes_max) {
  switch (command.return_mode) {
    case ReturnMode::kCode:
      return ToolResponse::Ok(exit.ShellCode());
    case ReturnMode::kAll:
      return ToolResponse::Ok(Json{{"code", exit.ShellCode()},
                                   {"stdout", SanitizeUtf8(stdout_bytes)},
                                   {"stderr", SanitizeUtf8(stderr_bytes)}});
    default:
      break;
  }
  if (!exit.success()) {
    return ToolResponse::Failed(error_type::kRuntime, 500, "Command failed",
                                "command " + Quoted(command.command) + " " + exit.Describe() +
                                    StderrForDetail(stderr_bytes, stderr_detail_bytes_max));
  }
  switch (command.return_mode) {
    case ReturnMode::kStdout:
      return ToolResponse::Ok(OutputValue(stdout_bytes));
    case ReturnMode::kStderr:
      return ToolResponse::Ok(OutputValue(stderr_bytes));
    default:
      return ToolResponse::Ok(nullptr);
  }
}

}  // namespace cairn::engine::process
