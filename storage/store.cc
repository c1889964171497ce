#include "storage/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/limits.h"
#include "storage/codec.h"
#include "storage/keys.h"
#include "storage/lock_file.h"

namespace cairn::storage {
namespace {

// Column family indexes, in keys:: order.
enum Family : size_t {
  kDefault = 0,
  kEvents,
  kRuns,
  kActive,
  kStatusIndex,
  kTimers,
  kDedupe,
  kDefinitions,
  kBlobs,
  kWorkflows,  // last: read-only opens of stores written before it existed skip it
  kFamilyCount,
};

constexpr const char* kFamilyNames[kFamilyCount] = {
    keys::kDefaultFamily,     keys::kEventsFamily,    keys::kRunsFamily,   keys::kActiveFamily,
    keys::kStatusIndexFamily, keys::kTimersFamily,    keys::kDedupeFamily, keys::kDefinitionsFamily,
    keys::kBlobsFamily,       keys::kWorkflowsFamily,
};

// Run heads kept in memory beyond those with writes in flight.
constexpr size_t kHeadCacheEntriesMax = 1 << 16;

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsCorruption()) return Status::DataLoss(std::move(msg));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() || s.IsIOError()) {
    return Status::Unavailable(std::move(msg));
  }
  return Status::Internal(std::move(msg));
}

// One write of the batch being built for a transition.
struct Op {
  Family family;
  std::string key;
  std::string value;
  bool is_delete = false;
};

// A transition (or a bare write such as PutBlob) waiting for the commit thread.
struct Pending {
  std::vector<Op> ops;
  size_t bytes = 0;
  std::optional<RunId> run;  // unset for writes that belong to no run
  std::string start_key;     // reserved until committed
  AppendResult result;
  AppendCallback done;
};

// What the store knows of a run's tail, including transitions not yet durable.
struct Head {
  uint64_t next_seq = 0;
  Sha256 chain_head;
  RunStatus status = RunStatus::kUnknown;
  int64_t created_at_ns = 0;
  std::vector<TimerRef> timers;  // outstanding, in scheduling order
  uint32_t in_flight = 0;
};

// The run part of an events key (`run_id ‖ 0x00`, everything but the 8-byte seq). Used as
// the memtable insert hint: a run's events arrive in seq order, so each lands right
// after the previous one of its run, and interleaving hundreds of runs in one group
// commit no longer costs a full skip-list search per event.
class RunPrefixTransform final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "cairn.RunPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), key.size() - 8};
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > 8; }
};

// Classifies a failure to open the database at `path` for a person and for callers.
Status OpenError(const rocksdb::Status& s, const std::string& path) {
  const std::string detail = s.ToString();
  if (s.IsCorruption()) {
    return Status::DataLoss("store " + path + " is damaged: " + detail +
                            ". cairn refuses to open it rather than drop acknowledged writes; "
                            "to keep everything before the damage and discard the rest, open it "
                            "once with salvage (cairn log salvage)");
  }
  if (s.IsIOError() && (detail.find("Permission denied") != std::string::npos ||
                        detail.find("Read-only file system") != std::string::npos)) {
    return Status::FailedPrecondition("cannot open store " + path + ": " + detail);
  }
  if (s.IsIOError() && detail.find("No such file") != std::string::npos) {
    return Status::DataLoss("store " + path +
                            " is incomplete (a file it needs is missing): " + detail);
  }
  if (s.IsIOError()) return Status::Unavailable("cannot open store " + path + ": " + detail);
  if (s.IsInvalidArgument()) {
    return Status::DataLoss("store " + path + " cannot be opened as a cairn store: " + detail);
  }
  return Status::Internal("cannot open store " + path + ": " + detail);
}

std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

bool IsRunStarted(const EventBody& b) { return std::holds_alternative<RunStarted>(b); }
bool IsRunStopped(const EventBody& b) { return std::holds_alternative<RunStopped>(b); }

// Keeps a run's outstanding timers and the `timers` index in step with a timer event.
Status ApplyTimerEvent(const RunId& run, uint64_t seq, const EventBody& body,
                       std::vector<TimerRef>* timers, std::vector<Op>* ops) {
  auto find = [&](const std::string& id) {
    return std::find_if(timers->begin(), timers->end(),
                        [&](const TimerRef& r) { return r.timer_id == id; });
  };
  auto at = [&] { return "run " + run.str() + ", event " + std::to_string(seq) + ": "; };
  if (const auto* ts = std::get_if<TimerScheduled>(&body)) {
    if (find(ts->timer_id) != timers->end()) {
      return Status::InvalidArgument(at() + "timer '" + ts->timer_id + "' is already scheduled");
    }
    if (timers->size() >= limits::timers_per_run_max) {
      return Status::InvalidArgument(
          at() + "more than " + std::to_string(limits::timers_per_run_max) + " outstanding timers");
    }
    timers->push_back({ts->timer_id, ts->due_at_ns, ts->purpose});
    ops->push_back({kTimers, keys::TimerKey(ts->due_at_ns, run, ts->timer_id),
                    std::string(1, static_cast<char>(ts->purpose)), false});
    return Status::Ok();
  }
  const std::string* id = nullptr;
  int64_t due = 0;
  if (const auto* tf = std::get_if<TimerFired>(&body)) {
    id = &tf->timer_id;
    due = tf->due_at_ns;
  } else if (const auto* tc = std::get_if<TimerCancelled>(&body)) {
    id = &tc->timer_id;
    due = tc->due_at_ns;
  } else {
    return Status::Ok();
  }
  auto it = find(*id);
  if (it == timers->end()) {
    return Status::InvalidArgument(at() + "timer '" + *id + "' is not outstanding");
  }
  if (it->due_at_ns != due) {
    return Status::InvalidArgument(at() + "timer '" + *id + "' is due at " +
                                   std::to_string(it->due_at_ns) + ", not " + std::to_string(due));
  }
  ops->push_back({kTimers, keys::TimerKey(it->due_at_ns, run, it->timer_id), {}, true});
  timers->erase(it);
  return Status::Ok();
}

}  // namespace

class Store::Impl {
 public:
  Impl(std::string dir, StoreOptions options)
      : dir_(std::move(dir)), options_(std::move(options)) {}
  ~Impl() {
    CAIRN_ASSERT(std::this_thread::get_id() != committer_id_.load(std::memory_order_acquire),
                 "a Store was destroyed from its own completion callback");
    Close().IgnoreError();
  }

  Status Open();
  Status Close();
  Status Submit(Transition t, AppendCallback done);
  Status SubmitOps(std::vector<Op> ops, AppendCallback done);
  // Submits one bare write and waits until it is durable (not on the commit thread).
  Status SubmitOpAndWait(Op op);

