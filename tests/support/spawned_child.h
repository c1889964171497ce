// SpawnedChild: a child process a crash test starts, reads line by line, and SIGKILLs.
//
// One of the child's file descriptors (stdout by default) is a pipe the test reads with
// poll(2) (no sleeps); its stderr may go to a log file (appended), so that a failure can
// show what the child logged. A child that outlives its handle is killed and reaped by the
// destructor.
//
// Not thread-safe; owned by one test thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace cairn::testing {

class SpawnedChild {
 public:
  struct Options {
    int output_fd = 1;        // the child's descriptor the test reads (default: stdout)
    std::string stderr_path;  // empty: the child inherits the test's stderr
  };
  // Starts `argv` (argv[0] is the binary's path). nullptr, with a GoogleTest failure, if it
  // cannot be started.
  static std::unique_ptr<SpawnedChild> Spawn(const std::vector<std::string>& argv,
                                             const Options& options);
  static std::unique_ptr<SpawnedChild> Spawn(const std::vector<std::string>& argv,
                                             const std::string& stderr_path) {
    return Spawn(argv, Options{1, stderr_path});
  }
  ~SpawnedChild();
  SpawnedChild(const SpawnedChild&) = delete;
  SpawnedChild& operator=(const SpawnedChild&) = delete;

  pid_t pid() const { return pid_; }

  // Waits up to `timeout` for output and appends every complete line to `lines`. False
  // once the child has closed its stdout (it died or exited).
  bool Read(std::chrono::milliseconds timeout, std::vector<std::string>* lines);

  void Kill();

  // Reads the rest of the output (up to `timeout`), then reaps the child. Returns the wait
  // status, or -1 with a GoogleTest failure if the child does not go away.
  int Reap(std::chrono::milliseconds timeout, std::vector<std::string>* lines);

 private:
  SpawnedChild(pid_t pid, int fd) : pid_(pid), fd_(fd) {}

  pid_t pid_;
  int fd_;
  bool eof_ = false;
  std::string partial_;
};

// "exited with status 3", "killed by signal 9".
std::string DescribeWaitStatus(int status);

// The last `lines` lines of a text file ("" if it cannot be read).
std::string FileTail(const std::string& path, size_t lines);

}  // namespace cairn::testing
