// ShellExecutor: the ToolExecutor for `run.shell` tasks and catalog "command" tools.
//
// Each call runs `/bin/sh -c COMMAND sh ARG1 ARG2 ...` as a ChildProcess (its own process
// group, pipes driven by Asio, exit watched through a pidfd) on its own strand of the
// executor it was given; no thread is blocked per call. Arguments and results are
// described in shell_command.h. A catalog "command" tool is the same call with `stdin` set
// to the tool's JSON arguments and `return: stdout` (its JSON result is parsed).
//
// Bounds: at most ShellOptions::processes_max commands run at once; further calls wait in
// a FIFO of at most queued_calls_max, and their timeout runs while they wait. What the
// call returns is captured up to stdout_bytes_max (stdout for return stdout|all, stderr
// too for stderr|all, the two together for all); more kills the process group and fails
// the call. Output that is not returned is read and dropped, except the last
// stderr_tail_bytes_max bytes of stderr, kept for error details.
//
// When the command's shell exits, whatever else is left in its process group is SIGKILLed:
// an awaited command leaves nothing running behind it.
//
// `await: false`: the command is started detached (stdout and stderr to /dev/null, stdin
// written in the background) and the call answers kOk with null at once. The executor
// still watches its pidfd and reaps it when it exits, so no zombie is left; there is no
// timeout. At most detached_max such commands live at once. Shutdown() SIGKILLs them too
// (their process group, while the shell that started it is still running).
//
// Outcomes (ToolResponse):
//   ran to its end          per shell_command.h (kOk, or kFailed runtime 500 "Command
//                           failed" naming the exit code or signal and the stderr tail)
//   bad arguments           kFailed configuration 400, detail names the field
//   could not start         kFailed runtime 500 "Command could not be started" (cause)
//   output over the cap     kFailed runtime 500 "Command output too large"
//   too many waiting/detached
//                           kFailed runtime 503 "Too many commands"
//   request.timeout reached kTimedOut; the process group was SIGKILLed
//   Shutdown() or Call() after it
//                           kFailed runtime 503 "Shell executor shutting down"
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "base/limits.h"
#include "engine/process/child_process.h"
#include "engine/tools/tool.h"

namespace cairn::engine::process {

// The title of the failure when a command's output is over its cap (callers that react to
// it compare with this, never with a copy).
inline constexpr const char* kOutputTooLargeTitle = "Command output too large";

struct ShellOptions {
  std::string shell = "/bin/sh";
  // The environment commands inherit (a command's own `environment` and the CAIRN_*
  // variables go on top). nullopt: the engine's own, read at construction.
  std::optional<Environment> environment;
  size_t processes_max = 32;       // running at once; > 0
  size_t queued_calls_max = 1024;  // waiting for a process slot
  size_t detached_max = 64;        // `await: false` commands alive at once
  size_t output_bytes_max = limits::tool_output_bytes_max;
  size_t stderr_tail_bytes_max = limits::tool_stderr_bytes_max;
  // After the shell exited and its group was killed, how long to wait for the end of its
  // output (a process that escaped the group may hold the pipes open).
  std::chrono::milliseconds drain_after_exit{2'000};
  // Shutdown() waits this long at most for killed children to be reaped.
  std::chrono::milliseconds shutdown_reap_timeout{5'000};
};

// Thread-safe: Call() and Shutdown() may be called from any thread. Lifecycle: construct,
// Call() any number of times, Shutdown() (after which Call() answers kFailed), destroy;
// the destructor calls Shutdown(). `done` runs on the call's strand, on a thread running
// the io executor, never inside Call(); it must not call Shutdown() (it would wait for
// itself). Shutdown() blocks until every `done` has returned, so some other thread must
// be running the executor meanwhile.
//
// The process must not reap children behind the executor's back (waitpid(-1), SIGCHLD
// set to SIG_IGN). The constructor ignores SIGPIPE if it is at its default disposition
// (EnsureSigpipeIgnored): a child that closes its stdin must not kill the engine.
class ShellExecutor final : public ToolExecutor {
 public:
  // `executor` must outlive the ShellExecutor.
  ShellExecutor(boost::asio::any_io_executor executor, ShellOptions options = {});
  ~ShellExecutor() override;
  ShellExecutor(const ShellExecutor&) = delete;
  ShellExecutor& operator=(const ShellExecutor&) = delete;

  void Call(ToolRequest request, ToolCallback done) override;
  void Shutdown() override;

  // Calls started whose `done` has not returned yet (for tests and metrics).
  size_t InFlight() const;
  // Child processes not yet reaped, detached ones included (for tests and metrics).
  size_t LiveChildren() const;

  struct Shared;  // state shared with the calls in flight; defined in the .cc

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace cairn::engine::process
