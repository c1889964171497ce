#include "tests/support/spawned_child.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>

extern char** environ;

namespace cairn::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

int RemainingMs(SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

}  // namespace

std::unique_ptr<SpawnedChild> SpawnedChild::Spawn(const std::vector<std::string>& argv,
                                                  const Options& options) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return nullptr;
  }
  if (fds[1] == options.output_fd) {  // dup2 onto itself would keep FD_CLOEXEC
    const int moved = fcntl(fds[1], F_DUPFD_CLOEXEC, options.output_fd + 1);
    close(fds[1]);
    fds[1] = moved;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], options.output_fd);
  if (!options.stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, options.stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  std::vector<std::string> storage = argv;
  std::vector<char*> args;
  for (std::string& a : storage) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(err);
    return nullptr;
  }
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<SpawnedChild>(new SpawnedChild(pid, fds[0]));
}

SpawnedChild::~SpawnedChild() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  close(fd_);
}

bool SpawnedChild::Read(std::chrono::milliseconds timeout, std::vector<std::string>* lines) {
  if (eof_) return false;
  pollfd p{fd_, POLLIN, 0};
  const int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(timeout.count(), 0)));
  if (ready < 0 && errno != EINTR) {
    ADD_FAILURE() << "poll: " << std::strerror(errno);
    eof_ = true;
  }
  if (ready <= 0) return !eof_;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(fd_, buf, sizeof buf);
    if (n > 0) {
      partial_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) eof_ = true;
    break;  // EOF, or EAGAIN: nothing more for now
  }
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines->push_back(partial_.substr(start, nl - start));
  }
  partial_.erase(0, start);
  return !eof_;
}

void SpawnedChild::Kill() {
  if (pid_ > 0) kill(pid_, SIGKILL);
}

int SpawnedChild::Reap(std::chrono::milliseconds timeout, std::vector<std::string>* lines) {
  const auto deadline = SteadyClock::now() + timeout;
  while (Read(std::chrono::milliseconds(RemainingMs(deadline)), lines)) {
    if (SteadyClock::now() >= deadline) {
      ADD_FAILURE() << "child " << pid_ << " still writing " << timeout.count()
                    << " ms after it should have ended";
      return -1;
    }
  }
  int status = 0;
  if (waitpid(pid_, &status, 0) != pid_) {
    ADD_FAILURE() << "waitpid " << pid_ << ": " << std::strerror(errno);
    return -1;
  }
  pid_ = -1;
  return status;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

std::string FileTail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(std::move(line));
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const std::string& line : tail) out += "  | " + line + "\n";
  return out;
}

}  // namespace cairn::testing
