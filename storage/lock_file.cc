#include "storage/lock_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

namespace cairn::storage {
namespace {

std::string ReadHolder(int fd) {
  char buf[512];
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "an unknown process";
  std::string text(buf, static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text.empty() ? "an unknown process" : text;
}

std::string Describe(const std::string& description, int64_t now_ns) {
  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);
  const time_t secs = static_cast<time_t>(now_ns / 1'000'000'000);
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return "pid " + std::to_string(getpid()) + " (" + description + ") on host " + host +
         " since " + when + "\n";
}

}  // namespace

Result<std::unique_ptr<LockFile>> LockFile::Acquire(const std::string& dir,
                                                    const std::string& description,
                                                    int64_t now_ns) {
  const std::string path = dir + "/cairn.lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::FailedPrecondition("cannot open lock file " + path + ": " +
                                      std::strerror(errno));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = ReadHolder(fd);
    close(fd);
    if (err == EWOULDBLOCK) {
      return Status::FailedPrecondition("data directory " + dir + " is in use by " + holder +
                                        " (lock file " + path + ")");
    }
    return Status::FailedPrecondition("cannot lock " + path + ": " + std::strerror(err));
  }
  const std::string record = Describe(description, now_ns);
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size())) {
    const int err = errno;
    close(fd);
    return Status::Unavailable("cannot write lock file " + path + ": " + std::strerror(err));
  }
  return std::unique_ptr<LockFile>(new LockFile(fd));
}

LockFile::~LockFile() {
  // Leave the record in place: it documents the last owner. Closing drops the flock.
  close(fd_);
}

}  // namespace cairn::storage
