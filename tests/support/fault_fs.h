// FaultInjectionFileSystem: a rocksdb::FileSystem that knows what is durable, so that a
// test can simulate power loss, failed syncs, failed writes and torn writes underneath a
// real RocksDB, deterministically.
//
// Model. Every write goes through to the wrapped filesystem at once (it plays the OS page
// cache), so the database reads back what it wrote while it runs. Alongside, for every
// file opened for writing, the wrapper records how many bytes were appended and how many
// of them are durable:
//   - Sync() and Fsync() make everything appended before the call durable.
//   - Close() and Flush() make nothing durable, and neither does RangeSync(): RocksDB's
//     POSIX RangeSync is sync_file_range(SYNC_FILE_RANGE_WRITE), which starts write-back
//     but waits for nothing and persists no metadata, so a store that relied on it for an
//     acknowledgement would lose data on a real power cut. (RocksDB's own test filesystem
//     counts it as a sync; this one is stricter on purpose.)
//   - A file created, or renamed into place, survives a power loss only once its
//     directory has been fsynced afterwards. Until then a power loss removes it or, for a
//     rename over a small file (RocksDB's CURRENT), puts back what it replaced. This is
//     `Options::lose_unsynced_new_files`, on by default as in RocksDB's
//     FaultInjectionTestFS.
// Simplifications, none of which RocksDB's write paths depend on: files that existed
// before this object first saw them are durable at their size then; directories and
// deletions are durable at once; PositionedAppend() below the durable size and files
// opened with NewRandomRWFile() or NewLogger() are not tracked (the latter two still fail
// while the filesystem is inactive).
//
// Power loss, step by step:
//   fs->SetFilesystemActive(false);   // the machine dies: every write, sync, create,
//                                     // rename and delete now fails with an IOError
//   store.reset();                    // the process goes away (closing fails; fine)
//   fs->DropUnsyncedData();           // what the disk holds after the power comes back
//   ... reopen over a fresh FaultInjectionFileSystem on the same base filesystem.
// CorruptUnsyncedTail() replaces DropUnsyncedData() for a torn write: part of the
// unsynced bytes reached the disk, and the last few of those are garbage.
//
// Threads: every method is thread-safe (RocksDB calls in from its background threads).
// The loss simulations need every tracked file closed first, i.e. the DB destroyed.
#pragma once

#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/random.h"
#include "base/status.h"

namespace cairn::testing {

// What the filesystem has seen since it was created. Counts include calls failed by an
// injected fault, not those refused because the filesystem was inactive.
struct FaultStats {
  uint64_t syncs = 0;  // Sync/Fsync calls on files the fault filter selects
  uint64_t syncs_failed = 0;
  uint64_t range_syncs = 0;  // never durable, see the file comment
  uint64_t dir_syncs = 0;
  uint64_t appends = 0;  // Append/PositionedAppend calls on files the fault filter selects
  uint64_t appends_failed = 0;
  uint64_t bytes_appended = 0;  // by successful appends to any tracked file
  uint64_t files_created = 0;
};

// How CorruptUnsyncedTail() tears the unsynced end of each file.
struct TornTailOptions {
  // Keep a uniformly random number (0..all) of the unsynced bytes; otherwise keep them all.
  bool keep_random_prefix = true;
  // Then overwrite the last 1..garble_bytes_max of the kept unsynced bytes with random
  // bytes (0 disables). Durable bytes are never touched.
  size_t garble_bytes_max = 64;
};

class FaultInjectionFileSystem : public rocksdb::FileSystemWrapper {
 public:
  struct Options {
    bool lose_unsynced_new_files = true;
  };

  static const char* kClassName() { return "CairnFaultInjectionFileSystem"; }

  explicit FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
      : FaultInjectionFileSystem(std::move(base), Options()) {}
  FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base, Options options);
  ~FaultInjectionFileSystem() override;

  const char* Name() const override { return kClassName(); }

  // ---- the machine ----

  // Inactive: every write, sync, create, rename, delete and truncate fails with an
  // IOError, as on a machine that lost power. Reads still work.
  void SetFilesystemActive(bool active);
  bool IsFilesystemActive() const { return active_.load(std::memory_order_acquire); }

