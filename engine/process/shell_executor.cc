#include "engine/process/shell_executor.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "engine/process/output_text.h"
#include "engine/process/outstanding_calls.h"
#include "engine/process/shell_command.h"

namespace cairn::engine::process {
namespace {

class ShellCall;

ToolResponse ShuttingDown(const std::string& what) {
  return ToolResponse::Failed(error_type::kRuntime, 503, "Shell executor shutting down",
                              what + ": the shell executor is shutting down");
}

ToolResponse TooManyCommands(std::string detail) {
  return ToolResponse::Failed(error_type::kRuntime, 503, "Too many commands", std::move(detail));
}

}  // namespace

struct ShellExecutor::Shared {
  Shared(boost::asio::any_io_executor io, ShellOptions opts)
      : executor(std::move(io)),
        options(std::move(opts)),
        base_environment(options.environment ? *options.environment : EnvironmentFromProcess()) {}

  enum class Slot : uint8_t { kGranted, kQueued, kQueueFull };
  Slot AcquireSlot(const std::shared_ptr<ShellCall>& call);
  void ReleaseSlot();
  void Unqueue(const ShellCall* call);

  const boost::asio::any_io_executor executor;
  const ShellOptions options;
  const Environment base_environment;
  const std::shared_ptr<ChildSet> children = std::make_shared<ChildSet>();
  OutstandingCalls outstanding;

  std::mutex mutex;
  bool shutting_down = false;                            // guarded by mutex
  uint64_t next_call_id = 1;                             // guarded by mutex
  std::map<uint64_t, std::shared_ptr<ShellCall>> calls;  // not answered; guarded
  std::deque<std::shared_ptr<ShellCall>> waiting;        // for a slot; guarded
  size_t running = 0;                                    // slots held; guarded
  size_t detached = 0;                                   // guarded
};

namespace {

using Shared = ShellExecutor::Shared;

// One call, from Call() to its answer. Everything but the constructor runs on strand_.
class ShellCall : public std::enable_shared_from_this<ShellCall> {
 public:
  ShellCall(std::shared_ptr<Shared> shared, uint64_t id, ToolRequest request, ToolCallback done)
      : shared_(std::move(shared)),
        id_(id),
        strand_(boost::asio::make_strand(shared_->executor)),
        request_(std::move(request)),
        done_(std::move(done)),
        timer_(strand_),
        stderr_tail_(shared_->options.stderr_tail_bytes_max) {}

  const Strand& strand() const { return strand_; }

  void Begin();
  // Runs once a process slot is this call's.
  void StartProcess();
  // Shutdown: kill the process, answer "shutting down".
  void Cancel();

 private:
  void StartDetached();
  void OnTimeout();
  void OnOutput(std::string_view bytes, bool is_stderr);
  void OnFinished(const ExitStatus& exit);
  ChildProcess::Spec SpecFor(bool detached) const;
  void Finish(ToolResponse response);

  const std::shared_ptr<Shared> shared_;
  const uint64_t id_;
  const Strand strand_;
  const ToolRequest request_;
  ToolCallback done_;
  boost::asio::steady_timer timer_;
  ShellCommand command_;
  std::shared_ptr<ChildProcess> child_;
  std::string stdout_;
  std::string stderr_;  // all of it, when the answer needs it
  TailBuffer stderr_tail_;
  size_t captured_bytes_ = 0;
  bool holds_slot_ = false;
  bool answered_ = false;
};

void ShellCall::Begin() {
  if (answered_) return;
  Result<ShellCommand> parsed = ParseShellCommand(request_.arguments);
  if (!parsed.ok()) {
    Finish(ToolResponse::Failed(error_type::kConfiguration, 400, "Invalid shell arguments",
                                parsed.status().message()));
    return;
  }
  command_ = std::move(parsed).value();
  if (!command_.await) {
    StartDetached();
    return;
  }
  timer_.expires_after(request_.timeout);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (!error) self->OnTimeout();
  });
  switch (shared_->AcquireSlot(shared_from_this())) {
    case Shared::Slot::kGranted:
      StartProcess();
      break;
    case Shared::Slot::kQueued:
      break;
    case Shared::Slot::kQueueFull:
      Finish(TooManyCommands("command " + Quoted(command_.command) +
                             " was refused: " + std::to_string(shared_->options.queued_calls_max) +
                             " commands are already waiting for one of " +
                             std::to_string(shared_->options.processes_max) + " process slots"));
      break;
  }
}

