#include "engine/process/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

extern char** environ;  // NOLINT: POSIX

namespace cairn::engine::process {
namespace {

// Closes a descriptor on scope exit unless released.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.Release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

std::string ErrnoText(int error) { return std::strerror(error); }  // NOLINT: glibc's is MT-safe

// A close-on-exec pipe whose ends are both above 2: posix_spawn's dup2 onto 0..2 must
// never be a no-op that leaves close-on-exec set.
Status MakePipe(Pipe* pipe) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    int error = errno;
    return Status::Unavailable("pipe2 failed: " + ErrnoText(error));
  }
  pipe->read = UniqueFd(fds[0]);
  pipe->write = UniqueFd(fds[1]);
  for (UniqueFd* end : {&pipe->read, &pipe->write}) {
    if (end->get() > 2) continue;
    int moved = ::fcntl(end->get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) {
      int error = errno;
      return Status::Unavailable("fcntl(F_DUPFD_CLOEXEC) failed: " + ErrnoText(error));
    }
    *end = UniqueFd(moved);
  }
  return Status::Ok();
}

Status SpawnError(const std::string& program, int error) {
  std::string message = "could not start '" + program + "': " + ErrnoText(error);
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return Status::NotFound(std::move(message));
    case EACCES:
    case EPERM:
    case ENOEXEC:
    case EISDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case E2BIG:
      return Status::FailedPrecondition(std::move(message));
    case EAGAIN:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return Status::Unavailable(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

// posix_spawn's attribute and file-action objects, destroyed on scope exit.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawnattr_init(&attr_);
    posix_spawn_file_actions_init(&actions_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // A new session (so a new process group), default dispositions, nothing blocked.
  int SetAttributes() {
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    int rc = posix_spawnattr_setflags(
        &attr_, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr_, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr_, &all);
    return rc;
  }

  int Redirect(int stdin_fd, int stdout_fd, int stderr_fd) {
    int rc = stdin_fd >= 0
                 ? posix_spawn_file_actions_adddup2(&actions_, stdin_fd, 0)
                 : posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null", O_RDONLY, 0);
    if (rc != 0) return rc;
    if (stdout_fd >= 0) {
      rc = posix_spawn_file_actions_adddup2(&actions_, stdout_fd, 1);
      if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, stderr_fd, 2);
    } else {
      rc = posix_spawn_file_actions_addopen(&actions_, 1, "/dev/null", O_WRONLY, 0);
      if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, 1, 2);
    }
    // Descriptors other code opened without O_CLOEXEC must not leak into the child.
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
    return rc;
  }

  const posix_spawnattr_t* attr() const { return &attr_; }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }

 private:
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
};

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const std::string& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus exit;
  if (WIFEXITED(status)) {
    exit.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  } else {
    exit.known = false;
  }
  return exit;
}

}  // namespace

struct ChildProcess::Private {};

int ExitStatus::ShellCode() const {
  if (!known) return -1;
  return signal != 0 ? 128 + signal : code;
}

std::string ExitStatus::Describe() const {
  if (!known) return "ended with an unknown status";
  if (signal == 0) return "exited with code " + std::to_string(code);
  const char* name = sigabbrev_np(signal);
  return "was killed by signal " + std::to_string(signal) +
         (name != nullptr ? std::string(" (SIG") + name + ")" : std::string());
}

void ChildSet::KillAll() {
  std::vector<std::weak_ptr<ChildProcess>> children;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [raw, weak] : children_) children.push_back(weak);
  }
  for (const auto& weak : children) {
    if (auto child = weak.lock()) child->Kill();
  }
}

bool ChildSet::WaitAllReaped(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return all_reaped_.wait_for(lock, timeout, [this] { return children_.empty(); });
}

size_t ChildSet::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return children_.size();
}

void ChildSet::Add(ChildProcess* child, std::weak_ptr<ChildProcess> weak) {
  std::lock_guard<std::mutex> lock(mutex_);
  children_.emplace(child, std::move(weak));
}

void ChildSet::Remove(ChildProcess* child) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (children_.erase(child) > 0 && children_.empty()) all_reaped_.notify_all();
}

