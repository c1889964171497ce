// ChildProcess: one child process, driven asynchronously on an Asio strand.
//
// Spawned with posix_spawn(3) in a new session, hence in a new process group whose id is
// the child's pid (and detached from the engine's terminal: Ctrl-C and hang-ups never reach
// it), with default signal dispositions, an empty signal mask and every descriptor above 2
// closed. stdin, stdout and stderr are pipes (or /dev/null); the parent's ends are
// close-on-exec, non-blocking and driven as boost::asio::posix::stream_descriptor. The
// exit is watched through a pidfd (pidfd_open(2), Linux >= 5.3) with async_wait and then
// reaped with waitpid. No thread ever blocks on a child.
//
// Lifecycle: Spawn() -> Start(handlers) -> on_stdout / on_stderr any number of times ->
// on_finished exactly once, when the child has been reaped and both output pipes reached
// end of file (or Spec::drain_after_exit passed since the exit: a process that left the
// group may still hold them). When the leader exits, whatever is left of its process group
// is SIGKILLed first (unless Spec::kill_group_on_exit is false), so that an awaited command
// leaves nothing running behind it. The object keeps itself alive through its pending
// operations until on_finished has been called; owners hold a shared_ptr and may drop it
// at any time (the child is still reaped).
//
// Threads: Start, Write, CloseStdin and pending_write_bytes must run on the strand given to
// Spawn, and every handler is called on it. Kill and pid are thread-safe.
//
// Process groups and pid reuse: the group is signalled only while the leader has not been
// reaped. A zombie leader keeps its pid, and so its group id, from being reused; once it
// is reaped a kill(-pgid) could hit an unrelated group.
//
// Needs from the rest of the process: nobody else reaps children (no waitpid(-1), SIGCHLD
// not set to SIG_IGN), and SIGPIPE is ignored (EnsureSigpipeIgnored) so that writing to a
// child that closed its stdin gives EPIPE instead of killing the engine.
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cairn::engine::process {

using Strand = boost::asio::strand<boost::asio::any_io_executor>;

// How a child ended.
struct ExitStatus {
  int code = 0;       // the exit code, when it exited
  int signal = 0;     // the signal that killed it, when one did (then code is 0)
  bool known = true;  // false if the status was lost (someone else reaped the child)

  bool success() const { return known && signal == 0 && code == 0; }
  // The exit code, or 128 + the signal like a shell's $?; -1 when unknown.
  int ShellCode() const;
  // "exited with code 3", "was killed by signal 9 (SIGKILL)", "ended with an unknown status".
  std::string Describe() const;
};

class ChildProcess;

// The live children of one executor, so that Shutdown can kill them all and wait until
// each has been reaped. Thread-safe.
class ChildSet {
 public:
  // SIGKILLs the process group of every child not yet reaped.
  void KillAll();
  // True once every child has been reaped; false if `timeout` passed first.
  bool WaitAllReaped(std::chrono::milliseconds timeout);
  size_t size() const;

 private:
  friend class ChildProcess;
  void Add(ChildProcess* child, std::weak_ptr<ChildProcess> weak);
  void Remove(ChildProcess* child);

  mutable std::mutex mutex_;
  std::condition_variable all_reaped_;
  std::map<ChildProcess*, std::weak_ptr<ChildProcess>> children_;
};

class ChildProcess : public std::enable_shared_from_this<ChildProcess> {
 public:
  struct Spec {
    // Run as is when it contains a '/', otherwise looked up in the engine's $PATH.
    std::string program;
    std::vector<std::string> argv;         // argv[0] first; not empty
    std::vector<std::string> environment;  // "NAME=value", the child's whole environment
    bool stdin_pipe = true;                // false: stdin is /dev/null
    bool output_pipes = true;              // false: stdout and stderr go to /dev/null
    bool kill_group_on_exit = true;
    std::chrono::milliseconds drain_after_exit{2'000};
  };

  struct Handlers {
    std::function<void(std::string_view bytes)> on_stdout;
    std::function<void(std::string_view bytes)> on_stderr;
    std::function<void(const ExitStatus& status)> on_finished;
  };

  // Starts the child; it runs at once, but nothing is read or reaped before Start().
  // Errors: kNotFound (no such program), kFailedPrecondition (not executable),
  // kUnavailable (out of processes, descriptors or memory: may work later), kInternal
  // (pidfd_open unavailable: Linux < 5.3); each message names the program and the cause.
  // The child is registered in `children` until it has been reaped.
  static Result<std::shared_ptr<ChildProcess>> Spawn(const Strand& strand, const Spec& spec,
                                                     std::shared_ptr<ChildSet> children);

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Begins reading the output and watching for the exit. Call once, on the strand.
  void Start(Handlers handlers);
  // Queues bytes for the child's stdin, written in order. Dropped silently once the child
  // closed its end or CloseStdin was called. On the strand.
  void Write(std::string bytes);
  // Closes stdin once the queued bytes are written. On the strand.
  void CloseStdin();
  // Bytes queued for stdin and not yet taken by the child. On the strand.
  size_t pending_write_bytes() const { return pending_write_bytes_; }

  // SIGKILLs the child's process group (and the child itself, should it have left the
  // group) if it has not been reaped yet. Thread-safe; on_finished still follows.
  void Kill();
  pid_t pid() const { return pid_; }

  struct Private;  // lets Spawn use the constructor through make_shared

  ChildProcess(Private, const Strand& strand, pid_t pid, int pidfd, int stdin_fd, int stdout_fd,
               int stderr_fd, const Spec& spec, std::shared_ptr<ChildSet> children);

 private:
  enum class Stream : uint8_t { kStdout = 0, kStderr = 1 };

  void ReadSome(Stream stream);
  void OnRead(Stream stream, const boost::system::error_code& error, size_t bytes);
  void WaitForExit();
  void OnExitReady(const boost::system::error_code& error);
  bool TryReap();
  void WriteNext();
  void OnWritten(const boost::system::error_code& error);
  void CheckFinished();

  Strand strand_;
  const pid_t pid_;
  const bool kill_group_on_exit_;
  const std::chrono::milliseconds drain_after_exit_;
  std::shared_ptr<ChildSet> children_;

  mutable std::mutex mutex_;  // guards reaped_ and the signal/reap sequence
  bool reaped_ = false;

  // The rest is used on the strand only.
  boost::asio::posix::stream_descriptor pidfd_;
  boost::asio::posix::stream_descriptor stdin_;
  std::array<boost::asio::posix::stream_descriptor, 2> outputs_;  // stdout, stderr
  std::array<bool, 2> output_open_{false, false};                 // a read may still complete
  std::array<std::array<char, 64 << 10>, 2> buffers_{};
  boost::asio::steady_timer drain_timer_;
  Handlers handlers_;
  ExitStatus exit_status_;
  bool started_ = false;
  bool exited_ = false;
  bool finished_ = false;
  std::deque<std::string> write_queue_;
  size_t pending_write_bytes_ = 0;
  bool writing_ = false;
  bool close_stdin_requested_ = false;
};

// Environment variables by name (sorted, so children see a deterministic order).
using Environment = std::map<std::string, std::string, std::less<>>;

// The engine's own environment: the base that commands and MCP servers inherit. Read it
// once, at construction (it is not safe against a concurrent setenv(3)).
Environment EnvironmentFromProcess();

// "NAME=value" entries for ChildProcess::Spec::environment.
std::vector<std::string> EnvironmentEntries(const Environment& environment);

// Ignores SIGPIPE in this process if it is at its default (terminate) disposition, so that
// writing to a pipe whose reader is gone fails with EPIPE. Children still start with the
// default disposition. Thread-safe; idempotent.
void EnsureSigpipeIgnored();

}  // namespace cairn::engine::process