  Result<RunHeader> GetRun(const RunId& run_id) const;
  Status ScanHistory(const RunId& run_id, uint64_t from,
                     const std::function<bool(const StoredEvent&)>& visit) const;
  Status ScanHistories(const std::vector<RunId>& runs,
                       const std::function<bool(size_t, Result<std::vector<Event>>)>& visit) const;
  Status CheckRunExists(const RunId& run_id) const;
  Result<std::vector<RunSummary>> ListRuns(std::optional<RunStatus> status,
                                           const std::string& start_after, size_t limit) const;
  Result<std::vector<RunSummary>> ListActiveRuns(const std::string& start_after,
                                                 size_t limit) const;
  Result<std::vector<DueTimer>> DueTimers(int64_t now_ns, size_t limit) const;
  Result<std::optional<RunId>> FindStartKey(std::string_view start_key) const;  // durable only
  // Also sees creations still in flight (takes mu_).
  Result<std::optional<RunId>> FindStartKeyIncludingPending(std::string_view start_key) const {
    {
      std::lock_guard lock(mu_);
      if (auto it = pending_start_keys_.find(std::string(start_key));
          it != pending_start_keys_.end()) {
        return std::optional<RunId>(it->second);
      }
    }
    return FindStartKey(start_key);
  }
  Result<std::string> GetContent(Family family, const Sha256& digest, const char* what) const;
  Result<std::vector<WorkflowVersion>> ListWorkflowVersions() const;
  Status GetValue(Family family, std::string_view key, std::string* value,
                  const rocksdb::Snapshot* snapshot = nullptr) const;
  // Keys of `family` starting with `prefix` (with the first `strip` bytes of each key
  // removed) and their values, in key order, at most limits::list_runs_max.
  Result<std::vector<std::pair<std::string, std::string>>> ListPrefix(Family family,
                                                                      const std::string& prefix,
                                                                      size_t strip) const;
  Status GetWorkflowValue(std::string_view key, std::string* value) const {
    return GetValue(kWorkflows, key, value);
  }
  Result<VerifyReport> VerifyRun(const RunId& run_id) const;
  // Both read at `snapshot` (may be null: the latest state).
  Result<VerifyReport> VerifyRunAt(const RunId& run_id, const rocksdb::Snapshot* snapshot) const;
  Result<RunHeader> GetRunAt(const RunId& run_id, const rocksdb::Snapshot* snapshot) const;
  Result<uint64_t> VerifyAll(const std::function<void(const VerifyReport&)>& report) const;

  StoreStats stats() const;
  const std::string& dir() const { return dir_; }
  bool read_only() const { return options_.read_only; }
  // Blocking calls from a completion callback would wait for the thread running it.
  Status CheckNotCommitThread(const char* what) const {
    if (std::this_thread::get_id() != committer_id_.load(std::memory_order_acquire)) {
      return Status::Ok();
    }
    return Status::FailedPrecondition(std::string("Store::") + what +
                                      " called from a completion callback");
  }
  // kFailedPrecondition once closed. Reads must not race with Close() (caller's duty).
  Status CheckOpen() const {
    if (open_.load(std::memory_order_acquire)) return Status::Ok();
    return Status::FailedPrecondition("store " + dir_ + " is closed");
  }

 private:
  Status OpenDatabase();
  Status CheckFormat();
  rocksdb::ColumnFamilyOptions FamilyOptions(Family family) const;
  Status CheckWritable() const;  // mu_ held
  Status ValidateShape(const Transition& t) const;
  Result<Head> LoadHead(const RunId& run);  // mu_ held
  Status BuildOps(const Transition& t, const Head& head, int64_t time_ns, Pending* p,
                  Head* new_head) const;
  Status Enqueue(std::unique_ptr<Pending> p);  // mu_ held
  void CommitLoop();
  void CommitGroup(std::vector<std::unique_ptr<Pending>>& group);
  void FinishGroup(std::vector<std::unique_ptr<Pending>>& group, const Status& status);
  void TrimHeadCache();  // mu_ held
  const std::string dir_;
  const StoreOptions options_;
  std::unique_ptr<LockFile> lock_;
  std::unique_ptr<rocksdb::Env> env_;
  std::shared_ptr<rocksdb::Cache> cache_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> families_;

  mutable std::mutex mu_;
  std::condition_variable queue_cv_;
  std::deque<std::unique_ptr<Pending>> queue_;  // guarded by mu_
  size_t queue_bytes_ = 0;                      // guarded by mu_
  std::unordered_map<RunId, Head> heads_;       // guarded by mu_
  // Start keys of creations queued but not yet durable, and their runs. Guarded by mu_.
  std::unordered_map<std::string, RunId> pending_start_keys_;
  Status failed_;                  // guarded by mu_: first write error
  bool closing_ = false;           // guarded by mu_
  bool closed_ = false;            // guarded by mu_
  std::mutex close_mu_;            // serializes Close()
  std::atomic<bool> open_{false};  // reads check it: no use after Close()
  std::thread committer_;
  // The commit thread's id while it runs (set in Open(), before any callback can run;
  // cleared after the join, because ids of finished threads are reused).
  std::atomic<std::thread::id> committer_id_{};

  std::atomic<uint64_t> transitions_committed_{0};
  std::atomic<uint64_t> events_committed_{0};
  std::atomic<uint64_t> commit_groups_{0};
};

// ---------------------------------------------------------------------------------------
// Opening and closing.

rocksdb::ColumnFamilyOptions Store::Impl::FamilyOptions(Family family) const {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache_;
  table.block_size = 16 << 10;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  if (family != kEvents && family != kTimers) {
    // Point lookups dominate: runs, dedupe keys, blobs, definitions.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.level_compaction_dynamic_level_bytes = true;
  if (family == kEvents) {
    cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<RunPrefixTransform>();
  }
  cf.write_buffer_size = family == kEvents ? (32 << 20) : (8 << 20);
  const auto supported = rocksdb::GetSupportedCompressions();
  auto has = [&](rocksdb::CompressionType t) {
    return std::find(supported.begin(), supported.end(), t) != supported.end();
  };
  cf.compression =
      has(rocksdb::kLZ4Compression) ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  if (has(rocksdb::kZSTD)) cf.bottommost_compression = rocksdb::kZSTD;
  return cf;
}

Status Store::Impl::Open() {
  if (options_.clock == nullptr) {
    return Status::InvalidArgument("StoreOptions.clock is required");
  }
  std::error_code ec;
  const bool exists = std::filesystem::exists(dir_, ec);
  if (exists && !std::filesystem::is_directory(dir_, ec)) {
    return Status::InvalidArgument("data directory " + dir_ + " exists but is not a directory");
  }
  const bool has_db = std::filesystem::exists(dir_ + "/db/CURRENT", ec);
  if (options_.read_only || !options_.create_if_missing) {
    if (!exists) return Status::NotFound("data directory " + dir_ + " does not exist");
    if (!has_db) {
      return Status::NotFound("no cairn store in " + dir_ + " (missing " + dir_ + "/db/CURRENT)");
    }
  }
  if (!options_.read_only) {
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
      return Status::FailedPrecondition("cannot create data directory " + dir_ + ": " +
                                        ec.message());
    }
    CAIRN_ASSIGN_OR_RETURN(
        lock_, LockFile::Acquire(dir_, options_.owner_description, options_.clock->NowNanos()));
  }
  CAIRN_RETURN_IF_ERROR(OpenDatabase());
  CAIRN_RETURN_IF_ERROR(CheckFormat());
  if (!options_.read_only) {
    committer_ = std::thread([this] { CommitLoop(); });
    committer_id_.store(committer_.get_id(), std::memory_order_release);
  }
  open_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status Store::Impl::OpenDatabase() {
  rocksdb::DBOptions db;
  if (options_.file_system) {
    env_ = rocksdb::NewCompositeEnv(options_.file_system);
    db.env = env_.get();
  }
  db.create_if_missing = !options_.read_only && options_.create_if_missing;
  db.create_missing_column_families = !options_.read_only;
  db.paranoid_checks = true;
  // An incomplete last WAL record (a write torn by the crash, never acknowledged) is
  // dropped; damage anywhere else refuses the open, because recovering "to the point
  // before the damage" would silently drop acknowledged transitions after it. Salvage
  // is the operator's explicit choice (StoreOptions::salvage_wal).
  db.wal_recovery_mode = options_.salvage_wal
                             ? rocksdb::WALRecoveryMode::kPointInTimeRecovery
                             : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db.max_background_jobs = 2;
  db.keep_log_file_num = 4;
  db.max_total_wal_size = 256 << 20;
  cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t i = 0; i < kFamilyCount; ++i) {
    descriptors.emplace_back(kFamilyNames[i], FamilyOptions(static_cast<Family>(i)));
  }
  const std::string path = dir_ + "/db";
  std::error_code ec;
  if (std::filesystem::exists(path + "/CURRENT", ec)) {
    std::vector<std::string> existing;
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db, path, &existing);
    if (!ls.ok()) return OpenError(ls, path);
    for (const std::string& name : existing) {
      if (std::find(std::begin(kFamilyNames), std::end(kFamilyNames), name) ==
          std::end(kFamilyNames)) {
        return Status::DataLoss("store " + path + " is not a cairn store: it has column family '" +
                                name + "'");
      }
    }
    for (const char* name : kFamilyNames) {
      const bool present = std::find(existing.begin(), existing.end(), name) != existing.end();
      if (options_.read_only && !present && name == kFamilyNames[kWorkflows]) {
        descriptors.pop_back();  // an older store: no workflow versions to read
        continue;
      }
      if (options_.read_only && !present) {
        return Status::DataLoss("store " + path + " is not a cairn store: column family '" + name +
                                "' is missing");
      }
    }
  }
  rocksdb::Status s = options_.read_only
                          ? rocksdb::DB::OpenForReadOnly(db, path, descriptors, &families_, &db_)
                          : rocksdb::DB::Open(db, path, descriptors, &families_, &db_);
  if (!s.ok()) return OpenError(s, path);
  families_.resize(kFamilyCount, nullptr);
  return Status::Ok();
}