ChildProcess::Spec ShellCall::SpecFor(bool detached) const {
  ChildProcess::Spec spec;
  spec.program = shared_->options.shell;
  spec.argv = ShellArgv(command_);
  spec.environment =
      EnvironmentEntries(ShellEnvironment(shared_->base_environment, command_, request_));
  spec.stdin_pipe = command_.stdin_bytes.has_value();
  spec.output_pipes = !detached;
  spec.kill_group_on_exit = !detached;
  spec.drain_after_exit = shared_->options.drain_after_exit;
  return spec;
}

void ShellCall::StartProcess() {
  holds_slot_ = true;
  if (answered_) {  // timed out or cancelled while the slot was on its way
    holds_slot_ = false;
    shared_->ReleaseSlot();
    return;
  }
  Result<std::shared_ptr<ChildProcess>> spawned =
      ChildProcess::Spawn(strand_, SpecFor(/*detached=*/false), shared_->children);
  if (!spawned.ok()) {
    Finish(ToolResponse::Failed(error_type::kRuntime, 500, "Command could not be started",
                                spawned.status().message()));
    return;
  }
  child_ = std::move(spawned).value();
  std::weak_ptr<ShellCall> weak = weak_from_this();
  child_->Start({
      .on_stdout =
          [weak](std::string_view bytes) {
            if (auto self = weak.lock()) self->OnOutput(bytes, /*is_stderr=*/false);
          },
      .on_stderr =
          [weak](std::string_view bytes) {
            if (auto self = weak.lock()) self->OnOutput(bytes, /*is_stderr=*/true);
          },
      .on_finished =
          [weak](const ExitStatus& exit) {
            if (auto self = weak.lock()) self->OnFinished(exit);
          },
  });
  if (command_.stdin_bytes) {
    child_->Write(std::move(*command_.stdin_bytes));
    child_->CloseStdin();
  }
}

void ShellCall::StartDetached() {
  bool refused = false;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    refused = shared_->detached >= shared_->options.detached_max;
    if (!refused) ++shared_->detached;
  }
  if (refused) {
    Finish(TooManyCommands("command " + Quoted(command_.command) +
                           " was refused: " + std::to_string(shared_->options.detached_max) +
                           " detached commands (await: false) are still running"));
    return;
  }
  Result<std::shared_ptr<ChildProcess>> spawned =
      ChildProcess::Spawn(strand_, SpecFor(/*detached=*/true), shared_->children);
  if (!spawned.ok()) {
    {
      std::lock_guard<std::mutex> lock(shared_->mutex);
      --shared_->detached;
    }
    Finish(ToolResponse::Failed(error_type::kRuntime, 500, "Command could not be started",
                                spawned.status().message()));
    return;
  }
  std::shared_ptr<ChildProcess> child = std::move(spawned).value();
  // The child keeps itself alive until it has been reaped; this only counts it out.
  ChildProcess::Handlers handlers;
  handlers.on_finished = [shared = shared_](const ExitStatus&) {
    std::lock_guard<std::mutex> lock(shared->mutex);
    --shared->detached;
  };
  child->Start(std::move(handlers));
  if (command_.stdin_bytes) {
    child->Write(std::move(*command_.stdin_bytes));
    child->CloseStdin();
  }
  bool shutting_down = false;
  {
    // Shutdown sets the flag before it kills every registered child: either it saw this
    // one, or this sees the flag.
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shutting_down = shared_->shutting_down;
  }
  if (shutting_down) {
    child->Kill();
    Finish(ShuttingDown("command " + Quoted(command_.command)));
    return;
  }
  Finish(ToolResponse::Ok(nullptr));
}

void ShellCall::OnOutput(std::string_view bytes, bool is_stderr) {
  if (answered_) return;
  if (is_stderr) stderr_tail_.Append(bytes);
  bool keep = is_stderr ? NeedsFullStderr(command_.return_mode)
                        : command_.return_mode == ReturnMode::kStdout ||
                              command_.return_mode == ReturnMode::kAll;
  if (!keep) return;
  if (captured_bytes_ + bytes.size() > shared_->options.output_bytes_max) {
    child_->Kill();
    Finish(ToolResponse::Failed(error_type::kRuntime, 500, kOutputTooLargeTitle,
                                "command " + Quoted(command_.command) + " wrote more than " +
                                    std::to_string(shared_->options.output_bytes_max) +
                                    " bytes to " + (is_stderr ? "stderr" : "stdout") +
                                    "; its process group was killed"));
    return;
  }
  captured_bytes_ += bytes.size();
  (is_stderr ? stderr_ : stdout_).append(bytes);
}

void ShellCall::OnFinished(const ExitStatus& exit) {
  if (answered_) return;
  std::string stderr_text =
      NeedsFullStderr(command_.return_mode) ? std::move(stderr_) : stderr_tail_.Text();
  Finish(ShellResult(command_, exit, stdout_, stderr_text, shared_->options.stderr_tail_bytes_max));
}

