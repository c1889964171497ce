// Helpers for the process executor tests: a thread pool running an io_context, calling an
// executor and waiting for its answer, learning the pids a command started (through a
// FIFO, so that no test sleeps to synchronise), and checking that processes are gone.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/tools/tool.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine::process::testing {

using namespace std::chrono_literals;

// An io_context run by `threads` threads until destruction.
class IoPool {
 public:
  explicit IoPool(int threads = 4) : work_(io_.get_executor()) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoPool() {
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// The answer of one call, and which thread gave it.
struct Answer {
  ToolResponse response;
  std::thread::id thread;
};

// Starts a call; the future holds its answer. Counts how often `done` ran.
class PendingCall {
 public:
  PendingCall(ToolExecutor& executor, ToolRequest request) {
    auto promise = std::make_shared<std::promise<Answer>>();
    future_ = promise->get_future();
    calls_ = std::make_shared<std::atomic<int>>(0);
    executor.Call(std::move(request), [promise, calls = calls_](ToolResponse response) {
      if (calls->fetch_add(1) == 0) {
        promise->set_value(Answer{std::move(response), std::this_thread::get_id()});
      }
    });
  }
  // The answer; fails the test (and returns a placeholder) if none came within `wait`.
  ToolResponse Get(std::chrono::milliseconds wait = 60s) {
    if (future_.wait_for(wait) != std::future_status::ready) {
      ADD_FAILURE() << "no answer within " << wait.count() << " ms";
      return ToolResponse::Failed("test", 0, "no answer", "");
    }
    answer_ = future_.get();
    return answer_->response;
  }
  bool Ready() { return future_.wait_for(0ms) == std::future_status::ready; }
  std::thread::id thread() const { return answer_ ? answer_->thread : std::thread::id(); }
  int done_calls() const { return calls_->load(); }

 private:
  std::future<Answer> future_;
  std::optional<Answer> answer_;
  std::shared_ptr<std::atomic<int>> calls_;
};

inline ToolResponse CallAndWait(ToolExecutor& executor, ToolRequest request) {
  return PendingCall(executor, std::move(request)).Get();
}

// A FIFO that commands write lines to (`echo $$ > "$PIDS"`). Opened read-write by the
// test, so writers never block and reads never see end of file.
class LineFifo {
 public:
  explicit LineFifo(const cairn::testing::TempDir& dir) : path_(dir.Sub("fifo")) {
    EXPECT_EQ(::mkfifo(path_.c_str(), 0600), 0) << std::strerror(errno);
    fd_ = ::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
  }
  ~LineFifo() {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& path() const { return path_; }

  // The next `count` lines, or fewer if `wait` passed first.
  std::vector<std::string> ReadLines(size_t count, std::chrono::milliseconds wait = 30s) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    std::vector<std::string> lines;
    while (true) {
      size_t newline;
      while (lines.size() < count && (newline = buffer_.find('\n')) != std::string::npos) {
        lines.push_back(buffer_.substr(0, newline));
        buffer_.erase(0, newline + 1);
      }
      if (lines.size() >= count) return lines;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return lines;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n > 0) buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  std::vector<pid_t> ReadPids(size_t count, std::chrono::milliseconds wait = 30s) {
    std::vector<pid_t> pids;
    for (const std::string& line : ReadLines(count, wait)) {
      pids.push_back(static_cast<pid_t>(std::atoi(line.c_str())));
    }
    EXPECT_EQ(pids.size(), count) << "the command did not report its pids";
    return pids;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::string buffer_;
};

// True once `pid` has exited (or is gone entirely), false if it still runs after `wait`.
inline bool ExitsWithin(pid_t pid, std::chrono::milliseconds wait = 10s) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  pollfd p{pidfd, POLLIN, 0};
  int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
  ::close(pidfd);
  return ready == 1;
}

// True if a process `pid` exists, zombies included.
inline bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// Polls `condition` until it holds or `wait` passes (for state the executor changes in
// the background, e.g. reaping a detached child; never to order events).
inline bool Eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds wait = 10s) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace cairn::engine::process::testing