Result<std::shared_ptr<ChildProcess>> ChildProcess::Spawn(const Strand& strand, const Spec& spec,
                                                          std::shared_ptr<ChildSet> children) {
  CAIRN_ASSERT(!spec.argv.empty(), "ChildProcess::Spawn without argv[0]");
  Pipe in;
  Pipe out;
  Pipe err;
  if (spec.stdin_pipe) CAIRN_RETURN_IF_ERROR(MakePipe(&in));
  if (spec.output_pipes) {
    CAIRN_RETURN_IF_ERROR(MakePipe(&out));
    CAIRN_RETURN_IF_ERROR(MakePipe(&err));
  }
  SpawnSetup setup;
  int rc = setup.SetAttributes();
  if (rc == 0) rc = setup.Redirect(in.read.get(), out.write.get(), err.write.get());
  if (rc != 0) return Status::Internal("posix_spawn set-up failed: " + ErrnoText(rc));

  std::vector<char*> argv = CStrings(spec.argv);
  std::vector<char*> envp = CStrings(spec.environment);
  pid_t pid = -1;
  bool search_path = spec.program.find('/') == std::string::npos;
  rc = search_path ? posix_spawnp(&pid, spec.program.c_str(), setup.actions(), setup.attr(),
                                  argv.data(), envp.data())
                   : posix_spawn(&pid, spec.program.c_str(), setup.actions(), setup.attr(),
                                 argv.data(), envp.data());
  if (rc != 0) return SpawnError(spec.program, rc);

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int error = errno;
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);  // it was just killed: returns at once
    return Status::Internal("pidfd_open failed (Linux >= 5.3 is needed): " + ErrnoText(error));
  }
  auto child =
      std::make_shared<ChildProcess>(Private{}, strand, pid, pidfd, in.write.Release(),
                                     out.read.Release(), err.read.Release(), spec, children);
  children->Add(child.get(), child);
  return child;
}

ChildProcess::ChildProcess(Private, const Strand& strand, pid_t pid, int pidfd, int stdin_fd,
                           int stdout_fd, int stderr_fd, const Spec& spec,
                           std::shared_ptr<ChildSet> children)
    : strand_(strand),
      pid_(pid),
      kill_group_on_exit_(spec.kill_group_on_exit),
      drain_after_exit_(spec.drain_after_exit),
      children_(std::move(children)),
      pidfd_(strand, pidfd),
      stdin_(strand),
      outputs_{boost::asio::posix::stream_descriptor(strand),
               boost::asio::posix::stream_descriptor(strand)},
      drain_timer_(strand) {
  boost::system::error_code ignored;
  if (stdin_fd >= 0) {
    stdin_.assign(stdin_fd);
    stdin_.non_blocking(true, ignored);
  }
  if (stdout_fd >= 0) {
    outputs_[0].assign(stdout_fd);
    outputs_[1].assign(stderr_fd);
    for (auto& output : outputs_) output.non_blocking(true, ignored);
  }
}

ChildProcess::~ChildProcess() {
  // Only when the io_context went away with the child still running: kill it rather than
  // leave it behind. It stays a zombie until the engine exits; reaping it here could block.
  bool reaped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reaped = reaped_;
  }
  if (!reaped) {
    Kill();
    spdlog::warn("child process {} destroyed before it was reaped", pid_);
    children_->Remove(this);
  }
}

void ChildProcess::Start(Handlers handlers) {
  CAIRN_ASSERT(!started_, "ChildProcess::Start called twice");
  started_ = true;
  handlers_ = std::move(handlers);
  for (Stream stream : {Stream::kStdout, Stream::kStderr}) {
    size_t index = static_cast<size_t>(stream);
    if (!outputs_[index].is_open()) continue;
    output_open_[index] = true;
    ReadSome(stream);
  }
  WaitForExit();
}

void ChildProcess::ReadSome(Stream stream) {
  size_t index = static_cast<size_t>(stream);
  outputs_[index].async_read_some(
      boost::asio::buffer(buffers_[index]),
      [self = shared_from_this(), stream](const boost::system::error_code& error, size_t bytes) {
        self->OnRead(stream, error, bytes);
      });
}

void ChildProcess::OnRead(Stream stream, const boost::system::error_code& error, size_t bytes) {
  size_t index = static_cast<size_t>(stream);
  if (bytes > 0) {
    std::string_view data(buffers_[index].data(), bytes);
    auto& handler = stream == Stream::kStdout ? handlers_.on_stdout : handlers_.on_stderr;
    if (handler) handler(data);
  }
  if (error) {  // end of file, or closed after the drain period
    output_open_[index] = false;
    boost::system::error_code ignored;
    outputs_[index].close(ignored);
    CheckFinished();
    return;
  }
  ReadSome(stream);
}

