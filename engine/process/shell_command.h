// A `run.shell` command (or a catalog "command" tool): its arguments as the executor
// reads them, and what the call answers once the process ended. Pure; thread-safe.
//
// Arguments (ToolRequest::arguments, an object):
//   command      string, required: run as `/bin/sh -c COMMAND sh ARG1 ARG2 ...`, so the
//                arguments are $1, $2, ... and never parsed by the shell.
//   arguments    [string], optional (numbers and booleans as their JSON text).
//   environment  {string: string}, optional: added to the engine's environment.
//   stdin        any, optional: a string is written as is, any other value as its JSON
//                text; absent or null: stdin is /dev/null (empty).
//   return       "stdout" (default) | "stderr" | "code" | "all" | "none".
//   await        bool, default true; false starts the command detached.
// Unknown fields are ignored (the engine may pass more than a shell needs).
//
// Results (ShellResult):
//   stdout / stderr  the stream's text parsed as JSON when it is valid JSON, otherwise
//                    the text with one trailing newline removed (invalid UTF-8 replaced
//                    by U+FFFD). A non-zero exit or a death by signal is a failure.
//   code             the exit code, an integer; death by signal N gives 128 + N, like a
//                    shell's $?. Never a failure.
//   all              {code, stdout, stderr}: code as for `code`, the two streams as raw
//                    text (invalid UTF-8 replaced). Never a failure.
//   none             null; a non-zero exit or a death by signal is a failure.
// A failure is kFailed, type runtime, status 500, title "Command failed", and a detail
// naming the command, how it ended and the tail of its stderr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "engine/process/child_process.h"
#include "engine/tools/tool.h"

namespace cairn::engine::process {

enum class ReturnMode : uint8_t { kStdout = 0, kStderr, kCode, kAll, kNone };

struct ShellCommand {
  std::string command;
  std::vector<std::string> arguments;
  Environment environment;
  std::optional<std::string> stdin_bytes;  // nullopt: /dev/null
  ReturnMode return_mode = ReturnMode::kStdout;
  bool await = true;
};

// kInvalidArgument naming the field, the value seen and what was expected.
Result<ShellCommand> ParseShellCommand(const Json& arguments);

// True when the call's answer needs all of stderr, not only its tail.
bool NeedsFullStderr(ReturnMode mode);

// argv of the shell process: {"sh", "-c", command, "sh", arguments...}.
std::vector<std::string> ShellArgv(const ShellCommand& command);

// `base`, then the command's environment, then CAIRN_IDEMPOTENCY_KEY, CAIRN_RUN_ID and
// CAIRN_TASK_PATH from the request (those always win: the engine owns them).
Environment ShellEnvironment(const Environment& base, const ShellCommand& command,
                             const ToolRequest& request);

// The answer for a command that ran to its end. `stderr_bytes` is all of stderr when
// NeedsFullStderr, else its tail; failure details quote at most `stderr_detail_bytes_max`
// bytes of its end.
ToolResponse ShellResult(const ShellCommand& command, const ExitStatus& exit,
                         std::string_view stdout_bytes, std::string_view stderr_bytes,
                         size_t stderr_detail_bytes_max);

// The JSON value of a stream's text: parsed if valid JSON, else the sanitized text without
// one trailing newline.
Json OutputValue(std::string_view text);

}  // namespace cairn::engine::process