Status Store::Impl::CheckFormat() {
  std::string version;
  Status s = GetValue(kDefault, keys::kFormatVersionKey, &version);
  if (s.code() == StatusCode::kNotFound) {
    if (options_.read_only) {
      return Status::DataLoss("store " + dir_ + "/db has no cairn format version");
    }
    // Unstamped: either just created (or a crash came before the stamp), and then empty,
    // or somebody else's database, which is never adopted.
    for (size_t i = 0; i < kFamilyCount; ++i) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), families_[i]));
      it->SeekToFirst();
      if (it->Valid()) {
        return Status::DataLoss("store " + dir_ +
                                "/db is not a cairn store: it has no cairn "
                                "format version and its '" +
                                kFamilyNames[i] + "' family is not empty");
      }
      CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "check an unstamped store"));
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(
        db_->Put(wo, families_[kDefault],
                 rocksdb::Slice(keys::kFormatVersionKey.data(), keys::kFormatVersionKey.size()),
                 rocksdb::Slice(keys::kFormatVersion.data(), keys::kFormatVersion.size())),
        "write format version");
  }
  CAIRN_RETURN_IF_ERROR(s);
  if (version != keys::kFormatVersion) {
    return Status::FailedPrecondition("store " + dir_ + " has format version '" + version +
                                      "'; this cairn reads version " +
                                      std::string(keys::kFormatVersion));
  }
  return Status::Ok();
}

Status Store::Impl::Close() {
  CAIRN_RETURN_IF_ERROR(CheckNotCommitThread("Close()"));
  std::lock_guard close_lock(close_mu_);  // one closer at a time; later ones see closed_
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Ok();
    closing_ = true;
  }
  queue_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  committer_id_.store(std::thread::id(), std::memory_order_release);
  Status result;
  {
    std::lock_guard lock(mu_);
    result = failed_;
    closed_ = true;
  }
  open_.store(false, std::memory_order_release);
  if (db_ != nullptr) {
    if (!options_.read_only && result.ok() && options_.durability == Durability::kBuffered) {
      // A clean shutdown makes buffered writes durable too.
      result = FromRocks(db_->SyncWAL(), "sync WAL on close");
    }
    for (auto* h : families_) {
      if (h != nullptr) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    families_.clear();
    Status s = FromRocks(db_->Close(), "close store");
    if (result.ok()) result = s;
    delete db_;
    db_ = nullptr;
  }
  lock_.reset();
  return result;
}

// ---------------------------------------------------------------------------------------
// Writes.

Status Store::Impl::CheckWritable() const {
  if (options_.read_only) return Status::FailedPrecondition("store " + dir_ + " is open read-only");
  if (closing_ || closed_) return Status::FailedPrecondition("store " + dir_ + " is closed");
  if (!failed_.ok()) {
    return Status::FailedPrecondition("store " + dir_ + " stopped accepting writes after a " +
                                      "write error (" + failed_.ToString() +
                                      "); reopen the data directory to recover");
  }
  return Status::Ok();
}

Status Store::Impl::ValidateShape(const Transition& t) const {
  // Messages are built only on failure: this runs for every transition.
  auto where = [&] { return "transition for run " + t.run_id.str(); };
  if (t.run_id.empty()) return Status::InvalidArgument("transition has no run id");
  if (t.events.empty()) return Status::InvalidArgument(where() + " has no events");
  if (t.events.size() > limits::events_per_transition_max) {
    return Status::InvalidArgument(where() + " has " + std::to_string(t.events.size()) +
                                   " events; at most " +
                                   std::to_string(limits::events_per_transition_max));
  }
  if (t.header.status == RunStatus::kUnknown) {
    return Status::InvalidArgument(where() + ": header.status must be set");
  }
  const bool creates = t.expected_next_seq == 0;
  for (size_t i = 0; i < t.events.size(); ++i) {
    const EventBody& body = t.events[i].body;
    auto at = [&] {
      return where() + ", event " + std::to_string(i) + " (" + std::string(KindName(body)) + ")";
    };
    if (std::holds_alternative<UnknownBody>(body)) {
      return Status::InvalidArgument(at() + ": unknown event kind cannot be written");
    }
    if (IsRunStarted(body) && !(creates && i == 0)) {
      return Status::InvalidArgument(at() + ": run_started may only be a run's first event");
    }
    if (creates && i == 0 && !IsRunStarted(body)) {
      return Status::InvalidArgument(at() + ": a new run's first event must be run_started");
    }
    if (IsRunStopped(body) && i + 1 != t.events.size()) {
      return Status::InvalidArgument(at() + ": run_stopped must be the last event");
    }
    if (const auto* ts = std::get_if<TimerScheduled>(&body);
        ts != nullptr &&
        (ts->timer_id.empty() || ts->timer_id.size() > limits::timer_id_bytes_max)) {
      return Status::InvalidArgument(at() + ": timer_id must be 1.." +
                                     std::to_string(limits::timer_id_bytes_max) + " bytes");
    }
    if (const auto* rs = std::get_if<RunStarted>(&body);
        rs != nullptr && rs->start_key.size() > limits::start_key_bytes_max) {
      return Status::InvalidArgument(at() + ": start_key is longer than " +
                                     std::to_string(limits::start_key_bytes_max) + " bytes");
    }
  }
  const bool stops = IsRunStopped(t.events.back().body);
  if (stops != IsTerminal(t.header.status)) {
    return Status::InvalidArgument(
        where() + ": header.status " + std::string(Name(t.header.status)) +
        (stops ? " is not terminal, but the transition ends with run_stopped"
               : " is terminal, but the transition does not end with run_stopped"));
  }
  for (const auto& blob : t.blobs) {
    if (blob.size() > limits::blob_bytes_max) {
      return Status::InvalidArgument(where() + ": a blob of " + std::to_string(blob.size()) +
                                     " bytes exceeds " + std::to_string(limits::blob_bytes_max));
    }
  }
  return Status::Ok();
}