void ChildProcess::WaitForExit() {
  pidfd_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                    [self = shared_from_this()](const boost::system::error_code& error) {
                      self->OnExitReady(error);
                    });
}

void ChildProcess::OnExitReady(const boost::system::error_code& error) {
  if (error == boost::asio::error::operation_aborted) return;
  if (!TryReap()) {
    // Not exited: a spurious wake-up, or the wait failed (then make sure it will exit).
    if (error) {
      spdlog::error("waiting for child {} failed: {}; killing it", pid_, error.message());
      Kill();
    }
    WaitForExit();
    return;
  }
  exited_ = true;
  boost::system::error_code ignored;
  pidfd_.close(ignored);
  if (!writing_) stdin_.close(ignored);  // nobody reads it any more
  if (output_open_[0] || output_open_[1]) {
    drain_timer_.expires_after(drain_after_exit_);
    drain_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (e) return;
      boost::system::error_code ignored_close;
      for (auto& output : self->outputs_) output.close(ignored_close);  // reads end aborted
    });
  }
  CheckFinished();
}

bool ChildProcess::TryReap() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    siginfo_t info{};
    // WNOWAIT: look without reaping, so the group can still be signalled safely.
    int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == 0) return false;  // still running
    if (rc == 0) {
      if (kill_group_on_exit_) ::kill(-pid_, SIGKILL);
      int status = 0;
      pid_t reaped = ::waitpid(pid_, &status, 0);  // a zombie: returns at once
      exit_status_ = reaped == pid_ ? FromWaitStatus(status) : ExitStatus{0, 0, false};
    } else {
      exit_status_ = ExitStatus{0, 0, false};  // ECHILD: someone else reaped it
      spdlog::warn("child {} was reaped elsewhere; its exit status is lost", pid_);
    }
    reaped_ = true;
  }
  children_->Remove(this);
  return true;
}

void ChildProcess::CheckFinished() {
  if (finished_ || !exited_ || output_open_[0] || output_open_[1]) return;
  finished_ = true;
  drain_timer_.cancel();
  // Dropping the handlers breaks any cycle through the owner's captures.
  auto on_finished = std::move(handlers_.on_finished);
  handlers_ = Handlers{};
  if (on_finished) on_finished(exit_status_);
}

void ChildProcess::Write(std::string bytes) {
  if (!stdin_.is_open() || close_stdin_requested_ || bytes.empty()) return;
  pending_write_bytes_ += bytes.size();
  write_queue_.push_back(std::move(bytes));
  if (!writing_) WriteNext();
}

void ChildProcess::CloseStdin() {
  close_stdin_requested_ = true;
  if (!writing_) {
    boost::system::error_code ignored;
    stdin_.close(ignored);
  }
}

void ChildProcess::WriteNext() {
  if (write_queue_.empty()) {
    writing_ = false;
    if (close_stdin_requested_ || exited_) {
      boost::system::error_code ignored;
      stdin_.close(ignored);
    }
    return;
  }
  writing_ = true;
  boost::asio::async_write(stdin_, boost::asio::buffer(write_queue_.front()),
                           [self = shared_from_this()](const boost::system::error_code& error,
                                                       size_t) { self->OnWritten(error); });
}

void ChildProcess::OnWritten(const boost::system::error_code& error) {
  pending_write_bytes_ -= write_queue_.front().size();
  write_queue_.pop_front();
  if (error) {
    // EPIPE: the child closed its stdin or exited. What it did not read is dropped.
    write_queue_.clear();
    pending_write_bytes_ = 0;
    writing_ = false;
    boost::system::error_code ignored;
    stdin_.close(ignored);
    return;
  }
  WriteNext();
}

void ChildProcess::Kill() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reaped_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
}

Environment EnvironmentFromProcess() {
  Environment environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    size_t equals = text.find('=');
    if (equals == std::string_view::npos || equals == 0) continue;
    environment.insert_or_assign(std::string(text.substr(0, equals)),
                                 std::string(text.substr(equals + 1)));
  }
  return environment;
}

std::vector<std::string> EnvironmentEntries(const Environment& environment) {
  std::vector<std::string> entries;
  entries.reserve(environment.size());
  for (const auto& [name, value] : environment) entries.push_back(name + "=" + value);
  return entries;
}

void EnsureSigpipeIgnored() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0) return;
  if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO) != 0) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

}  // namespace cairn::engine::process