  // Power loss: truncates every tracked file to its durable size and removes (or
  // restores) the files created since their directory's last fsync. Afterwards the
  // tracking starts over: what is on disk counts as durable, and the filesystem is
  // active again. kFailedPrecondition (naming the file) if a tracked file is still open;
  // kUnavailable if the base filesystem fails.
  Status DropUnsyncedData();
  // Power loss in the middle of write-back: like DropUnsyncedData(), but each file keeps
  // part of its unsynced bytes and the last of those are garbled (see TornTailOptions).
  // Deterministic given `random`'s state.
  Status CorruptUnsyncedTail(Random& random, const TornTailOptions& options = {});

  // ---- fault knobs (each replaces the previous setting of the same kind) ----

  // The next `n` syncs succeed and every later one fails, until ClearFaults().
  void FailSyncsAfter(uint64_t n);
  // The next `k` syncs fail; later ones succeed.
  void FailNextSyncs(uint64_t k);
  // The next `n` appends succeed and every later one fails (writing nothing), until
  // ClearFaults().
  void FailWritesAfter(uint64_t n);
  void ClearFaults();
  // Restricts the fault knobs and the sync/append counters to files whose path the
  // predicate accepts (e.g. only WAL files, `*.log`). Null selects every file.
  void SetFaultFilter(std::function<bool(std::string_view path)> selects);

  FaultStats stats() const;
  // Bytes appended to `path` that are not durable yet; nullopt if it is not tracked.
  std::optional<uint64_t> UnsyncedBytes(const std::string& path) const;
  // The same summed over the tracked files the fault filter selects.
  uint64_t UnsyncedBytesTotal() const;

  // ---- rocksdb::FileSystem ----

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& file_opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& file_opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& file_opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& file_opts,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& target,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& dirname,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LockFile(const std::string& fname, const rocksdb::IOOptions& options,
                             rocksdb::FileLock** lock, rocksdb::IODebugContext* dbg) override;

 private:
  // The wrappers handed to RocksDB (fault_fs.cc); they report back through the
  // bookkeeping methods below.
  class WritableFile;
  class RandomRWFile;
  class Directory;

  struct FileState {
    uint64_t size = 0;         // bytes written so far
    uint64_t synced_size = 0;  // of which durable
    int open_handles = 0;
  };
  enum class Verdict { kProceed, kInjectFault };

  rocksdb::IOStatus Inactive(std::string_view op, const std::string& path) const;
  Status SimulatePowerLoss(Random* random, const TornTailOptions* torn);
  Status LoseUnsyncedNewFiles();  // mu_ held
  Status TearFile(const std::string& path, const FileState& state, Random* random,
                  const TornTailOptions* torn);  // mu_ held
  void TrackNewFile(const std::string& path);    // mu_ held
  bool Selects(const std::string& path) const;   // mu_ held

  // Bookkeeping for the wrappers.
  Verdict BeforeSync(const std::string& path, uint64_t* size_now);
  void AfterSync(const std::string& path, uint64_t durable_size);
  Verdict BeforeAppend(const std::string& path);
  // `offset`: where a positioned append wrote; nullopt for a plain append.
  void AfterWrite(const std::string& path, std::optional<uint64_t> offset, uint64_t bytes);
  void AfterTruncate(const std::string& path, uint64_t size);
  void OnRangeSync();
  void OnDirSync(const std::string& dir);
  void OnFileClosed(const std::string& path);

  const Options options_;
  std::atomic<bool> active_{true};

  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;  // by normalized path
  // Directory → entries created or renamed into it since its last fsync, with what a
  // rename replaced (nullopt: nothing, or too large to keep).
  std::map<std::string, std::map<std::string, std::optional<std::string>>> unsynced_entries_;
  std::function<bool(std::string_view)> fault_filter_;
  std::optional<uint64_t> syncs_before_failing_;  // FailSyncsAfter
  uint64_t syncs_to_fail_ = 0;                    // FailNextSyncs
  std::optional<uint64_t> appends_before_failing_;
  FaultStats stats_;
};

}  // namespace cairn::testing
