// TempDir: a fresh directory for one test, removed with everything in it afterwards.
//
// Created with mkdtemp(3) under $TMPDIR (or /tmp). Set CAIRN_KEEP_TEMP=1 to keep it for a
// post-mortem: the destructor then prints its path to stderr instead of removing it.
// Not thread-safe; owned by one test.
#pragma once

#include <string>
#include <string_view>

namespace cairn::testing {

class TempDir {
 public:
  // Aborts with the reason if the directory cannot be created: no test can run without
  // it, and a partial run would only confuse.
  explicit TempDir(std::string_view prefix = "cairn-test-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Absolute path, without a trailing slash.
  const std::string& path() const { return path_; }
  // path() + "/" + name (nothing is created).
  std::string Sub(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace cairn::testing
