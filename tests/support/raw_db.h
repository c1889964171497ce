// RawDb: the database of a CLOSED store opened with plain RocksDB, for tests that damage
// or inspect stored bytes behind the store's back (tampering, corruption).
//
// Failures throw std::runtime_error (GoogleTest reports it and ends the test). Writes are
// synced. Not thread-safe.
#pragma once

#include <rocksdb/db.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "storage/event.h"

namespace cairn::testing {

class RawDb {
 public:
  // Opens `<store_dir>/db` with every column family of storage/keys.h.
  explicit RawDb(const std::string& store_dir);
  ~RawDb();
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // `family` is a name from storage/keys.h ("events", "runs", ...).
  std::string Get(std::string_view family, std::string_view key) const;
  void Put(std::string_view family, std::string_view key, std::string_view value);
  void Delete(std::string_view family, std::string_view key);

  // Events and headers, in the store's key layout and encoding.
  std::string GetEvent(const RunId& run, uint64_t seq) const;
  void PutEvent(const RunId& run, uint64_t seq, std::string_view bytes);
  void DeleteEvent(const RunId& run, uint64_t seq);
  storage::RunHeader GetHeader(const RunId& run) const;
  void PutHeader(const storage::RunHeader& header);

 private:
  rocksdb::ColumnFamilyHandle* Family(std::string_view name) const;

  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace cairn::testing