Result<Head> Store::Impl::LoadHead(const RunId& run) {
  if (auto it = heads_.find(run); it != heads_.end()) return it->second;
  Head head;
  auto header = GetRun(run);
  if (header.ok()) {
    head.next_seq = header->next_seq;
    head.chain_head = header->chain_head;
    head.status = header->status;
    head.created_at_ns = header->created_at_ns;
    head.timers = header->timers;
    if (header->status == RunStatus::kUnknown) {
      return Status::FailedPrecondition("run " + run.str() +
                                        " has a status this cairn does not know (written by a "
                                        "newer version?); it cannot be appended to");
    }
  } else if (header.status().code() != StatusCode::kNotFound) {
    return header.status();
  }
  return head;
}

Status Store::Impl::BuildOps(const Transition& t, const Head& head, int64_t time_ns, Pending* p,
                             Head* new_head) const {
  *new_head = head;
  Event event;
  event.run_id = t.run_id;
  event.time_ns = time_ns;
  uint64_t seq = head.next_seq;
  Sha256 prev = head.chain_head;
  for (const NewEvent& e : t.events) {
    event.seq = EventSeq(seq);
    event.prev_hash = prev;
    event.task_path = e.task_path;
    event.body = e.body;
    Op op{kEvents, keys::EventKey(t.run_id, seq), {}, false};
    if (Status s = EncodeEvent(event, &op.value); !s.ok()) {
      return s.WithContext("event " + std::to_string(seq) + " of run " + t.run_id.str());
    }
    prev = Sha256::Of(prev.view(), op.value);
    p->bytes += op.key.size() + op.value.size();
    p->ops.push_back(std::move(op));
    if (p->bytes > limits::transition_bytes_max) {
      return Status::InvalidArgument("transition for run " + t.run_id.str() + " exceeds " +
                                     std::to_string(limits::transition_bytes_max) + " bytes");
    }
    CAIRN_RETURN_IF_ERROR(ApplyTimerEvent(t.run_id, seq, e.body, &new_head->timers, &p->ops));
    ++seq;
  }
  if (IsTerminal(t.header.status)) {
    // A stopped run's timers will never fire: drop them with the run.
    for (const TimerRef& timer : new_head->timers) {
      p->ops.push_back(
          {kTimers, keys::TimerKey(timer.due_at_ns, t.run_id, timer.timer_id), {}, true});
    }
    new_head->timers.clear();
  }
  new_head->next_seq = seq;
  new_head->chain_head = prev;
  new_head->status = t.header.status;
  if (head.next_seq == 0) new_head->created_at_ns = time_ns;

  RunHeader header = t.header;
  header.run_id = t.run_id;
  header.next_seq = seq;
  header.chain_head = prev;
  header.created_at_ns = new_head->created_at_ns;
  header.updated_at_ns = time_ns;
  header.timers = new_head->timers;
  Op header_op{kRuns, t.run_id.str(), {}, false};
  if (Status s = EncodeRunHeader(header, &header_op.value); !s.ok()) {
    return s.WithContext("header of run " + t.run_id.str());
  }
  p->ops.push_back(std::move(header_op));

  if (head.status != header.status) {
    if (head.status != RunStatus::kUnknown) {
      p->ops.push_back({kStatusIndex, keys::StatusIndexKey(head.status, t.run_id), {}, true});
    }
    p->ops.push_back({kStatusIndex, keys::StatusIndexKey(header.status, t.run_id), {}, false});
    if (IsTerminal(header.status)) {
      p->ops.push_back({kActive, t.run_id.str(), {}, true});
    } else {
      p->ops.push_back(
          {kActive, t.run_id.str(), std::string(1, static_cast<char>(header.status)), false});
    }
  }
  if (!p->start_key.empty()) p->ops.push_back({kDedupe, p->start_key, t.run_id.str(), false});
  for (const std::string& blob : t.blobs) {
    p->ops.push_back({kBlobs, std::string(Sha256::Of(blob).view()), blob, false});
  }
  p->bytes = 0;
  for (const Op& op : p->ops) p->bytes += op.key.size() + op.value.size();
  if (p->bytes > limits::transition_bytes_max) {
    return Status::InvalidArgument("transition for run " + t.run_id.str() + " is " +
                                   std::to_string(p->bytes) + " bytes; at most " +
                                   std::to_string(limits::transition_bytes_max));
  }
  p->result.first_seq = EventSeq(head.next_seq);
  p->result.next_seq = seq;
  p->result.chain_head = prev;
  return Status::Ok();
}

Status Store::Impl::Submit(Transition t, AppendCallback done) {
  if (!done) return Status::InvalidArgument("Submit() needs a completion callback");
  CAIRN_RETURN_IF_ERROR(ValidateShape(t));
  auto p = std::make_unique<Pending>();
  p->run = t.run_id;
  p->done = std::move(done);
  if (t.expected_next_seq == 0) p->start_key = std::get<RunStarted>(t.events[0].body).start_key;
  const int64_t time_ns = t.time_ns != 0 ? t.time_ns : options_.clock->NowNanos();

  std::lock_guard lock(mu_);
  CAIRN_RETURN_IF_ERROR(CheckWritable());
  CAIRN_ASSIGN_OR_RETURN(Head head, LoadHead(t.run_id));
  const std::string& run = t.run_id.str();
  p->ops.reserve(t.events.size() + 6 + t.blobs.size());
  if (t.expected_next_seq == 0) {
    if (head.next_seq != 0) return Status::AlreadyExists("run " + run + " already exists");
    if (!p->start_key.empty()) {
      if (auto it = pending_start_keys_.find(p->start_key); it != pending_start_keys_.end()) {
        return Status::AlreadyExists("start key '" + p->start_key + "' already started run " +
                                     it->second.str() + " (being created)");
      }
      CAIRN_ASSIGN_OR_RETURN(auto existing, FindStartKey(p->start_key));
      if (existing.has_value()) {
        return Status::AlreadyExists("start key '" + p->start_key + "' already started run " +
                                     existing->str());
      }
    }
  } else if (head.next_seq == 0) {
    return Status::NotFound("run " + run + " does not exist");
  } else if (IsTerminal(head.status)) {
    return Status::FailedPrecondition("run " + run + " has stopped (" +
                                      std::string(Name(head.status)) +
                                      "); it takes no more events");
  } else if (head.next_seq != t.expected_next_seq) {
    return Status::Aborted("run " + run + " is at seq " + std::to_string(head.next_seq) +
                           " but the transition expected " + std::to_string(t.expected_next_seq));
  }
  if (head.next_seq + t.events.size() > limits::events_per_run_max) {
    return Status::FailedPrecondition("run " + run + " reached the maximum history length");
  }
  Head new_head;
  CAIRN_RETURN_IF_ERROR(BuildOps(t, head, time_ns, p.get(), &new_head));
  if (queue_.size() >= limits::commit_queue_transitions_max ||
      queue_bytes_ + p->bytes > limits::commit_queue_bytes_max) {
    return Status::ResourceExhausted("commit queue is full (" + std::to_string(queue_.size()) +
                                     " transitions, " + std::to_string(queue_bytes_) +
                                     " bytes); retry later");
  }
  new_head.in_flight = head.in_flight + 1;
  heads_[t.run_id] = new_head;
  if (!p->start_key.empty()) pending_start_keys_.emplace(p->start_key, t.run_id);
  return Enqueue(std::move(p));
}

