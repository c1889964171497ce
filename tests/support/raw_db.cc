#include "tests/support/raw_db.h"

#include <iterator>
#include <stdexcept>

#include "storage/codec.h"
#include "storage/keys.h"

namespace cairn::testing {
namespace keys = storage::keys;
namespace {

constexpr const char* kFamilies[] = {
    keys::kDefaultFamily, keys::kEventsFamily,      keys::kRunsFamily,
    keys::kActiveFamily,  keys::kStatusIndexFamily, keys::kTimersFamily,
    keys::kDedupeFamily,  keys::kDefinitionsFamily, keys::kBlobsFamily,
    keys::kWorkflowsFamily};

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

void Check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string("raw rocksdb ") + what + ": " + s.ToString());
}

template <typename T>
T Checked(Result<T> result, const char* what) {
  if (!result.ok()) {
    throw std::runtime_error(std::string(what) + ": " + result.status().ToString());
  }
  return std::move(result).value();
}

}  // namespace

RawDb::RawDb(const std::string& store_dir) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : kFamilies) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  Check(rocksdb::DB::Open(rocksdb::DBOptions(), store_dir + "/db", families, &handles_, &db_),
        "open");
}

RawDb::~RawDb() {
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
  delete db_;
}

rocksdb::ColumnFamilyHandle* RawDb::Family(std::string_view name) const {
  for (size_t i = 0; i < std::size(kFamilies); ++i) {
    if (name == kFamilies[i]) return handles_[i];
  }
  throw std::runtime_error("no column family " + std::string(name));
}

std::string RawDb::Get(std::string_view family, std::string_view key) const {
  std::string value;
  Check(db_->Get(rocksdb::ReadOptions(), Family(family), ToSlice(key), &value), "get");
  return value;
}

void RawDb::Put(std::string_view family, std::string_view key, std::string_view value) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  Check(db_->Put(wo, Family(family), ToSlice(key), ToSlice(value)), "put");
}

void RawDb::Delete(std::string_view family, std::string_view key) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  Check(db_->Delete(wo, Family(family), ToSlice(key)), "delete");
}

std::string RawDb::GetEvent(const RunId& run, uint64_t seq) const {
  return Get(keys::kEventsFamily, keys::EventKey(run, seq));
}

void RawDb::PutEvent(const RunId& run, uint64_t seq, std::string_view bytes) {
  Put(keys::kEventsFamily, keys::EventKey(run, seq), bytes);
}

void RawDb::DeleteEvent(const RunId& run, uint64_t seq) {
  Delete(keys::kEventsFamily, keys::EventKey(run, seq));
}

storage::RunHeader RawDb::GetHeader(const RunId& run) const {
  return Checked(storage::DecodeRunHeader(Get(keys::kRunsFamily, run.str())), "decode header");
}

void RawDb::PutHeader(const storage::RunHeader& header) {
  Put(keys::kRunsFamily, header.run_id.str(),
      Checked(storage::EncodeRunHeader(header), "encode header"));
}

}  // namespace cairn::testing
