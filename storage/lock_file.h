// LockFile: one process owns a data directory.
//
// Acquire() takes an exclusive flock(2) on `<dir>/cairn.lock` and writes who holds it
// (pid, host, command, since when) into the file. A second Acquire() -- from another
// process or this one -- fails with kFailedPrecondition and a message quoting that
// record. The kernel drops the lock when the holder dies, so a crash never leaves a stale
// lock behind. Not thread-safe; the store holds one for its lifetime.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace cairn::storage {

class LockFile {
 public:
  // `description` says what holds the lock (e.g. "cairn serve"); `now_ns` is written as
  // the time it was taken.
  static Result<std::unique_ptr<LockFile>> Acquire(const std::string& dir,
                                                   const std::string& description,
                                                   int64_t now_ns);
  ~LockFile();  // releases the lock
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

 private:
  explicit LockFile(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace cairn::storage