Status Store::Impl::SubmitOps(std::vector<Op> ops, AppendCallback done) {
  auto p = std::make_unique<Pending>();
  p->ops = std::move(ops);
  for (const Op& op : p->ops) p->bytes += op.key.size() + op.value.size();
  p->done = std::move(done);
  std::lock_guard lock(mu_);
  CAIRN_RETURN_IF_ERROR(CheckWritable());
  if (queue_.size() >= limits::commit_queue_transitions_max ||
      queue_bytes_ + p->bytes > limits::commit_queue_bytes_max) {
    return Status::ResourceExhausted("commit queue is full; retry later");
  }
  return Enqueue(std::move(p));
}

Status Store::Impl::SubmitOpAndWait(Op op) {
  std::vector<Op> ops;
  ops.push_back(std::move(op));
  std::promise<Status> promise;
  auto future = promise.get_future();
  CAIRN_RETURN_IF_ERROR(SubmitOps(
      std::move(ops), [&promise](Result<AppendResult> r) { promise.set_value(r.status()); }));
  return future.get();
}

Status Store::Impl::Enqueue(std::unique_ptr<Pending> p) {
  queue_bytes_ += p->bytes;
  queue_.push_back(std::move(p));
  if (queue_.size() == 1) queue_cv_.notify_one();
  return Status::Ok();
}

void Store::Impl::CommitLoop() {
  std::vector<std::unique_ptr<Pending>> group;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      queue_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty()) return;  // closing and drained
      size_t bytes = 0;
      while (!queue_.empty() && group.size() < limits::group_commit_transitions_max &&
             (group.empty() || bytes + queue_.front()->bytes <= limits::group_commit_bytes_max)) {
        bytes += queue_.front()->bytes;
        queue_bytes_ -= queue_.front()->bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitGroup(group);
    group.clear();
  }
}

void Store::Impl::CommitGroup(std::vector<std::unique_ptr<Pending>>& group) {
  rocksdb::WriteBatch batch;
  Status status;
  for (const auto& p : group) {
    for (const Op& op : p->ops) {
      rocksdb::ColumnFamilyHandle* cf = families_[op.family];
      rocksdb::Status s = op.is_delete ? batch.Delete(cf, op.key) : batch.Put(cf, op.key, op.value);
      if (!s.ok()) status = FromRocks(s, "build write batch");
    }
  }
  if (status.ok()) {
    rocksdb::WriteOptions wo;
    wo.sync = options_.durability == Durability::kSync;
    status = FromRocks(db_->Write(wo, &batch), "write transitions");
  }
  commit_groups_.fetch_add(1, std::memory_order_relaxed);
  FinishGroup(group, status);
}

void Store::Impl::FinishGroup(std::vector<std::unique_ptr<Pending>>& group, const Status& status) {
  std::vector<std::unique_ptr<Pending>> also_failed;
  {
    std::lock_guard lock(mu_);
    for (const auto& p : group) {
      if (!p->start_key.empty()) pending_start_keys_.erase(p->start_key);
      if (!p->run.has_value()) continue;
      auto it = heads_.find(*p->run);
      CAIRN_ASSERT(it != heads_.end() && it->second.in_flight > 0,
                   "head of a run in flight vanished");
      --it->second.in_flight;
    }
    if (!status.ok()) {
      // Fail-stop: nothing more is written. The in-memory heads may now be ahead of the
      // disk, so they are dropped with everything still queued.
      if (failed_.ok()) failed_ = status;
      while (!queue_.empty()) {
        also_failed.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queue_bytes_ = 0;
      heads_.clear();
      pending_start_keys_.clear();
    } else {
      TrimHeadCache();
    }
  }
  if (status.ok()) {
    uint64_t transitions = 0, events = 0;
    for (const auto& p : group) {
      if (!p->run.has_value()) continue;
      ++transitions;
      events += p->result.next_seq - p->result.first_seq.value();
    }
    transitions_committed_.fetch_add(transitions, std::memory_order_relaxed);
    events_committed_.fetch_add(events, std::memory_order_relaxed);
    for (auto& p : group) p->done(p->result);
    return;
  }
  // The failed group's transitions may or may not be on disk (a failed sync says nothing
  // about what reached the platter): kAborted tells the caller to reopen and re-read,
  // not to retry the same call. Those queued behind it were never written.
  const Status unknown = Status::Aborted("write failed (" + status.ToString() +
                                         "); the transition may or may not be durable: "
                                         "reopen the store and re-read the run");
  for (auto& p : group) p->done(unknown);
  const Status later = Status::Aborted("not written: an earlier write failed (" +
                                       status.ToString() + "); reopen the store");
  for (auto& p : also_failed) p->done(later);
}

void Store::Impl::TrimHeadCache() {
  if (heads_.size() <= kHeadCacheEntriesMax) return;
  for (auto it = heads_.begin(); it != heads_.end() && heads_.size() > kHeadCacheEntriesMax / 2;) {
    it = it->second.in_flight == 0 ? heads_.erase(it) : std::next(it);
  }
}

// ---------------------------------------------------------------------------------------
// Reads.

Status Store::Impl::GetValue(Family family, std::string_view key, std::string* value,
                             const rocksdb::Snapshot* snapshot) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  rocksdb::Status s =
      db_->Get(ro, families_[family], rocksdb::Slice(key.data(), key.size()), value);
  if (s.IsNotFound()) return Status::NotFound(std::string(kFamilyNames[family]) + " key not found");
  return FromRocks(s, std::string("read ") + kFamilyNames[family]);
}

Result<std::vector<std::pair<std::string, std::string>>> Store::Impl::ListPrefix(
    Family family, const std::string& prefix, size_t strip) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), families_[family]));
  for (it->Seek(prefix); it->Valid() && out.size() < limits::list_runs_max; it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.substr(0, prefix.size()) != prefix) break;
    out.emplace_back(std::string(key.substr(std::min(strip, key.size()))),
                     std::string(it->value().data(), it->value().size()));
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), std::string("scan ") + kFamilyNames[family]));
  return out;
}

Result<RunHeader> Store::Impl::GetRun(const RunId& run_id) const {
  return GetRunAt(run_id, nullptr);
}

Result<RunHeader> Store::Impl::GetRunAt(const RunId& run_id,
                                        const rocksdb::Snapshot* snapshot) const {
  std::string value;
  Status s = GetValue(kRuns, run_id.str(), &value, snapshot);
  if (s.code() == StatusCode::kNotFound)
    return Status::NotFound("run " + run_id.str() + " not found");
  CAIRN_RETURN_IF_ERROR(s);
  auto header = DecodeRunHeader(value);
  if (!header.ok()) return header.status().WithContext("header of run " + run_id.str());
  if (header->run_id != run_id) {
    return Status::DataLoss("header stored for run " + run_id.str() + " names run " +
                            header->run_id.str());
  }
  return header;
}

namespace {

// One event of `run_id`'s history read back at `key`: decoded into `event` and checked
// against its key (the run, and `expected` as its seq). The errors ScanHistory reports.
Status DecodeHistoryEvent(const RunId& run_id, std::string_view key, std::string_view bytes,
                          uint64_t expected, Event* event) {
  std::string_view run;
  uint64_t seq = 0;
  if (!keys::ParseEventKey(key, &run, &seq) || run != run_id.str()) {
    return Status::DataLoss("malformed events key in run " + run_id.str());
  }
  if (seq != expected) {
    return Status::DataLoss("run " + run_id.str() + ": event " + std::to_string(expected) +
                            " is missing (next stored is " + std::to_string(seq) + ")");
  }
  Status decoded = DecodeEvent(bytes, event);
  if (!decoded.ok()) {
    return decoded.WithContext("run " + run_id.str() + ", event " + std::to_string(seq));
  }
  if (event->run_id != run_id || event->seq.value() != seq) {
    return Status::DataLoss("run " + run_id.str() + ": event stored at seq " + std::to_string(seq) +
                            " claims to be run " + event->run_id.str() + " seq " +
                            std::to_string(event->seq.value()));
  }
  return Status::Ok();
}

}  // namespace

