// McpServer: one MCP server (a process, restarted as needed) and the calls waiting on it.
// An implementation detail of McpExecutor (see mcp_executor.h for the behaviour).
//
// Lifecycle: created by the executor on the first call for its key; Submit() any number of
// times; Close() when the executor shuts down or evicts it. Its process goes through
// kStopped -> kStarting (initialize sent) -> kReady -> kStopped (died, garbage, hung) ...;
// kClosed is final.
//
// Threads: everything but the constructor, strand() and `outstanding` runs on strand().
// `outstanding` and `last_use` are read and written by the executor under Shared::mutex
// (outstanding is decremented on the strand, hence atomic).
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "engine/process/child_process.h"
#include "engine/process/json_rpc.h"
#include "engine/process/mcp_call.h"
#include "engine/process/mcp_executor.h"
#include "engine/process/output_text.h"
#include "engine/process/outstanding_calls.h"

namespace cairn::engine::process {

class McpServer;

struct McpExecutor::Shared {
  Shared(boost::asio::any_io_executor io, McpOptions opts);

  const boost::asio::any_io_executor executor;
  const McpOptions options;
  const Environment base_environment;
  const Json default_client_info;
  const std::shared_ptr<ChildSet> children = std::make_shared<ChildSet>();
  OutstandingCalls outstanding;

  std::mutex mutex;
  bool shutting_down = false;                                 // guarded by mutex
  std::map<std::string, std::shared_ptr<McpServer>> servers;  // by key; guarded
  uint64_t use_clock = 0;                                     // guarded
};

class McpServer : public std::enable_shared_from_this<McpServer> {
 public:
  McpServer(std::shared_ptr<McpExecutor::Shared> shared, McpServerConfig config);
  McpServer(const McpServer&) = delete;
  McpServer& operator=(const McpServer&) = delete;

  const Strand& strand() const { return strand_; }

  // Starts the process if needed, sends the request (or queues it until the handshake is
  // done), and answers `done` exactly once. The executor counted the call in
  // `outstanding` and in Shared::outstanding; both are decremented after `done` returns.
  void Submit(McpRequest request, std::string idempotency_key, std::chrono::milliseconds timeout,
              ToolCallback done);
  // Fails every waiting call ("shutting down"), closes the server's stdin and SIGKILLs
  // its process group after McpOptions::shutdown_grace unless it exited by then.
  void Close();

  std::atomic<size_t> outstanding{0};
  uint64_t last_use = 0;  // Shared::use_clock at the last call; guarded by Shared::mutex

 private:
  enum class State : uint8_t { kStopped = 0, kStarting, kReady, kClosed };

  struct Pending {
    McpRequest request;
    std::string idempotency_key;
    std::chrono::milliseconds timeout{0};
    ToolCallback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
    bool sent = false;
    uint64_t received_when_sent = 0;  // messages_received_ when the request went out
  };

  Status StartProcess();
  void Send(uint64_t id);
  void Write(const Json& message);
  void OnStdout(uint64_t generation, std::string_view bytes);
  bool OnLine(uint64_t generation, std::string_view line);
  void OnMessage(const RpcMessage& message);
  void OnResponse(const RpcMessage& message);
  void OnInitializeResponse(const RpcMessage& message);
  void OnFinished(uint64_t generation, const ExitStatus& exit);
  void OnTimeout(uint64_t id);
  // The process is no good: kill it, fail every waiting call with `reason`, count a
  // failure. The next Submit starts a new process.
  void Fail(const std::string& reason);
  void RecordFailure(const std::string& reason);
  bool RefusingRestart() const;
  void Deliver(ToolCallback done, ToolResponse response);

  const std::shared_ptr<McpExecutor::Shared> shared_;
  const McpServerConfig config_;
  const Strand strand_;

  State state_ = State::kStopped;
  std::shared_ptr<ChildProcess> child_;
  uint64_t generation_ = 0;  // bumped per process and on Fail: stale callbacks are ignored
  LineSplitter lines_;
  TailBuffer stderr_tail_;
  uint64_t next_id_ = 1;
  uint64_t initialize_id_ = 0;
  uint64_t messages_received_ = 0;
  std::map<uint64_t, Pending> pending_;  // by JSON-RPC id, in submission order
  uint32_t failures_in_a_row_ = 0;
  std::string last_failure_;
  std::chrono::steady_clock::time_point refuse_until_{};
  boost::asio::steady_timer close_timer_;
};

}  // namespace cairn::engine::process
