// An MCP call (`call: mcp`, or a catalog "mcp" tool) as the McpExecutor reads it, and what
// it answers for the server's response. Pure; thread-safe.
//
// Arguments (ToolRequest::arguments, the task's `with`):
//   method           string, required: "tools/call", "tools/list", "prompts/get", ...
//                    ("initialize" and notifications are cairn's to send: refused).
//   parameters       object, optional: the request's params.
//   protocolVersion  string, optional, default "2025-06-18".
//   client           {name, version}, optional: the clientInfo sent in initialize
//                    (default {name: "cairn", version: cairn's version}).
//   transport        {stdio: {command, arguments?, environment?}}, required; `command` is
//                    a program (looked up in the engine's $PATH), not a shell line. The
//                    HTTP transport is not supported here.
//   timeout          ignored: the engine folds a task's timeout into ToolRequest::timeout.
// Unknown fields are ignored.
//
// One server process serves every call with the same transport, protocol version and
// client (McpServerConfig::key).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "engine/process/child_process.h"
#include "engine/process/json_rpc.h"
#include "engine/tools/tool.h"

namespace cairn::engine::process {

inline constexpr std::string_view kMcpProtocolVersion = "2025-06-18";
// Where a tools/call carries the effect's idempotency key: params._meta[kIdempotencyMetaKey].
inline constexpr std::string_view kIdempotencyMetaKey = "io.cairn/idempotency-key";

struct McpServerConfig {
  std::string command;
  std::vector<std::string> arguments;
  Environment environment;  // the transport's own, on top of the engine's
  std::string protocol_version;
  Json client_info;  // {name, version}
  std::string key;   // canonical JSON of everything above
  std::string name;  // the command line, quoted and bounded, for messages
};

struct McpRequest {
  McpServerConfig server;
  std::string method;
  Json params;  // an object, or null when absent
};

// kInvalidArgument naming the field, the value seen and what was expected.
// `default_client_info` is used when the call gives no `client`.
Result<McpRequest> ParseMcpRequest(const Json& with, const Json& default_client_info);

// The params sent for a request: for tools/call, `params._meta` gets
// {"io.cairn/idempotency-key": key}, keeping whatever else the caller put in _meta.
Json WireParams(const McpRequest& request, const std::string& idempotency_key);

// The params of `initialize`.
Json InitializeParams(const McpServerConfig& server);

// "tools/call 'send_message'" or "tools/list": the request, for messages.
std::string DescribeRequest(const McpRequest& request);

// The answer for the server's response to `request`: kOk with the JSON-RPC result, or
// kFailed runtime for a JSON-RPC error (status per RpcErrorStatus) or a tools/call result
// with isError: true (500, detail = the tool's text content).
ToolResponse McpResult(const McpRequest& request, const RpcMessage& response);

}  // namespace cairn::engine::process