// A run with no events: kNotFound unless it has a header.
Status Store::Impl::CheckRunExists(const RunId& run_id) const {
  std::string ignored;
  Status s = GetValue(kRuns, run_id.str(), &ignored);
  if (s.code() == StatusCode::kNotFound) {
    return Status::NotFound("run " + run_id.str() + " not found");
  }
  return s;
}

Status Store::Impl::ScanHistory(const RunId& run_id, uint64_t from,
                                const std::function<bool(const StoredEvent&)>& visit) const {
  const std::string upper = keys::EventPrefixEnd(run_id);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.readahead_size = 1 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, families_[kEvents]));
  uint64_t expected = from;
  bool any = false;
  Event event;  // reused: decoding overwrites it
  for (it->Seek(keys::EventKey(run_id, from)); it->Valid(); it->Next()) {
    any = true;
    const std::string_view bytes = ToView(it->value());
    CAIRN_RETURN_IF_ERROR(DecodeHistoryEvent(run_id, ToView(it->key()), bytes, expected, &event));
    if (!visit(StoredEvent{event, bytes})) return Status::Ok();
    ++expected;
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan events of run " + run_id.str()));
  if (!any) CAIRN_RETURN_IF_ERROR(CheckRunExists(run_id));
  return Status::Ok();
}

Status Store::Impl::ScanHistories(
    const std::vector<RunId>& runs,
    const std::function<bool(size_t, Result<std::vector<Event>>)>& visit) const {
  rocksdb::ReadOptions ro;
  ro.readahead_size = 1 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, families_[kEvents]));
  // Room for as many events as the previous run had (runs of one workflow are alike), up
  // to a bound: one long history must not make every later one reserve its length.
  constexpr size_t kReserveEventsMax = 1024;
  size_t size_hint = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunId& run_id = runs[i];
    const std::string prefix = keys::EventPrefix(run_id);
    const std::string first = keys::EventKey(run_id, 0);
    // Histories read in id order follow one another: the iterator already sits at the
    // next run's first event, and only a run elsewhere costs a seek.
    if (!it->Valid() || ToView(it->key()) != first) it->Seek(first);
    std::vector<Event> history;
    history.reserve(size_hint);
    Status status;
    for (; it->Valid() && ToView(it->key()).starts_with(prefix); it->Next()) {
      // Decoded in place. The id is set first: the decoder then only compares the stored
      // one with it instead of parsing it again (DecodeHistoryEvent still checks it).
      Event& event = history.emplace_back();
      event.run_id = run_id;
      status = DecodeHistoryEvent(run_id, ToView(it->key()), ToView(it->value()),
                                  history.size() - 1, &event);
      if (!status.ok()) break;
    }
    size_hint = std::min(history.size(), kReserveEventsMax);
    CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan events of run " + run_id.str()));
    if (status.ok() && history.empty()) status = CheckRunExists(run_id);
    const bool go_on = status.ok() ? visit(i, std::move(history)) : visit(i, std::move(status));
    if (!go_on) return Status::Ok();
  }
  return Status::Ok();
}

Result<std::vector<RunSummary>> Store::Impl::ListRuns(std::optional<RunStatus> status,
                                                      const std::string& start_after,
                                                      size_t limit) const {
  limit = std::min(limit, limits::list_runs_max);
  std::vector<RunSummary> out;
  if (status.has_value()) {
    const std::string prefix(1, static_cast<char>(*status));
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), families_[kStatusIndex]));
    for (it->Seek(prefix + start_after); it->Valid() && out.size() < limit; it->Next()) {
      const std::string_view key = ToView(it->key());
      if (key.empty() || key[0] != prefix[0]) break;
      const std::string_view id = key.substr(1);
      if (id == start_after) continue;
      auto run = RunId::Parse(id);
      if (!run.ok()) return Status::DataLoss("status index holds a malformed run id");
      out.push_back({std::move(run).value(), *status});
    }
    CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan status index"));
    return out;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), families_[kRuns]));
  for (it->Seek(start_after); it->Valid() && out.size() < limit; it->Next()) {
    if (ToView(it->key()) == start_after) continue;
    auto header = DecodeRunHeader(ToView(it->value()));
    if (!header.ok()) {
      // Listed as unknown rather than hiding every other run; VerifyRun says what is wrong.
      auto id = RunId::Parse(ToView(it->key()));
      if (!id.ok()) return Status::DataLoss("runs family holds a malformed run id");
      out.push_back({std::move(id).value(), RunStatus::kUnknown});
      continue;
    }
    out.push_back({header->run_id, header->status});
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan runs"));
  return out;
}

Result<std::vector<RunSummary>> Store::Impl::ListActiveRuns(const std::string& start_after,
                                                            size_t limit) const {
  limit = std::min(limit, limits::list_runs_max);
  std::vector<RunSummary> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), families_[kActive]));
  for (it->Seek(start_after); it->Valid() && out.size() < limit; it->Next()) {
    const std::string_view key = ToView(it->key());
    if (key == start_after) continue;
    auto run = RunId::Parse(key);
    if (!run.ok() || it->value().size() != 1)
      return Status::DataLoss("malformed active-runs entry");
    out.push_back({std::move(run).value(), static_cast<RunStatus>(it->value()[0])});
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan active runs"));
  return out;
}

Result<std::vector<DueTimer>> Store::Impl::DueTimers(int64_t now_ns, size_t limit) const {
  const std::string upper = keys::TimerKeyUpperBound(now_ns);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, families_[kTimers]));
  limit = std::min(limit, limits::due_timers_max);
  std::vector<DueTimer> out;
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    DueTimer timer;
    std::string_view run, timer_id;
    if (!keys::ParseTimerKey(ToView(it->key()), &timer.due_at_ns, &run, &timer_id) ||
        it->value().size() != 1) {
      return Status::DataLoss("malformed timers entry");
    }
    auto run_id = RunId::Parse(run);
    if (!run_id.ok()) return Status::DataLoss("timers entry holds a malformed run id");
    timer.run_id = std::move(run_id).value();
    timer.timer_id = std::string(timer_id);
    timer.purpose = static_cast<TimerPurpose>(it->value()[0]);
    out.push_back(std::move(timer));
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan timers"));
  return out;
}

Result<std::optional<RunId>> Store::Impl::FindStartKey(std::string_view start_key) const {
  std::string value;
  Status s = GetValue(kDedupe, start_key, &value);
  if (s.code() == StatusCode::kNotFound) return std::optional<RunId>();
  CAIRN_RETURN_IF_ERROR(s);
  auto run = RunId::Parse(value);
  if (!run.ok()) return Status::DataLoss("start key maps to a malformed run id");
  return std::optional<RunId>(std::move(run).value());
}

Result<std::string> Store::Impl::GetContent(Family family, const Sha256& digest,
                                            const char* what) const {
  std::string value;
  Status s = GetValue(family, digest.view(), &value);
  if (s.code() == StatusCode::kNotFound) {
    return Status::NotFound(std::string(what) + " " + digest.Hex() + " not found");
  }
  CAIRN_RETURN_IF_ERROR(s);
  if (Sha256::Of(value) != digest) {
    return Status::DataLoss(std::string(what) + " " + digest.Hex() +
                            " is corrupt: its bytes hash to " + Sha256::Of(value).Hex());
  }
  return value;
}

