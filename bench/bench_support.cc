#include "bench/bench_support.h"

#include <rocksdb/options.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/random.h"
#include "storage/keys.h"

namespace cairn::bench {

ScratchDir::ScratchDir(const std::string& name) {
  const char* base = std::getenv("CAIRN_BENCH_DIR");
  std::filesystem::path root = base != nullptr ? base : std::filesystem::temp_directory_path();
  Random rng(Random::SeedFromEntropy());
  path_ = (root / ("cairn-bench-" + name + "-" + std::to_string(rng.Next64() % 1000000)))
              .string();
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  if (std::getenv("CAIRN_BENCH_KEEP") != nullptr) {
    std::fprintf(stderr, "kept %s (CAIRN_BENCH_KEEP)\n", path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::unique_ptr<rocksdb::DB> OpenRaw(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
  if (!s.ok()) {
    std::fprintf(stderr, "raw rocksdb open failed: %s\n", s.ToString().c_str());
    std::abort();
  }
  return std::unique_ptr<rocksdb::DB>(db);
}

RawStoreEvents::RawStoreEvents(const std::string& data_dir) {
  rocksdb::ConfigOptions config;
  rocksdb::DBOptions db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  const std::string path = data_dir + "/db";
  rocksdb::Status s = rocksdb::LoadLatestOptions(config, path, &db_options, &families);
  if (s.ok()) s = rocksdb::DB::OpenForReadOnly(db_options, path, families, &handles_, &db_);
  if (!s.ok()) {
    std::fprintf(stderr, "raw read-only open of %s failed: %s\n", path.c_str(),
                 s.ToString().c_str());
    std::abort();
  }
  for (auto* h : handles_) {
    if (h->GetName() == storage::keys::kEventsFamily) events_ = h;
  }
  if (events_ == nullptr) {
    std::fprintf(stderr, "%s has no '%s' column family\n", path.c_str(),
                 storage::keys::kEventsFamily);
    std::abort();
  }
}

RawStoreEvents::~RawStoreEvents() {
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  delete db_;
}

double MeasureRawSyncedWrites(size_t event_bytes) {
  ScratchDir dir("raw-write");
  auto db = OpenRaw(dir.path());
  const std::string value(event_bytes, 'v');
  rocksdb::WriteOptions wo;
  wo.sync = true;
  uint64_t events = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < kCeilingSeconds) {
    rocksdb::WriteBatch batch;
    for (size_t i = 0; i < kCeilingBatchEvents; ++i, ++events) {
      std::string key = "01JBENCHRUN000000000000000";
      key.push_back('\0');
      storage::keys::AppendBigEndian64(&key, events);
      batch.Put(key, value);
    }
    if (!db->Write(wo, &batch).ok()) std::abort();
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return static_cast<double>(events) / elapsed;
}

void SetRatio(benchmark::State& state, double engine_per_s, double ceiling_per_s) {
  state.counters["events_per_s"] = engine_per_s;
  state.counters["ceiling_per_s"] = ceiling_per_s;
  state.counters["ratio"] = ceiling_per_s > 0 ? engine_per_s / ceiling_per_s : 0;
}

}  // namespace cairn::bench
