// Tools: what a workflow may call, and the executors that call them.
//
// A ToolExecutor performs one kind of call (a C++ callback, a shell command, an HTTP
// request, an MCP server tool) asynchronously. The interpreter never calls a tool: it
// emits an effect intent; the engine hands the request to the executor and records the
// response as the effect's outcome. Executors therefore need not be deterministic, but
// they must always answer: every Call() ends with exactly one `done` call, whatever the
// tool does (hangs -> kTimedOut at the deadline, crashes or prints garbage -> kFailed with
// an error saying what was seen).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "base/ids.h"
#include "base/json.h"
#include "storage/event.h"

namespace cairn::engine {

// Standard OWS error types (dsl.md "Standard error types").
namespace error_type {
inline constexpr const char* kConfiguration =
    "https://open-workflow-specification.org/spec/1.0.0/errors/configuration";
inline constexpr const char* kValidation =
    "https://open-workflow-specification.org/spec/1.0.0/errors/validation";
inline constexpr const char* kExpression =
    "https://open-workflow-specification.org/spec/1.0.0/errors/expression";
inline constexpr const char* kAuthentication =
    "https://open-workflow-specification.org/spec/1.0.0/errors/authentication";
inline constexpr const char* kAuthorization =
    "https://open-workflow-specification.org/spec/1.0.0/errors/authorization";
inline constexpr const char* kTimeout =
    "https://open-workflow-specification.org/spec/1.0.0/errors/timeout";
inline constexpr const char* kCommunication =
    "https://open-workflow-specification.org/spec/1.0.0/errors/communication";
inline constexpr const char* kRuntime =
    "https://open-workflow-specification.org/spec/1.0.0/errors/runtime";
}  // namespace error_type

// One call, as the engine hands it to an executor.
struct ToolRequest {
  // The tool's name: a catalog name ("billing.change_plan") or the inline kind ("http",
  // "mcp", "shell").
  std::string tool;
  // Executor-specific arguments, already evaluated (no runtime expressions left):
  //   http:  the `call: http` task's `with` object (method, endpoint, headers, body, query,
  //          output, redirect), with the endpoint URI template already expanded;
  //   mcp:   the `call: mcp` task's `with` object (method, parameters, transport, ...);
  //   shell: {command, arguments?, environment?, stdin?, return?};
  //   cpp:   whatever the C++ tool takes.
  Json arguments;
  // Stable across retries of the same effect; handed to the tool (HTTP Idempotency-Key
  // header, CAIRN_IDEMPOTENCY_KEY environment variable, MCP params._meta).
  std::string idempotency_key;
  RunId run_id;
  std::string task_path;
  // The call is abandoned (and any process it started killed) after this long.
  std::chrono::milliseconds timeout{60'000};
};

struct ToolResponse {
  enum class Status : uint8_t { kOk = 0, kFailed, kTimedOut };
  Status status = Status::kOk;
  Json output;  // kOk: the call's result
  // kFailed / kTimedOut: an OWS error (type is one of error_type::*, status an HTTP-like
  // code, title short, detail says what was seen: exit code, stderr tail, bad bytes, ...).
  storage::ErrorInfo error;

  static ToolResponse Ok(Json output) { return {Status::kOk, std::move(output), {}}; }
  static ToolResponse Failed(std::string type, int32_t status, std::string title,
                             std::string detail) {
    return {Status::kFailed, nullptr, {std::move(type), status, std::move(title),
                                       std::move(detail), {}}};
  }
  static ToolResponse TimedOut(std::string detail) {
    return {Status::kTimedOut, nullptr, {error_type::kTimeout, 408, "Tool call timed out",
                                         std::move(detail), {}}};
  }
};

using ToolCallback = std::function<void(ToolResponse)>;

// Thread-safe. Lifecycle: construct, Call() any number of times from any thread,
// Shutdown() (after which Call() answers kFailed at once), destroy.
class ToolExecutor {
 public:
  virtual ~ToolExecutor() = default;
  // Starts the call. `done` is called exactly once, on an executor thread (never inside
  // Call itself), with the response.
  virtual void Call(ToolRequest request, ToolCallback done) = 0;
  // Ends outstanding calls (kFailed "shutting down"), kills child processes, and waits
  // until every `done` has returned. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace cairn::engine
