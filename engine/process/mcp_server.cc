#include "engine/process/mcp_server.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

namespace cairn::engine::process {
namespace {

constexpr size_t kGarbageExcerptBytesMax = 200;

ToolResponse Unavailable(std::string detail) {
  return ToolResponse::Failed(error_type::kRuntime, 503, "MCP server unavailable",
                              std::move(detail));
}

std::string Millis(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

McpExecutor::Shared::Shared(boost::asio::any_io_executor io, McpOptions opts)
    : executor(std::move(io)),
      options(std::move(opts)),
      base_environment(options.environment ? *options.environment : EnvironmentFromProcess()),
      default_client_info({{"name", options.client_name},
                           {"version", options.client_version.empty() ? std::string(CAIRN_VERSION)
                                                                      : options.client_version}}) {}

McpServer::McpServer(std::shared_ptr<McpExecutor::Shared> shared, McpServerConfig config)
    : shared_(std::move(shared)),
      config_(std::move(config)),
      strand_(boost::asio::make_strand(shared_->executor)),
      lines_(shared_->options.message_bytes_max),
      stderr_tail_(shared_->options.stderr_tail_bytes_max),
      close_timer_(strand_) {}

void McpServer::Submit(McpRequest request, std::string idempotency_key,
                       std::chrono::milliseconds timeout, ToolCallback done) {
  if (state_ == State::kClosed) {
    Deliver(
        std::move(done),
        ToolResponse::Failed(error_type::kRuntime, 503, "MCP executor shutting down",
                             "MCP server " + config_.name + ": the MCP executor is shutting down"));
    return;
  }
  if (pending_.size() >= shared_->options.requests_per_server_max) {
    Deliver(std::move(done),
            Unavailable("MCP server " + config_.name + " already has " +
                        std::to_string(pending_.size()) + " requests waiting; the limit is " +
                        std::to_string(shared_->options.requests_per_server_max)));
    return;
  }
  if (state_ == State::kStopped) {
    if (RefusingRestart()) {
      auto left =
          std::chrono::ceil<std::chrono::seconds>(refuse_until_ - std::chrono::steady_clock::now());
      Deliver(std::move(done),
              Unavailable(
                  "MCP server " + config_.name + " failed " + std::to_string(failures_in_a_row_) +
                  " times in a row without answering a call (last: " + last_failure_ +
                  "); not restarting it for another " + std::to_string(left.count()) + " s"));
      return;
    }
    Status started = StartProcess();
    if (!started.ok()) {
      std::string reason = "MCP server " + config_.name + ": " + started.message();
      RecordFailure(reason);
      Deliver(std::move(done), ToolResponse::Failed(error_type::kRuntime, 502,
                                                    "MCP server could not be started", reason));
      return;
    }
  }
  uint64_t id = next_id_++;
  Pending& pending = pending_[id];
  pending.request = std::move(request);
  pending.idempotency_key = std::move(idempotency_key);
  pending.timeout = timeout;
  pending.done = std::move(done);
  pending.timer = std::make_unique<boost::asio::steady_timer>(strand_, timeout);
  pending.timer->async_wait([self = shared_from_this(), id](const boost::system::error_code& e) {
    if (!e) self->OnTimeout(id);
  });
  if (state_ == State::kReady) Send(id);
}

Status McpServer::StartProcess() {
  ChildProcess::Spec spec;
  spec.program = config_.command;
  spec.argv.push_back(config_.command);
  spec.argv.insert(spec.argv.end(), config_.arguments.begin(), config_.arguments.end());
  Environment environment = shared_->base_environment;
  for (const auto& [name, value] : config_.environment) environment.insert_or_assign(name, value);
  spec.environment = EnvironmentEntries(environment);
  spec.drain_after_exit = shared_->options.drain_after_exit;
  CAIRN_ASSIGN_OR_RETURN(child_, ChildProcess::Spawn(strand_, spec, shared_->children));

  uint64_t generation = ++generation_;
  lines_.Clear();
  stderr_tail_.Clear();
  std::weak_ptr<McpServer> weak = weak_from_this();
  ChildProcess::Handlers handlers;
  handlers.on_stdout = [weak, generation](std::string_view bytes) {
    if (auto self = weak.lock()) self->OnStdout(generation, bytes);
  };
  handlers.on_stderr = [weak, generation](std::string_view bytes) {
    auto self = weak.lock();
    if (self && self->generation_ == generation) self->stderr_tail_.Append(bytes);
  };
  handlers.on_finished = [weak, generation](const ExitStatus& exit) {
    if (auto self = weak.lock()) self->OnFinished(generation, exit);
  };
  child_->Start(std::move(handlers));
  spdlog::debug("MCP server {} started, pid {}", config_.name, child_->pid());

  initialize_id_ = next_id_++;
  Write(RpcRequest(initialize_id_, "initialize", InitializeParams(config_)));
  state_ = State::kStarting;
  return Status::Ok();
}

void McpServer::Write(const Json& message) {
  // DumpJson escapes control characters inside strings: one message is one line.
  if (child_) child_->Write(DumpJson(message) + "\n");
}

void McpServer::Send(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& pending = it->second;
  size_t backlog = child_->pending_write_bytes();
  if (backlog > shared_->options.message_bytes_max) {
    Pending failed = std::move(pending);
    pending_.erase(it);
    Deliver(std::move(failed.done),
            Unavailable("MCP server " + config_.name + " is not reading its input: " +
                        std::to_string(backlog) + " bytes are waiting to be written"));
    return;
  }
  Write(
      RpcRequest(id, pending.request.method, WireParams(pending.request, pending.idempotency_key)));
  pending.sent = true;
  pending.received_when_sent = messages_received_;
}

void McpServer::OnStdout(uint64_t generation, std::string_view bytes) {
  if (generation != generation_ || state_ == State::kClosed) return;
  Status status = lines_.Append(
      bytes, [this, generation](std::string_view line) { return OnLine(generation, line); });
  if (!status.ok() && generation == generation_) {
    Fail("MCP server " + config_.name + " wrote " + status.message());
  }
}

bool McpServer::OnLine(uint64_t generation, std::string_view line) {
  if (generation != generation_ || state_ == State::kClosed) return false;
  if (IsBlank(line)) return true;
  Result<std::vector<RpcMessage>> messages = ParseRpcLine(line, shared_->options.message_bytes_max);
  if (!messages.ok()) {
    Fail("MCP server " + config_.name + " wrote a line that is not JSON-RPC (" +
         messages.status().message() + "): " + Excerpt(line, kGarbageExcerptBytesMax));
    return false;
  }
  for (const RpcMessage& message : *messages) {
    ++messages_received_;
    OnMessage(message);
    if (generation != generation_ || state_ == State::kClosed) return false;
  }
  return true;
}

void McpServer::OnMessage(const RpcMessage& message) {
  switch (message.kind) {
    case RpcMessage::Kind::kResponse:
      OnResponse(message);
      return;
    case RpcMessage::Kind::kRequest:
      // cairn declares no client capabilities: only ping is expected.
      if (message.method == "ping") {
        Write(RpcResult(message.id, Json::object()));
      } else {
        Write(RpcError(message.id, kRpcMethodNotFound,
                       "cairn does not offer '" + message.method + "'"));
      }
      return;
    case RpcMessage::Kind::kNotification:
      spdlog::debug("MCP server {}: notification {}", config_.name, message.method);
      return;
  }
}

void McpServer::OnResponse(const RpcMessage& message) {
  if (!message.id.is_number_unsigned()) {
    spdlog::debug("MCP server {}: response with an id cairn never sent: {}", config_.name,
                  DumpJson(message.id));
    return;
  }
  uint64_t id = message.id.get<uint64_t>();
  if (state_ == State::kStarting && id == initialize_id_) {
    OnInitializeResponse(message);
    return;
  }
  auto it = pending_.find(id);
  if (it == pending_.end() || !it->second.sent) {
    spdlog::debug("MCP server {}: dropped a late response to request {}", config_.name, id);
    return;
  }
  Pending answered = std::move(it->second);
  pending_.erase(it);
  failures_in_a_row_ = 0;  // the server works
  Deliver(std::move(answered.done), McpResult(answered.request, message));
}

void McpServer::OnInitializeResponse(const RpcMessage& message) {
  if (!message.error.is_null()) {
    Fail("MCP server " + config_.name + " refused initialize with " + RpcErrorText(message.error));
    return;
  }
  if (!message.result.is_object()) {
    Fail("MCP server " + config_.name + " answered initialize with a " +
         std::string(JsonTypeName(message.result)) + " instead of an object");
    return;
  }
  spdlog::debug("MCP server {} initialized: {}", config_.name,
                Excerpt(DumpJson(message.result), 500));
  state_ = State::kReady;
  Write(RpcNotification("notifications/initialized", nullptr));
  std::vector<uint64_t> waiting;
  for (const auto& [id, pending] : pending_) {
    if (!pending.sent) waiting.push_back(id);
  }
  for (uint64_t id : waiting) Send(id);
}

void McpServer::OnFinished(uint64_t generation, const ExitStatus& exit) {
  if (generation != generation_) return;  // a process replaced earlier
  if (state_ == State::kClosed) {
    close_timer_.cancel();  // it exited on its own once its stdin closed
    return;
  }
  Fail("MCP server " + config_.name + " " + exit.Describe());
}

void McpServer::OnTimeout(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending expired = std::move(it->second);
  pending_.erase(it);
  bool starting = state_ == State::kStarting;
  if (expired.sent) {
    Write(RpcNotification(
        "notifications/cancelled",
        {{"requestId", id}, {"reason", "timed out after " + Millis(expired.timeout)}}));
  }
  // Hung: silent since this request went out (or still not initialized), and nobody else
  // waits on it. A busy server with other traffic is left alone.
  bool hung = pending_.empty() &&
              (starting || (expired.sent && messages_received_ == expired.received_when_sent));
  std::string detail = "MCP server " + config_.name + " did not answer " +
                       DescribeRequest(expired.request) + " within " + Millis(expired.timeout);
  if (starting) detail += " (it had not finished initialize)";
  if (hung) detail += "; the server was killed";
  Deliver(std::move(expired.done), ToolResponse::TimedOut(detail));
  if (hung && state_ != State::kClosed) {
    Fail("MCP server " + config_.name +
         (starting ? " did not answer initialize" : " stopped answering") + " within " +
         Millis(expired.timeout));
  }
}

void McpServer::Fail(const std::string& reason) {
  ++generation_;
  if (child_) {
    child_->Kill();  // still reaped by the ChildProcess itself
    child_.reset();
  }
  state_ = State::kStopped;
  RecordFailure(reason);
  std::string stderr_text = stderr_tail_.Text();
  std::string stderr_suffix = stderr_text.empty() ? "" : "; stderr: " + stderr_text;
  std::map<uint64_t, Pending> failed = std::move(pending_);
  pending_.clear();
  for (auto& [id, pending] : failed) {
    Deliver(std::move(pending.done),
            ToolResponse::Failed(
                error_type::kRuntime, 502, "MCP server failed",
                reason + " during " + DescribeRequest(pending.request) + stderr_suffix));
  }
}

void McpServer::RecordFailure(const std::string& reason) {
  ++failures_in_a_row_;
  last_failure_ = reason;
  spdlog::warn("{} (failure {} in a row)", reason, failures_in_a_row_);
  if (failures_in_a_row_ > shared_->options.restarts_max) {
    refuse_until_ = std::chrono::steady_clock::now() + shared_->options.restart_cooldown;
  }
}

bool McpServer::RefusingRestart() const {
  return failures_in_a_row_ > shared_->options.restarts_max &&
         std::chrono::steady_clock::now() < refuse_until_;
}

void McpServer::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  std::map<uint64_t, Pending> stopped = std::move(pending_);
  pending_.clear();
  for (auto& [id, pending] : stopped) {
    Deliver(std::move(pending.done),
            ToolResponse::Failed(error_type::kRuntime, 503, "MCP executor shutting down",
                                 "MCP server " + config_.name + ": " +
                                     DescribeRequest(pending.request) +
                                     " was stopped: the MCP executor is shutting down"));
  }
  if (!child_) return;
  child_->CloseStdin();  // a stdio server exits when its input ends
  close_timer_.expires_after(shared_->options.shutdown_grace);
  close_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (!error && self->child_) self->child_->Kill();
  });
}

void McpServer::Deliver(ToolCallback done, ToolResponse response) {
  response.error.detail = SanitizeUtf8(response.error.detail);
  // Idle before `done` runs: a caller that calls again from `done` must not find this
  // server busy. Shutdown, though, waits for `done` to return.
  outstanding.fetch_sub(1);
  done(std::move(response));
  shared_->outstanding.Leave();
}

}  // namespace cairn::engine::process