void ShellCall::OnTimeout() {
  if (answered_) return;
  std::string what = "command " + Quoted(command_.command);
  std::string millis = std::to_string(request_.timeout.count());
  if (child_) {
    child_->Kill();
    Finish(ToolResponse::TimedOut(what + " did not finish within " + millis +
                                  " ms; its process group was killed"));
  } else {
    Finish(ToolResponse::TimedOut(what + " did not start within " + millis + " ms: all " +
                                  std::to_string(shared_->options.processes_max) +
                                  " process slots stayed busy"));
  }
}

void ShellCall::Cancel() {
  if (answered_) return;
  if (child_) child_->Kill();
  Finish(ShuttingDown(command_.command.empty() ? std::string("the command")
                                               : "command " + Quoted(command_.command)));
}

void ShellCall::Finish(ToolResponse response) {
  if (answered_) return;
  answered_ = true;
  timer_.cancel();
  if (holds_slot_) {
    holds_slot_ = false;
    shared_->ReleaseSlot();
  } else {
    shared_->Unqueue(this);
  }
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->calls.erase(id_);
  }
  // Details quote the command and its output: keep them valid UTF-8.
  response.error.detail = SanitizeUtf8(response.error.detail);
  ToolCallback done = std::move(done_);
  done(std::move(response));
  shared_->outstanding.Leave();
}

}  // namespace

ShellExecutor::Shared::Slot ShellExecutor::Shared::AcquireSlot(
    const std::shared_ptr<ShellCall>& call) {
  std::lock_guard<std::mutex> lock(mutex);
  if (running < options.processes_max) {
    ++running;
    return Slot::kGranted;
  }
  if (waiting.size() >= options.queued_calls_max) return Slot::kQueueFull;
  waiting.push_back(call);
  return Slot::kQueued;
}

void ShellExecutor::Shared::ReleaseSlot() {
  std::shared_ptr<ShellCall> next;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (waiting.empty() || shutting_down) {
      --running;
      return;
    }
    next = std::move(waiting.front());  // the slot passes to it
    waiting.pop_front();
  }
  boost::asio::post(next->strand(), [next] { next->StartProcess(); });
}

void ShellExecutor::Shared::Unqueue(const ShellCall* call) {
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = waiting.begin(); it != waiting.end(); ++it) {
    if (it->get() == call) {
      waiting.erase(it);
      return;
    }
  }
}

ShellExecutor::ShellExecutor(boost::asio::any_io_executor executor, ShellOptions options)
    : shared_(std::make_shared<Shared>(std::move(executor), std::move(options))) {
  CAIRN_ASSERT(shared_->options.processes_max > 0, "ShellOptions::processes_max must be > 0");
  EnsureSigpipeIgnored();
}

ShellExecutor::~ShellExecutor() { Shutdown(); }

void ShellExecutor::Call(ToolRequest request, ToolCallback done) {
  if (!shared_->outstanding.Enter()) {
    boost::asio::post(shared_->executor,
                      [done = std::move(done)] { done(ShuttingDown("the command")); });
    return;
  }
  std::shared_ptr<ShellCall> call;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (!shared_->shutting_down) {
      uint64_t id = shared_->next_call_id++;
      call = std::make_shared<ShellCall>(shared_, id, std::move(request), std::move(done));
      shared_->calls.emplace(id, call);
    }
  }
  if (!call) {  // Shutdown began between Enter() and here
    boost::asio::post(shared_->executor, [shared = shared_, done = std::move(done)] {
      done(ShuttingDown("the command"));
      shared->outstanding.Leave();
    });
    return;
  }
  boost::asio::post(call->strand(), [call] { call->Begin(); });
}

void ShellExecutor::Shutdown() {
  shared_->outstanding.Close();
  std::vector<std::shared_ptr<ShellCall>> calls;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->shutting_down = true;
    for (const auto& [id, call] : shared_->calls) calls.push_back(call);
  }
  for (const auto& call : calls) {
    boost::asio::post(call->strand(), [call] { call->Cancel(); });
  }
  shared_->children->KillAll();  // detached commands too
  shared_->outstanding.WaitIdle();
  if (!shared_->children->WaitAllReaped(shared_->options.shutdown_reap_timeout)) {
    spdlog::warn("shell executor: {} child processes not reaped {} ms after SIGKILL",
                 shared_->children->size(), shared_->options.shutdown_reap_timeout.count());
  }
}

size_t ShellExecutor::InFlight() const { return shared_->outstanding.count(); }

size_t ShellExecutor::LiveChildren() const { return shared_->children->size(); }

}  // namespace cairn::engine::process
