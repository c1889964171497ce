// JSON-RPC 2.0 over a byte stream with one message per line, as MCP's stdio transport
// uses it: splitting the stream into lines, telling responses, requests and notifications
// apart, building messages, and describing errors. Pure; LineSplitter is
// thread-compatible, the rest thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace cairn::engine::process {

// Cuts a byte stream into lines of at most `line_bytes_max` bytes.
class LineSplitter {
 public:
  explicit LineSplitter(size_t line_bytes_max) : line_bytes_max_(line_bytes_max) {}

  // Appends `bytes` and calls `on_line` for each complete line, without its "\n" (or
  // "\r\n"); `on_line` returns false to stop (the rest is dropped, Clear() is expected).
  // kResourceExhausted when a line grows beyond the limit; nothing more is delivered.
  Status Append(std::string_view bytes, const std::function<bool(std::string_view)>& on_line);
  void Clear();

 private:
  Status LineTooLong() const;

  size_t line_bytes_max_;
  std::string buffer_;
  size_t scanned_ = 0;  // buffer_[0, scanned_) holds no newline
};

struct RpcMessage {
  enum class Kind : uint8_t { kResponse = 0, kRequest, kNotification };
  Kind kind = Kind::kNotification;
  Json id;             // kResponse, kRequest: a number or a string
  std::string method;  // kRequest, kNotification
  Json params;         // kRequest, kNotification: null when absent
  Json result;         // kResponse without error
  Json error;          // kResponse: the error object, null on success
};

// One line as JSON-RPC messages (a batch array gives several). kInvalidArgument saying
// what is wrong: not JSON, not an object, no "jsonrpc": "2.0", neither a method nor a
// result/error, an id that is not a number or string, ...
Result<std::vector<RpcMessage>> ParseRpcLine(std::string_view line, size_t bytes_max);

Json RpcRequest(uint64_t id, std::string_view method, const Json& params);  // params: null omits
Json RpcNotification(std::string_view method, const Json& params);
Json RpcResult(const Json& id, Json result);
Json RpcError(const Json& id, int code, std::string_view message);

// "error -32602: Unknown tool 'x' (data: ...)", bounded.
std::string RpcErrorText(const Json& error);

// An HTTP-like status for a JSON-RPC error: 400 for invalid request/params, 404 for an
// unknown method, 500 otherwise.
int32_t RpcErrorStatus(const Json& error);

// JSON-RPC's reserved error codes.
inline constexpr int kRpcMethodNotFound = -32601;

}  // namespace cairn::engine::process