StoreStats Store::Impl::stats() const {
  StoreStats s;
  s.transitions_committed = transitions_committed_.load(std::memory_order_relaxed);
  s.events_committed = events_committed_.load(std::memory_order_relaxed);
  s.commit_groups = commit_groups_.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  s.queued_transitions = queue_.size();
  return s;
}

// ---------------------------------------------------------------------------------------
// Audit.

Result<VerifyReport> Store::Impl::VerifyRun(const RunId& run_id) const {
  // Header and events must be read at one point in time, or a concurrent append would
  // look like tampering.
  rocksdb::ManagedSnapshot snapshot(db_);
  return VerifyRunAt(run_id, snapshot.snapshot());
}

Result<VerifyReport> Store::Impl::VerifyRunAt(const RunId& run_id,
                                              const rocksdb::Snapshot* snapshot) const {
  VerifyReport report;
  report.run_id = run_id;
  auto fail = [&](uint64_t seq, std::string problem) {
    report.ok = false;
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
  };
  std::optional<RunHeader> header;
  {
    auto h = GetRunAt(run_id, snapshot);
    if (h.ok()) {
      header = std::move(h).value();
    } else if (h.status().code() == StatusCode::kDataLoss) {
      report.ok = false;
      report.problem = h.status().message();
    } else if (h.status().code() != StatusCode::kNotFound) {
      return h.status();
    }
  }
  const std::string upper = keys::EventPrefixEnd(run_id);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.readahead_size = 1 << 20;
  ro.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, families_[kEvents]));
  uint64_t expected = 0;
  Sha256 prev;
  for (it->Seek(keys::EventPrefix(run_id)); it->Valid() && report.ok; it->Next()) {
    std::string_view run;
    uint64_t seq = 0;
    if (!keys::ParseEventKey(ToView(it->key()), &run, &seq) || run != run_id.str()) {
      fail(expected, "malformed key after event " + std::to_string(expected));
      break;
    }
    if (seq != expected) {
      fail(expected, "event " + std::to_string(expected) + " is missing (next stored is " +
                         std::to_string(seq) + ")");
      break;
    }
    const std::string_view bytes = ToView(it->value());
    auto event = DecodeEvent(bytes);
    if (!event.ok()) {
      fail(seq, "event " + std::to_string(seq) + " cannot be decoded: " + event.status().message());
      break;
    }
    if (event->run_id != run_id || event->seq.value() != seq) {
      fail(seq, "event stored at seq " + std::to_string(seq) + " claims to be run " +
                    event->run_id.str() + " seq " + std::to_string(event->seq.value()));
      break;
    }
    if (event->prev_hash != prev) {
      // Either event seq-1 was altered (its hash changed) or this event's link was.
      fail(seq == 0 ? 0 : seq - 1,
           "chain broken between events " +
               (seq == 0 ? std::string("(start)") : std::to_string(seq - 1)) + " and " +
               std::to_string(seq) + ": event " + std::to_string(seq) + " records prev_hash " +
               event->prev_hash.Hex() + " but the chain computes " + prev.Hex());
      break;
    }
    prev = Sha256::Of(prev.view(), bytes);
    ++expected;
    ++report.events_checked;
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan events of run " + run_id.str()));
  if (!report.ok) return report;
  if (!header.has_value()) {
    if (expected == 0) return Status::NotFound("run " + run_id.str() + " not found");
    fail(0, "run has " + std::to_string(expected) + " events but no header");
    return report;
  }
  if (header->next_seq > expected) {
    fail(expected, "history ends after " + std::to_string(expected) +
                       " events but the header records " + std::to_string(header->next_seq) +
                       " (truncated)");
  } else if (header->next_seq < expected) {
    fail(header->next_seq, "event " + std::to_string(header->next_seq) +
                               " lies beyond the header's end (" +
                               std::to_string(header->next_seq) + " events)");
  } else if (header->chain_head != prev) {
    fail(expected == 0 ? 0 : expected - 1, "the last event hashes to " + prev.Hex() +
                                               " but the header's chain head is " +
                                               header->chain_head.Hex());
  }
  return report;
}

Result<uint64_t> Store::Impl::VerifyAll(
    const std::function<void(const VerifyReport&)>& report) const {
  // Runs come from two sorted streams: headers and event prefixes. A run present in
  // either is verified once, so that events without a header are caught too.
  rocksdb::ManagedSnapshot snapshot(db_);  // one point in time for the whole walk
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  std::unique_ptr<rocksdb::Iterator> runs(db_->NewIterator(ro, families_[kRuns]));
  std::unique_ptr<rocksdb::Iterator> events(db_->NewIterator(ro, families_[kEvents]));
  runs->SeekToFirst();
  events->SeekToFirst();
  uint64_t failures = 0;
  auto check = [&](std::string_view id) -> Status {
    auto run = RunId::Parse(id);
    VerifyReport r;
    if (!run.ok()) {
      r.ok = false;
      r.problem = "malformed run id in the store: " + run.status().message();
    } else {
      CAIRN_ASSIGN_OR_RETURN(r, VerifyRunAt(*run, snapshot.snapshot()));
    }
    if (!r.ok) ++failures;
    report(r);
    return Status::Ok();
  };
  while (runs->Valid() || events->Valid()) {
    std::string_view event_run;
    uint64_t seq = 0;
    if (events->Valid() && !keys::ParseEventKey(ToView(events->key()), &event_run, &seq)) {
      return Status::DataLoss("malformed key in the events family");
    }
    const std::string_view header_run = runs->Valid() ? ToView(runs->key()) : std::string_view();
    std::string id;
    if (!events->Valid() || (runs->Valid() && header_run <= event_run)) {
      id = std::string(header_run);
    } else {
      id = std::string(event_run);
    }
    CAIRN_RETURN_IF_ERROR(check(id));
    if (runs->Valid() && header_run == id) runs->Next();
    if (events->Valid() && event_run == id) events->Seek(id + '\x01');
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(runs->status(), "scan runs"));
  CAIRN_RETURN_IF_ERROR(FromRocks(events->status(), "scan events"));
  return failures;
}

