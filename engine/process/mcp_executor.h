// McpExecutor: the ToolExecutor for `call: mcp` tasks and catalog "mcp" tools, talking to
// MCP servers over stdio (JSON-RPC 2.0, one message per line; MCP 2025-06-18).
//
// Servers: one server process per distinct transport (with protocol version and client
// info; see mcp_call.h), started on first use as a ChildProcess (own process group, pipes
// driven by Asio, exit watched through a pidfd), sent `initialize` and then the
// `notifications/initialized` notification, and reused by every later call. Requests are
// multiplexed over it by JSON-RPC id; each server has its own strand, so no thread is
// blocked per call or per server. Calls made while a server starts wait for the handshake.
//
// What the server sends: responses are matched by id (late responses to calls that timed
// out are dropped); requests from the server are answered (`ping` with {}, anything else
// with "method not found": cairn offers no client capabilities); notifications (logging,
// progress) are ignored. Whatever it writes to stderr is kept (the last
// stderr_tail_bytes_max bytes) for error details, never parsed.
//
// When a server goes bad, every call waiting on it fails and the next call starts a new
// process:
//   - it exits, or closes stdout and exits ("MCP server 'x' exited with code 3 during
//     tools/call 'y'; stderr: ...");
//   - it writes a line that is not JSON-RPC ("... wrote a line that is not JSON-RPC: <the
//     bytes, cut>"), or one longer than message_bytes_max; it is killed;
//   - a call times out while the server has sent nothing since that call's request and no
//     other call is waiting on it (or while it has not finished initialize): it is deemed
//     hung and killed. A slow tool with other traffic around it is only cancelled
//     (`notifications/cancelled`).
// After more than McpOptions::restarts_max such failures in a row without a single
// answered call, calls fail at once ("... not restarting it for another N s") until
// restart_cooldown has passed; then one new start is tried. Any answered call resets the
// count.
//
// Outcomes (ToolResponse):
//   success                  kOk with the JSON-RPC result.
//   JSON-RPC error           kFailed runtime, 400/404/500 (RpcErrorStatus), detail has the
//                            server's code and message.
//   tools/call isError: true kFailed runtime 500 "MCP tool failed", detail = the tool's text.
//   bad arguments            kFailed configuration 400, detail names the field.
//   server could not start   kFailed runtime 502 "MCP server could not be started".
//   server died / garbage    kFailed runtime 502 "MCP server failed".
//   restart limit, too many servers or requests
//                            kFailed runtime 503 "MCP server unavailable".
//   request.timeout reached  kTimedOut (also while the server starts).
//   Shutdown() or Call() after it
//                            kFailed runtime 503 "MCP executor shutting down".
//
// Shutdown closes every server's stdin (the MCP way to ask a stdio server to exit), waits
// up to shutdown_grace, then SIGKILLs the process groups left. Servers beyond servers_max
// are closed the same way, least recently used first, when idle.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/limits.h"
#include "engine/process/child_process.h"
#include "engine/tools/tool.h"

namespace cairn::engine::process {

struct McpOptions {
  // The environment servers inherit (a transport's own `environment` goes on top).
  // nullopt: the engine's own, read at construction.
  std::optional<Environment> environment;
  // clientInfo sent in initialize when a call names no `client`. Empty version: cairn's.
  std::string client_name = "cairn";
  std::string client_version;
  size_t servers_max = 16;              // server processes at once
  size_t requests_per_server_max = 64;  // waiting for the handshake or an answer
  // One message from a server (a line), and the bytes queued for a server's stdin.
  size_t message_bytes_max = limits::tool_output_bytes_max;
  size_t stderr_tail_bytes_max = limits::tool_stderr_bytes_max;
  uint32_t restarts_max = limits::mcp_restarts_max;
  std::chrono::milliseconds restart_cooldown{60'000};
  // After a server exited, how long to wait for the end of its stdout.
  std::chrono::milliseconds drain_after_exit{2'000};
  // Shutdown (and eviction): from closing a server's stdin to SIGKILL.
  std::chrono::milliseconds shutdown_grace{2'000};
  // Shutdown() waits this long at most, after the grace, for children to be reaped.
  std::chrono::milliseconds shutdown_reap_timeout{5'000};
};

// Thread-safe: Call() and Shutdown() may be called from any thread. Lifecycle: construct,
// Call() any number of times, Shutdown() (after which Call() answers kFailed), destroy;
// the destructor calls Shutdown(). `done` runs on the server's strand (or the executor),
// on a thread running the io executor, never inside Call(); it must not call Shutdown().
// Shutdown() blocks until every `done` has returned and the servers have been reaped, so
// some other thread must be running the executor meanwhile.
//
// Like ShellExecutor: nothing else may reap children, and SIGPIPE is ignored if it is at
// its default disposition (a server that closes stdin must not kill the engine).
class McpExecutor final : public ToolExecutor {
 public:
  // `executor` must outlive the McpExecutor.
  McpExecutor(boost::asio::any_io_executor executor, McpOptions options = {});
  ~McpExecutor() override;
  McpExecutor(const McpExecutor&) = delete;
  McpExecutor& operator=(const McpExecutor&) = delete;

  void Call(ToolRequest request, ToolCallback done) override;
  void Shutdown() override;

  // Calls started whose `done` has not returned yet (for tests and metrics).
  size_t InFlight() const;
  // Server processes not yet reaped (for tests and metrics).
  size_t LiveChildren() const;

  struct Shared;  // state shared with the servers; defined in mcp_server.h

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace cairn::engine::process
