// What every benchmark shares: scratch directories and the raw RocksDB ceiling measured
// in the same run, so that an engine figure is always printed beside what the disk and
// RocksDB can do right now.
#pragma once

#include <benchmark/benchmark.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <vector>

namespace cairn::bench {

inline constexpr size_t kCeilingBatchEvents = 64;
inline constexpr double kCeilingSeconds = 1.0;

// A scratch directory under $CAIRN_BENCH_DIR (default: the system temp dir), removed on
// destruction unless $CAIRN_BENCH_KEEP is set (then its path is printed on stderr, to run
// a command on the benchmark's data by hand).
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A plain RocksDB with default options (aborts on failure: benchmarks have no error path).
std::unique_ptr<rocksdb::DB> OpenRaw(const std::string& path);

// A store's data directory opened as a plain RocksDB, read-only, with the options the
// store persisted: the very events an engine wrote, for the "own data" scan ceilings.
// Aborts on failure, like OpenRaw.
class RawStoreEvents {
 public:
  explicit RawStoreEvents(const std::string& data_dir);
  ~RawStoreEvents();
  RawStoreEvents(const RawStoreEvents&) = delete;
  RawStoreEvents& operator=(const RawStoreEvents&) = delete;
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* events() const { return events_; }  // the `events` family

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
};

// Raw ceiling: synced WriteBatches of 64 values of `event_bytes` under event-shaped keys,
// for kCeilingSeconds; events per second.
double MeasureRawSyncedWrites(size_t event_bytes);

// Sets events_per_s, ceiling_per_s and ratio.
void SetRatio(benchmark::State& state, double engine_per_s, double ceiling_per_s);

}  // namespace cairn::bench