// ---------------------------------------------------------------------------------------
// Store: the public face.

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, StoreOptions options) {
  auto impl = std::make_unique<Impl>(dir, std::move(options));
  Status s = impl->Open();
  if (!s.ok()) {
    impl->Close().IgnoreError();
    return s;
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::Close() { return impl_->Close(); }

Status Store::Submit(Transition t, AppendCallback done) {
  return impl_->Submit(std::move(t), std::move(done));
}

Result<AppendResult> Store::Append(Transition t) {
  CAIRN_RETURN_IF_ERROR(impl_->CheckNotCommitThread("Append()"));
  std::promise<Result<AppendResult>> promise;
  auto future = promise.get_future();
  CAIRN_RETURN_IF_ERROR(impl_->Submit(
      std::move(t), [&promise](Result<AppendResult> r) { promise.set_value(std::move(r)); }));
  return future.get();
}

namespace {
Result<Sha256> PutContent(Store::Impl& impl, Family family, std::string content, size_t max_bytes,
                          const char* what, const char* method) {
  if (content.size() > max_bytes) {
    return Status::InvalidArgument(std::string(what) + " of " + std::to_string(content.size()) +
                                   " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  CAIRN_RETURN_IF_ERROR(impl.CheckNotCommitThread(method));
  const Sha256 digest = Sha256::Of(content);
  CAIRN_RETURN_IF_ERROR(
      impl.SubmitOpAndWait({family, std::string(digest.view()), std::move(content), false}));
  return digest;
}
}  // namespace

Result<Sha256> Store::PutDefinition(std::string canonical_bytes) {
  return PutContent(*impl_, kDefinitions, std::move(canonical_bytes), limits::definition_bytes_max,
                    "definition", "PutDefinition()");
}

Result<Sha256> Store::PutBlob(std::string content) {
  return PutContent(*impl_, kBlobs, std::move(content), limits::blob_bytes_max, "blob",
                    "PutBlob()");
}

Status Store::PutWorkflowVersion(const WorkflowVersion& version) {
  if (version.name.empty() || version.version.empty()) {
    return Status::InvalidArgument("PutWorkflowVersion(): name and version are required");
  }
  for (const std::string* part : {&version.namespace_, &version.name, &version.version}) {
    if (part->size() > 255 || part->find('\0') != std::string::npos) {
      return Status::InvalidArgument("PutWorkflowVersion(): '" + *part +
                                     "' is longer than 255 bytes or holds a NUL byte");
    }
  }
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  CAIRN_RETURN_IF_ERROR(impl_->CheckNotCommitThread("PutWorkflowVersion()"));
  const std::string key = keys::WorkflowKey(version.namespace_, version.name, version.version);
  std::string existing;
  Status found = impl_->GetWorkflowValue(key, &existing);
  if (found.ok()) {
    if (existing.size() >= Sha256::kSize &&
        std::string_view(existing).substr(0, Sha256::kSize) == version.hash.view()) {
      return Status::Ok();
    }
    return Status::AlreadyExists("workflow " + version.namespace_ + "/" + version.name + ":" +
                                 version.version +
                                 " is already applied with a different definition");
  }
  if (found.code() != StatusCode::kNotFound) return found;
  std::string value(version.hash.view());
  keys::AppendBigEndian64(&value, static_cast<uint64_t>(version.applied_at_ns));
  return impl_->SubmitOpAndWait({kWorkflows, key, std::move(value), false});
}

namespace {

constexpr std::string_view kSettingPrefix = "setting/";

Status CheckSettingKey(std::string_view key) {
  const bool ok =
      !key.empty() && key.size() <= 200 && std::all_of(key.begin(), key.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '.' || c == '/' || c == ':' || c == '-';
      });
  if (!ok) {
    return Status::InvalidArgument("setting key '" + std::string(key.substr(0, 200)) +
                                   "' is not 1..200 characters of [A-Za-z0-9_./:-]");
  }
  return Status::Ok();
}

}  // namespace

Status Store::PutSetting(std::string_view key, std::string value) {
  CAIRN_RETURN_IF_ERROR(CheckSettingKey(key));
  if (value.size() > limits::setting_bytes_max) {
    return Status::InvalidArgument(
        "setting '" + std::string(key) + "' of " + std::to_string(value.size()) +
        " bytes is larger than the limit of " + std::to_string(limits::setting_bytes_max));
  }
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  CAIRN_RETURN_IF_ERROR(impl_->CheckNotCommitThread("PutSetting()"));
  return impl_->SubmitOpAndWait(
      {kDefault, std::string(kSettingPrefix) + std::string(key), std::move(value), false});
}

Status Store::DeleteSetting(std::string_view key) {
  CAIRN_RETURN_IF_ERROR(CheckSettingKey(key));
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  CAIRN_RETURN_IF_ERROR(impl_->CheckNotCommitThread("DeleteSetting()"));
  return impl_->SubmitOpAndWait(
      {kDefault, std::string(kSettingPrefix) + std::string(key), "", true});
}

Result<std::optional<std::string>> Store::GetSetting(std::string_view key) const {
  CAIRN_RETURN_IF_ERROR(CheckSettingKey(key));
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  std::string value;
  Status found =
      impl_->GetValue(kDefault, std::string(kSettingPrefix) + std::string(key), &value, nullptr);
  if (found.code() == StatusCode::kNotFound) return std::optional<std::string>();
  CAIRN_RETURN_IF_ERROR(found);
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::pair<std::string, std::string>>> Store::ListSettings(
    std::string_view prefix) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->ListPrefix(kDefault, std::string(kSettingPrefix) + std::string(prefix),
                           kSettingPrefix.size());
}

Result<std::vector<WorkflowVersion>> Store::ListWorkflowVersions() const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->ListWorkflowVersions();
}

Result<std::vector<WorkflowVersion>> Store::Impl::ListWorkflowVersions() const {
  std::vector<WorkflowVersion> out;
  if (families_[kWorkflows] == nullptr) return out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), families_[kWorkflows]));
  for (it->SeekToFirst(); it->Valid() && out.size() < limits::list_runs_max; it->Next()) {
    WorkflowVersion v;
    const std::string_view value(it->value().data(), it->value().size());
    if (!keys::ParseWorkflowKey(std::string_view(it->key().data(), it->key().size()), &v.namespace_,
                                &v.name, &v.version) ||
        value.size() != Sha256::kSize + 8) {
      return Status::DataLoss("a workflows key or value is malformed");
    }
    CAIRN_ASSIGN_OR_RETURN(v.hash, Sha256::FromBytes(value.substr(0, Sha256::kSize)));
    v.applied_at_ns = static_cast<int64_t>(keys::ReadBigEndian64(value.substr(Sha256::kSize)));
    out.push_back(std::move(v));
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "list workflow versions"));
  return out;
}

Result<RunHeader> Store::GetRun(const RunId& run_id) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->GetRun(run_id);
}

Status Store::ScanHistory(const RunId& run_id, uint64_t from,
                          const std::function<bool(const StoredEvent&)>& visit) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->ScanHistory(run_id, from, visit);
}

Status Store::ScanHistories(
    const std::vector<RunId>& runs,
    const std::function<bool(size_t, Result<std::vector<Event>>)>& visit) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->ScanHistories(runs, visit);
}

Result<std::vector<Event>> Store::ReadHistory(const RunId& run_id, uint64_t from,
                                              size_t limit) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  limit = std::min(limit, limits::history_read_events_max);
  std::vector<Event> out;
  if (limit == 0) {
    CAIRN_RETURN_IF_ERROR(impl_->GetRun(run_id).status());
    return out;
  }
  CAIRN_RETURN_IF_ERROR(impl_->ScanHistory(run_id, from, [&](const StoredEvent& e) {
    out.push_back(e.event);
    return out.size() < limit;
  }));
  return out;
}

Result<std::vector<RunSummary>> Store::ListRuns(std::optional<RunStatus> status,
                                                const std::string& start_after,
                                                size_t limit) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->ListRuns(status, start_after, limit);
}

Result<std::vector<RunSummary>> Store::ListActiveRuns(const std::string& start_after,
                                                      size_t limit) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->ListActiveRuns(start_after, limit);
}

Result<std::vector<DueTimer>> Store::DueTimers(int64_t now_ns, size_t limit) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->DueTimers(now_ns, limit);
}

Result<std::optional<RunId>> Store::FindStartKey(std::string_view start_key) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->FindStartKeyIncludingPending(start_key);
}

Result<std::string> Store::GetBlob(const Sha256& digest) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->GetContent(kBlobs, digest, "blob");
}

Result<std::string> Store::GetDefinition(const Sha256& digest) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->GetContent(kDefinitions, digest, "definition");
}

Result<VerifyReport> Store::VerifyRun(const RunId& run_id) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->VerifyRun(run_id);
}

Result<uint64_t> Store::VerifyAll(const std::function<void(const VerifyReport&)>& report) const {
  CAIRN_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->VerifyAll(report);
}

StoreStats Store::stats() const { return impl_->stats(); }
const std::string& Store::dir() const { return impl_->dir(); }
bool Store::read_only() const { return impl_->read_only(); }

}  // namespace cairn::storage
