// Power loss, failed syncs, failed writes, torn WAL tails and corrupted values underneath
// the store, on the fault-injecting FileSystem (tests/support/fault_fs.h).
//
// Each test draws everything it submits, and where its faults strike, from one seed
// (printed; CAIRN_TEST_SEED=<n> repeats it). Which in-flight transitions had been
// acknowledged when a fault struck depends on the commit thread's timing; every check
// holds whatever that timing was.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/random.h"
#include "base/sha256.h"
#include "base/status.h"
#include "storage/codec.h"
#include "storage/event.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "tests/support/event_gen.h"
#include "tests/support/fault_fs.h"
#include "tests/support/raw_db.h"
#include "tests/support/seed.h"
#include "tests/support/store_audit.h"
#include "tests/support/temp_dir.h"

namespace cairn::storage {
namespace {
using cairn::testing::RawDb;

using cairn::testing::AuditStore;
using cairn::testing::FaultInjectionFileSystem;
using cairn::testing::FaultStats;
using cairn::testing::StoreAudit;
using cairn::testing::TempDir;
using cairn::testing::TestSeed;
using cairn::testing::TornTailOptions;

constexpr size_t kPayloadBytes = 48;

bool IsWal(std::string_view path) {
  return path.size() > 4 && path.substr(path.size() - 4) == ".log";
}

std::shared_ptr<FaultInjectionFileSystem> NewFaultFs() {
  return std::make_shared<FaultInjectionFileSystem>(rocksdb::FileSystem::Default());
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& dir, const Clock& clock,
                                         Durability durability,
                                         std::shared_ptr<rocksdb::FileSystem> fs) {
  StoreOptions options;
  options.durability = durability;
  options.clock = &clock;
  options.file_system = std::move(fs);
  options.owner_description = "fault_test";
  options.block_cache_bytes = 4 << 20;
  return Store::Open(dir, std::move(options));
}

// ---------------------------------------------------------------------------------------
// What a test submitted, to compare with what a reopened store reads back.

struct SubmittedTransition {
  uint64_t next_seq = 0;  // the run's event count after it
  RunStatus status = RunStatus::kUnknown;
  std::vector<Sha256> blobs;
};

struct RunModel {
  std::vector<NewEvent> events;                  // every event submitted, in order
  std::vector<SubmittedTransition> transitions;  // in submission order
  uint64_t acked = 0;                            // highest acknowledged next_seq
  uint64_t recovered = 0;  // what the last reopen read back: never to be lost again
  bool stopped = false;    // a run_stopped was submitted
  std::string start_key;   // of its run_started, if any
};

using Model = std::map<RunId, RunModel>;

// Checks the reopened store against `model`, then makes the model what the store holds:
// the truth is what a reopen reads back, and it must never be lost afterwards.
//   - every run is a prefix of what was submitted, cut at a transition boundary (one
//     transition = one atomic batch), with the header of that transition;
//   - with `acked_are_durable`, no acknowledged transition is missing; whatever the
//     durability, nothing an earlier reopen read back is missing;
//   - the store holds no run that was never submitted; blobs of surviving transitions are
//     there; a run that did not survive left no start key behind; and every invariant of
//     AuditStore() holds.
void CheckAndReconcile(const Store& store, Model& model, bool acked_are_durable) {
  const StoreAudit audit = AuditStore(store);
  EXPECT_TRUE(audit.problems.empty()) << cairn::testing::Describe(audit);
  for (const auto& [id, run] : audit.runs) {
    EXPECT_EQ(model.count(id), 1u)
        << "the store holds run " << id.str() << ", which was never submitted";
  }
  for (auto it = model.begin(); it != model.end();) {
    const RunId& id = it->first;
    RunModel& run = it->second;
    auto found = audit.runs.find(id);
    const uint64_t n = found == audit.runs.end() ? 0 : found->second.next_seq;
    if (acked_are_durable) {
      EXPECT_GE(n, run.acked) << "run " << id.str() << ": acknowledged up to seq " << run.acked
                              << " but only " << n << " events survived";
    }
    EXPECT_GE(n, run.recovered) << "run " << id.str() << ": an earlier reopen read back "
                                << run.recovered << " events, now only " << n << " are left";
    EXPECT_LE(n, run.events.size()) << "run " << id.str() << " grew beyond what was submitted";
    auto boundary = std::find_if(run.transitions.begin(), run.transitions.end(),
                                 [&](const SubmittedTransition& t) { return t.next_seq == n; });
    if (n > 0) {
      EXPECT_NE(boundary, run.transitions.end())
          << "run " << id.str() << " holds " << n
          << " events: not the end of any submitted transition (a torn batch)";
      if (boundary != run.transitions.end()) {
        EXPECT_EQ(found->second.status, boundary->status)
            << "run " << id.str() << ": the header is not the one of transition ending at " << n;
      }
      uint64_t seq = 0;
      Status scan = store.ScanHistory(id, 0, [&](const StoredEvent& e) {
        if (seq >= run.events.size()) return false;
        const NewEvent& want = run.events[seq];
        EXPECT_TRUE(e.event.task_path == want.task_path && e.event.body == want.body)
            << "run " << id.str() << ", event " << seq << ": read back " << KindName(e.event.body)
            << " at '" << e.event.task_path << "', submitted " << KindName(want.body) << " at '"
            << want.task_path << "'";
        ++seq;
        return e.event.task_path == want.task_path && e.event.body == want.body;
      });
      EXPECT_TRUE(scan.ok()) << scan.ToString();
    }
    // Forget what did not survive.
    const auto kept_end =
        boundary == run.transitions.end() ? run.transitions.begin() : std::next(boundary);
    for (auto t = run.transitions.begin(); t != kept_end; ++t) {
      for (const Sha256& digest : t->blobs) {
        auto blob = store.GetBlob(digest);
        EXPECT_TRUE(blob.ok()) << "run " << id.str() << ": blob " << digest.Hex()
                               << " of a surviving transition: " << blob.status().ToString();
      }
    }
    run.transitions.erase(kept_end, run.transitions.end());
    run.events.resize(std::min<uint64_t>(n, run.events.size()));
    run.acked = run.events.size();
    run.recovered = run.events.size();
    run.stopped = found != audit.runs.end() && found->second.ends_with_run_stopped;
    if (n == 0 && !run.start_key.empty()) {
      auto owner = store.FindStartKey(run.start_key);
      EXPECT_TRUE(owner.ok() && !owner->has_value())
          << "run " << id.str() << " did not survive, but its start key '" << run.start_key
          << "' did";
    }
    it = n == 0 ? model.erase(it) : std::next(it);
  }
}

// ---------------------------------------------------------------------------------------
// Workload: threads submitting transitions for many runs at once, through Submit()
// callbacks, recording everything in a Model and checking each acknowledgement live.

struct WorkloadOptions {
  std::string tag;  // run ids are "<tag>-t<thread>-<n>"
  int threads = 4;
  size_t runs_per_thread = 6;                  // runs each thread keeps going at once
  size_t in_flight_per_thread = 12;            // several per run: transitions are pipelined
  uint64_t transitions_per_thread_max = 5000;  // a bound, not a target
};

class Workload {
 public:
  Workload(Store& store, Model& model, uint64_t seed, WorkloadOptions options)
      : store_(store),
        model_(model),
        seed_(seed),
        options_(std::move(options)),
        in_flight_(static_cast<size_t>(options_.threads), 0) {}
  ~Workload() {
    Stop();
    Join();
  }

  // Starts the threads. Runs of the model that have not stopped are continued.
  void Start() {
    {
      std::lock_guard lock(mu_);
      threads_running_ = options_.threads;
    }
    std::vector<std::vector<RunId>> resumed(static_cast<size_t>(options_.threads));
    size_t next = 0;
    for (const auto& [id, run] : model_) {
      if (!run.stopped) resumed[next++ % resumed.size()].push_back(id);
    }
    for (int i = 0; i < options_.threads; ++i) {
      threads_.emplace_back(
          [this, i, runs = std::move(resumed[static_cast<size_t>(i)])] { Submitter(i, runs); });
    }
  }

  // Blocks until `acks` transitions were acknowledged in total or every thread ended.
  uint64_t WaitForAcks(uint64_t acks) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return acked_ >= acks || threads_running_ == 0; });
    return acked_;
  }

  // Asks the threads to stop submitting (transitions in flight still complete).
  void Stop() {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

  // Waits for the threads and for every callback.
  void Join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      return std::all_of(in_flight_.begin(), in_flight_.end(), [](size_t n) { return n == 0; });
    });
  }

  uint64_t acked() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  uint64_t failed() const {
    std::lock_guard lock(mu_);
    return failed_;
  }
  Status first_failure() const {
    std::lock_guard lock(mu_);
    return first_failure_;
  }
  // Broken promises seen live: acknowledgements out of order, with wrong sequence
  // numbers, or after a failure (the store is fail-stop).
  std::vector<std::string> violations() const {
    std::lock_guard lock(mu_);
    return violations_;
  }
  // The non-ok Submit() results that ended threads.
  std::vector<Status> submit_errors() const {
    std::lock_guard lock(mu_);
    return submit_errors_;
  }

 private:
  enum class Next { kContinue, kRunStopped, kEnd };

  void Submitter(int index, std::vector<RunId> runs) {
    Random random(seed_ + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(index + 1));
    std::vector<std::optional<RunId>> slots(std::max(options_.runs_per_thread, runs.size()));
    std::copy(runs.begin(), runs.end(), slots.begin());
    uint64_t created = 0;
    for (uint64_t n = 0; n < options_.transitions_per_thread_max; ++n) {
      std::optional<RunId>& slot = slots[random.Uniform(slots.size())];
      if (!slot.has_value()) {
        slot = RunId::Parse(options_.tag + "-t" + std::to_string(index) + "-" +
                            std::to_string(created++))
                   .value();
      }
      const Next next = SubmitOne(index, random, *slot);
      if (next == Next::kEnd) break;
      if (next == Next::kRunStopped) slot.reset();
    }
    std::lock_guard lock(mu_);
    --threads_running_;
    cv_.notify_all();
  }

  Next SubmitOne(int index, Random& random, const RunId& id) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      return stop_ || in_flight_[static_cast<size_t>(index)] < options_.in_flight_per_thread;
    });
    if (stop_) return Next::kEnd;
    RunModel& run = model_[id];  // only this thread submits for `id`
    Transition t = MakeTransition(random, id, run);
    if (run.events.empty()) run.start_key = std::get<RunStarted>(t.events[0].body).start_key;
    const uint64_t first = t.expected_next_seq;
    const uint64_t next = first + t.events.size();
    SubmittedTransition record{next, t.header.status, {}};
    for (const std::string& blob : t.blobs) record.blobs.push_back(Sha256::Of(blob));
    for (const NewEvent& e : t.events) run.events.push_back(e);
    run.transitions.push_back(std::move(record));
    const bool stops = IsTerminal(t.header.status);
    ++in_flight_[static_cast<size_t>(index)];
    lock.unlock();  // callbacks may run on the commit thread meanwhile

    Status s = store_.Submit(std::move(t), [this, index, id, first, next](Result<AppendResult> r) {
      OnDone(index, id, first, next, std::move(r));
    });

    lock.lock();
    if (!s.ok()) {
      // Not queued: the callback will never come. Take the transition back.
      --in_flight_[static_cast<size_t>(index)];
      run.events.resize(first);
      run.transitions.pop_back();
      submit_errors_.push_back(s);
      cv_.notify_all();
      return Next::kEnd;
    }
    run.stopped = stops;
    return stops ? Next::kRunStopped : Next::kContinue;
  }

  void OnDone(int index, const RunId& id, uint64_t first, uint64_t next, Result<AppendResult> r) {
    std::lock_guard lock(mu_);
    --in_flight_[static_cast<size_t>(index)];
    RunModel& run = model_.at(id);
    if (r.ok()) {
      if (saw_failure_) {
        violations_.push_back("run " + id.str() + ": acknowledged after an earlier failure (" +
                              first_failure_.ToString() + ")");
      }
      if (r->first_seq.value() != first || r->next_seq != next) {
        violations_.push_back("run " + id.str() + ": acknowledged as seq " +
                              std::to_string(r->first_seq.value()) + ".." +
                              std::to_string(r->next_seq) + ", submitted as " +
                              std::to_string(first) + ".." + std::to_string(next));
      }
      if (r->next_seq <= run.acked) {
        violations_.push_back("run " + id.str() + ": acknowledgement of seq " +
                              std::to_string(r->next_seq) + " after one of " +
                              std::to_string(run.acked));
      }
      run.acked = std::max(run.acked, r->next_seq);
      ++acked_;
    } else {
      if (r.status().code() != StatusCode::kAborted) {
        violations_.push_back("run " + id.str() + ": a failed write reported " +
                              r.status().ToString() + "; expected aborted (reopen, re-read)");
      }
      if (!saw_failure_) first_failure_ = r.status();
      saw_failure_ = true;
      ++failed_;
    }
    cv_.notify_all();
  }

  static Transition MakeTransition(Random& random, const RunId& id, const RunModel& run) {
    Transition t;
    t.run_id = id;
    t.expected_next_seq = run.events.size();
    const bool stops = random.OneIn(10);
    size_t count = 1 + random.Uniform(4);
    if (stops && run.events.empty()) count = std::max<size_t>(count, 2);  // started, stopped
    for (size_t i = 0; i < count; ++i) {
      NewEvent e;
      e.task_path = "/do/" + std::to_string(random.Uniform(20)) + "/step";
      if (i == 0 && run.events.empty()) {
        RunStarted started;
        started.workflow_namespace = "fault";
        started.workflow_name = "wf" + std::to_string(random.Uniform(5));
        started.workflow_version = "1.0.0";
        started.input = Payload::Json(cairn::testing::MakeJson(random, kPayloadBytes));
        if (random.OneIn(2)) started.start_key = "start:" + id.str();
        e.body = std::move(started);
      } else if (i + 1 == count && stops) {
        RunStopped stopped;
        stopped.reason = StopReason::kCompleted;
        stopped.output = Payload::Json(cairn::testing::MakeJson(random, kPayloadBytes));
        e.body = std::move(stopped);
      } else {
        e.body = cairn::testing::RandomMiddleEventBody(random, kPayloadBytes);
      }
      t.events.push_back(std::move(e));
    }
    constexpr RunStatus kLive[] = {RunStatus::kRunning, RunStatus::kWaiting, RunStatus::kBlocked};
    constexpr RunStatus kEnded[] = {RunStatus::kCompleted, RunStatus::kFailed,
                                    RunStatus::kCancelled, RunStatus::kKilled};
    t.header.status = stops ? kEnded[random.Uniform(4)] : kLive[random.Uniform(3)];
    t.header.workflow_namespace = "fault";
    t.header.workflow_name = "wf";
    t.header.engine_state = random.Bytes(random.Uniform(32));
    if (random.OneIn(4)) t.blobs.push_back(random.Bytes(1 + random.Uniform(256)));
    return t;
  }

  Store& store_;
  Model& model_;
  const uint64_t seed_;
  const WorkloadOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> in_flight_;  // per thread
  int threads_running_ = 0;
  bool stop_ = false;
  uint64_t acked_ = 0;
  uint64_t failed_ = 0;
  bool saw_failure_ = false;
  Status first_failure_;
  std::vector<std::string> violations_;
  std::vector<Status> submit_errors_;
  std::vector<std::thread> threads_;
};

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

// ---------------------------------------------------------------------------------------
// The fault-injecting filesystem itself: a tool that lied would make every test below
// pass for nothing.

class FaultFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = NewFaultFs();
    dir_path_ = dir_.path();
  }

  std::unique_ptr<rocksdb::FSWritableFile> Create(const std::string& name) {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    EXPECT_TRUE(fs_->NewWritableFile(dir_.Sub(name), rocksdb::FileOptions(), &file, nullptr).ok());
    return file;
  }
  rocksdb::IOStatus SyncDir() {
    std::unique_ptr<rocksdb::FSDirectory> d;
    rocksdb::IOStatus s = fs_->NewDirectory(dir_path_, rocksdb::IOOptions(), &d, nullptr);
    return s.ok() ? d->Fsync(rocksdb::IOOptions(), nullptr) : s;
  }
  std::optional<std::string> Contents(const std::string& name) const {
    std::ifstream in(dir_.Sub(name), std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  static constexpr rocksdb::IODebugContext* kNoDbg = nullptr;
  const rocksdb::IOOptions io_;
  TempDir dir_;
  std::string dir_path_;
  std::shared_ptr<FaultInjectionFileSystem> fs_;
};

TEST_F(FaultFsTest, PowerLossKeepsOnlySyncedBytes) {
  auto file = Create("a.log");
  ASSERT_TRUE(file->Append("durable|", io_, kNoDbg).ok());
  ASSERT_TRUE(file->Sync(io_, kNoDbg).ok());
  ASSERT_TRUE(SyncDir().ok());
  ASSERT_TRUE(file->Append("lost", io_, kNoDbg).ok());
  ASSERT_TRUE(file->Flush(io_, kNoDbg).ok());
  EXPECT_EQ(fs_->UnsyncedBytes(dir_.Sub("a.log")), 4u);
  ASSERT_TRUE(file->Close(io_, kNoDbg).ok());
  file.reset();
  EXPECT_EQ(Contents("a.log"), "durable|lost");  // the page cache still has it
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Contents("a.log"), "durable|");
}

TEST_F(FaultFsTest, RangeSyncFlushAndCloseMakeNothingDurable) {
  auto file = Create("b.sst");
  ASSERT_TRUE(SyncDir().ok());
  ASSERT_TRUE(file->Append("not yet", io_, kNoDbg).ok());
  ASSERT_TRUE(file->Flush(io_, kNoDbg).ok());
  ASSERT_TRUE(file->RangeSync(0, 0, io_, kNoDbg).ok());
  ASSERT_TRUE(file->Close(io_, kNoDbg).ok());
  file.reset();
  EXPECT_EQ(fs_->stats().range_syncs, 1u);
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Contents("b.sst"), "");
}

TEST_F(FaultFsTest, NewFileIsLostUntilItsDirectoryIsSynced) {
  auto kept = Create("c.log");
  ASSERT_TRUE(kept->Append("synced data", io_, kNoDbg).ok());
  ASSERT_TRUE(kept->Fsync(io_, kNoDbg).ok());
  ASSERT_TRUE(kept->Close(io_, kNoDbg).ok());
  kept.reset();
  ASSERT_TRUE(SyncDir().ok());
  auto lost = Create("e.log");  // its directory entry is never synced
  ASSERT_TRUE(lost->Append("synced data, lost entry", io_, kNoDbg).ok());
  ASSERT_TRUE(lost->Sync(io_, kNoDbg).ok());
  ASSERT_TRUE(lost->Close(io_, kNoDbg).ok());
  lost.reset();
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Contents("c.log"), "synced data");
  EXPECT_EQ(Contents("e.log"), std::nullopt);

  // With the option off, a new file keeps its synced bytes.
  auto lenient = std::make_shared<FaultInjectionFileSystem>(
      rocksdb::FileSystem::Default(), FaultInjectionFileSystem::Options{false});
  std::unique_ptr<rocksdb::FSWritableFile> f;
  ASSERT_TRUE(
      lenient->NewWritableFile(dir_.Sub("f.log"), rocksdb::FileOptions(), &f, nullptr).ok());
  ASSERT_TRUE(f->Append("ab", io_, kNoDbg).ok());
  ASSERT_TRUE(f->Sync(io_, kNoDbg).ok());
  ASSERT_TRUE(f->Append("cd", io_, kNoDbg).ok());
  f.reset();
  ASSERT_TRUE(lenient->DropUnsyncedData().ok());
  EXPECT_EQ(Contents("f.log"), "ab");
}

TEST_F(FaultFsTest, RenameOverAFileIsUndoneUntilTheDirectoryIsSynced) {
  // CURRENT as RocksDB replaces it: write a temp file, sync it, rename it over.
  { std::ofstream(dir_.Sub("CURRENT")) << "MANIFEST-000001\n"; }
  auto tmp = Create("000002.dbtmp");
  ASSERT_TRUE(tmp->Append("MANIFEST-000002\n", io_, kNoDbg).ok());
  ASSERT_TRUE(tmp->Sync(io_, kNoDbg).ok());
  ASSERT_TRUE(tmp->Close(io_, kNoDbg).ok());
  tmp.reset();
  ASSERT_TRUE(fs_->RenameFile(dir_.Sub("000002.dbtmp"), dir_.Sub("CURRENT"), io_, kNoDbg).ok());
  EXPECT_EQ(Contents("CURRENT"), "MANIFEST-000002\n");
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Contents("CURRENT"), "MANIFEST-000001\n");
  EXPECT_EQ(Contents("000002.dbtmp"), std::nullopt);

  tmp = Create("000003.dbtmp");
  ASSERT_TRUE(tmp->Append("MANIFEST-000003\n", io_, kNoDbg).ok());
  ASSERT_TRUE(tmp->Sync(io_, kNoDbg).ok());
  ASSERT_TRUE(tmp->Close(io_, kNoDbg).ok());
  tmp.reset();
  ASSERT_TRUE(fs_->RenameFile(dir_.Sub("000003.dbtmp"), dir_.Sub("CURRENT"), io_, kNoDbg).ok());
  ASSERT_TRUE(SyncDir().ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Contents("CURRENT"), "MANIFEST-000003\n");
}

TEST_F(FaultFsTest, InactiveFilesystemRefusesEveryWrite) {
  auto file = Create("g.log");
  ASSERT_TRUE(file->Append("before", io_, kNoDbg).ok());
  fs_->SetFilesystemActive(false);
  EXPECT_TRUE(file->Append("after", io_, kNoDbg).IsIOError());
  EXPECT_TRUE(file->Flush(io_, kNoDbg).IsIOError());
  EXPECT_TRUE(file->Sync(io_, kNoDbg).IsIOError());
  EXPECT_TRUE(file->Fsync(io_, kNoDbg).IsIOError());
  EXPECT_TRUE(file->Close(io_, kNoDbg).IsIOError());
  file.reset();
  std::unique_ptr<rocksdb::FSWritableFile> other;
  EXPECT_TRUE(
      fs_->NewWritableFile(dir_.Sub("h"), rocksdb::FileOptions(), &other, nullptr).IsIOError());
  EXPECT_TRUE(fs_->RenameFile(dir_.Sub("g.log"), dir_.Sub("i"), io_, kNoDbg).IsIOError());
  EXPECT_TRUE(fs_->DeleteFile(dir_.Sub("g.log"), io_, kNoDbg).IsIOError());
  EXPECT_TRUE(fs_->CreateDirIfMissing(dir_.Sub("sub"), io_, kNoDbg).IsIOError());
  EXPECT_TRUE(SyncDir().IsIOError());
  // Reads still work: the page cache outlives the disk.
  uint64_t size = 0;
  EXPECT_TRUE(fs_->GetFileSize(dir_.Sub("g.log"), io_, &size, kNoDbg).ok());
  EXPECT_EQ(size, 6u);
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_TRUE(fs_->IsFilesystemActive());
  EXPECT_EQ(Contents("g.log"), std::nullopt);  // created, never synced: gone
}

TEST_F(FaultFsTest, SyncAndWriteFaultsStrikeWhereTold) {
  fs_->SetFaultFilter(IsWal);
  auto wal = Create("j.log");
  auto other = Create("k.sst");
  fs_->FailSyncsAfter(2);
  EXPECT_TRUE(wal->Sync(io_, kNoDbg).ok());
  EXPECT_TRUE(other->Sync(io_, kNoDbg).ok());  // not selected: neither counted nor failed
  EXPECT_TRUE(wal->Sync(io_, kNoDbg).ok());
  EXPECT_TRUE(wal->Sync(io_, kNoDbg).IsIOError());
  EXPECT_TRUE(wal->Fsync(io_, kNoDbg).IsIOError());
  EXPECT_TRUE(other->Fsync(io_, kNoDbg).ok());
  fs_->ClearFaults();
  EXPECT_TRUE(wal->Sync(io_, kNoDbg).ok());
  fs_->FailNextSyncs(1);
  EXPECT_TRUE(wal->Sync(io_, kNoDbg).IsIOError());
  EXPECT_TRUE(wal->Sync(io_, kNoDbg).ok());
  FaultStats st = fs_->stats();
  EXPECT_EQ(st.syncs, 7u);
  EXPECT_EQ(st.syncs_failed, 3u);

  fs_->FailWritesAfter(1);
  EXPECT_TRUE(wal->Append("x", io_, kNoDbg).ok());
  EXPECT_TRUE(wal->Append("y", io_, kNoDbg).IsIOError());
  EXPECT_TRUE(other->Append("z", io_, kNoDbg).ok());
  st = fs_->stats();
  EXPECT_EQ(st.appends, 2u);
  EXPECT_EQ(st.appends_failed, 1u);
  // A failed sync leaves the bytes unsynced; a failed append writes nothing.
  EXPECT_EQ(fs_->UnsyncedBytes(dir_.Sub("j.log")), 1u);
  fs_->FailNextSyncs(1);
  EXPECT_TRUE(wal->Sync(io_, kNoDbg).IsIOError());
  EXPECT_EQ(fs_->UnsyncedBytes(dir_.Sub("j.log")), 1u);
  EXPECT_EQ(fs_->UnsyncedBytesTotal(), 1u);  // k.sst is not selected
}

TEST_F(FaultFsTest, PowerLossIsRefusedWhileAFileIsOpen) {
  auto file = Create("l.log");
  Status s = fs_->DropUnsyncedData();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("l.log"), std::string::npos) << s.ToString();
}

TEST_F(FaultFsTest, TornTailKeepsDurableBytesAndIsDeterministic) {
  const uint64_t seed = TestSeed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  Random random(seed);
  const std::string durable = random.Bytes(1000);
  const std::string unsynced = random.Bytes(3000);
  auto write = [&](const std::string& name) {
    auto file = Create(name);
    ASSERT_TRUE(file->Append(durable, io_, kNoDbg).ok());
    ASSERT_TRUE(file->Sync(io_, kNoDbg).ok());
    ASSERT_TRUE(file->Append(unsynced, io_, kNoDbg).ok());
    ASSERT_TRUE(file->Close(io_, kNoDbg).ok());
  };
  bool garbled_somewhere = false;
  for (int round = 0; round < 20; ++round) {
    std::optional<std::string> results[2];
    for (auto& result : results) {
      write("m.log");
      ASSERT_TRUE(SyncDir().ok());
      Random tear(seed + static_cast<uint64_t>(round));
      ASSERT_TRUE(fs_->CorruptUnsyncedTail(tear, TornTailOptions{true, 16}).ok());
      result = Contents("m.log");
      ASSERT_TRUE(result.has_value());
    }
    EXPECT_EQ(results[0], results[1]) << "same random state, different tear";
    const std::string& torn = *results[0];
    ASSERT_GE(torn.size(), durable.size());
    ASSERT_LE(torn.size(), durable.size() + unsynced.size());
    EXPECT_EQ(torn.substr(0, durable.size()), durable) << "a durable byte changed";
    const std::string kept = torn.substr(durable.size());
    const size_t garble_from = kept.size() > 16 ? kept.size() - 16 : 0;
    EXPECT_EQ(kept.substr(0, garble_from), unsynced.substr(0, garble_from))
        << "a byte before the torn end changed";
    garbled_somewhere |= kept != unsynced.substr(0, kept.size());
  }
  EXPECT_TRUE(garbled_somewhere) << "20 torn tails, none garbled";
}

// ---------------------------------------------------------------------------------------
// The store on top.

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = TestSeed();
    random_ = std::make_unique<Random>(seed_);
    dir_ = dir_holder_.Sub("data");
  }

  // Opens over `fs` (a fresh fault filesystem if null) or fails the test.
  std::unique_ptr<Store> Open(Durability durability,
                              std::shared_ptr<rocksdb::FileSystem> fs = nullptr) {
    if (fs == nullptr) fs = NewFaultFs();
    auto store = OpenStore(dir_, clock_, durability, std::move(fs));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  uint64_t seed_ = 0;
  std::unique_ptr<Random> random_;
  ManualClock clock_;
  TempDir dir_holder_;
  std::string dir_;
  Model model_;
};

// kSync: power is cut while transitions are in flight; every acknowledged one survives.
TEST_F(StoreFaultTest, SyncedTransitionsSurvivePowerLoss) {
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  for (int cycle = 0; cycle < 3; ++cycle) {
    SCOPED_TRACE("power cycle " + std::to_string(cycle));
    auto fs = NewFaultFs();
    auto store = Open(Durability::kSync, fs);
    ASSERT_NE(store, nullptr);
    {
      Workload work(*store, model_, random_->Next64(), {"s" + std::to_string(cycle)});
      work.Start();
      const uint64_t target = 100 + random_->Uniform(200);
      ASSERT_GE(work.WaitForAcks(target), target) << "workload ended early";
      fs->SetFilesystemActive(false);  // the power goes while transitions are in flight
      work.Stop();
      work.Join();
      store->Close().IgnoreError();  // fails: the machine is dead
      store.reset();
      EXPECT_TRUE(work.violations().empty()) << Join(work.violations());
      for (const Status& s : work.submit_errors()) {
        EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
      }
    }
    ASSERT_TRUE(fs->DropUnsyncedData().ok());
    store = Open(Durability::kSync);
    ASSERT_NE(store, nullptr);
    CheckAndReconcile(*store, model_, /*acked_are_durable=*/true);
    ASSERT_TRUE(store->Close().ok());
    if (HasFailure()) return;
  }
  EXPECT_FALSE(model_.empty());
}

// kBuffered: nothing is promised across a power loss, but what survives is, per run, a
// prefix of what was submitted, cut between transitions, with a header that agrees.
TEST_F(StoreFaultTest, BufferedHistoryIsAPrefixAfterPowerLoss) {
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  auto transitions = [&] {
    uint64_t n = 0;
    for (const auto& [id, run] : model_) n += run.transitions.size();
    return n;
  };
  uint64_t survived_unsynced = 0;
  for (int cycle = 0; cycle < 4; ++cycle) {
    SCOPED_TRACE("power cycle " + std::to_string(cycle));
    const uint64_t durable_before = transitions();
    auto fs = NewFaultFs();
    auto store = Open(Durability::kBuffered, fs);
    ASSERT_NE(store, nullptr);
    {
      Workload work(*store, model_, random_->Next64(), {"b" + std::to_string(cycle)});
      work.Start();
      const uint64_t target = 200 + random_->Uniform(300);
      ASSERT_GE(work.WaitForAcks(target), target) << "workload ended early";
      fs->SetFilesystemActive(false);
      work.Stop();
      work.Join();
      store->Close().IgnoreError();
      store.reset();
      EXPECT_TRUE(work.violations().empty()) << Join(work.violations());
    }
    // Write-back had reached a random point of each file when the power went.
    EXPECT_GT(fs->UnsyncedBytesTotal(), 0u) << "buffered writes were synced";
    ASSERT_TRUE(fs->CorruptUnsyncedTail(*random_, TornTailOptions{true, 0}).ok());
    store = Open(Durability::kBuffered);
    ASSERT_NE(store, nullptr);
    CheckAndReconcile(*store, model_, /*acked_are_durable=*/false);
    survived_unsynced += transitions() - std::min(transitions(), durable_before);
    ASSERT_TRUE(store->Close().ok());
    if (HasFailure()) return;
  }
  // Not a promise of the store, but the test would be hollow if nothing ever survived.
  EXPECT_GT(survived_unsynced, 0u) << "no unsynced transition ever survived: vacuous test";
}

// A sync or a write of the WAL fails in the middle of concurrent submissions.
struct WriteFault {
  const char* name;
  bool fail_sync;      // else fail an append
  bool lose_unsynced;  // then also lose power before the reopen
};

void PrintTo(const WriteFault& fault, std::ostream* os) { *os << fault.name; }

class StoreWriteFaultTest : public StoreFaultTest,
                            public ::testing::WithParamInterface<WriteFault> {};

TEST_P(StoreWriteFaultTest, FailStopsAndLosesNothingAcknowledged) {
  const WriteFault fault = GetParam();
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  auto fs = NewFaultFs();
  fs->SetFaultFilter(IsWal);
  auto store = Open(Durability::kSync, fs);
  ASSERT_NE(store, nullptr);
  const uint64_t strike_after = 3 + random_->Uniform(40);
  if (fault.fail_sync) {
    fs->FailSyncsAfter(strike_after);
  } else {
    fs->FailWritesAfter(strike_after);
  }
  {
    Workload work(*store, model_, random_->Next64(), {"f"});
    work.Start();
    work.Join();  // every thread ends at its first refused Submit()
    const FaultStats st = fs->stats();
    ASSERT_GT(fault.fail_sync ? st.syncs_failed : st.appends_failed, 0u)
        << "the fault never struck";
    EXPECT_GT(work.failed(), 0u) << "no transition reported the failed write";
    EXPECT_TRUE(work.violations().empty()) << Join(work.violations());
    const std::vector<Status> refused = work.submit_errors();
    EXPECT_EQ(refused.size(), static_cast<size_t>(WorkloadOptions().threads))
        << "a thread ran out of transitions before the store failed";
    for (const Status& s : refused) {
      EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
    }
  }
  // Failed means failed: no write of any kind, even after the fault clears.
  fs->ClearFaults();
  Transition t;
  t.run_id = RunId::Parse("after-failure").value();
  t.events.push_back({"/", RunStarted{}});
  t.header.status = RunStatus::kRunning;
  auto appended = store->Append(t);
  EXPECT_EQ(appended.status().code(), StatusCode::kFailedPrecondition)
      << appended.status().ToString();
  EXPECT_EQ(store->PutBlob("blob").status().code(), StatusCode::kFailedPrecondition);
  // Reads still see every acknowledged transition.
  for (const auto& [id, run] : model_) {
    if (run.acked == 0) continue;
    auto header = store->GetRun(id);
    ASSERT_TRUE(header.ok()) << id.str() << ": " << header.status().ToString();
    EXPECT_GE(header->next_seq, run.acked) << id.str();
  }
  store->Close().IgnoreError();  // reports the write error
  store.reset();
  if (fault.fail_sync) {
    EXPECT_GT(fs->UnsyncedBytesTotal(), 0u) << "a failed sync must leave its batch unsynced";
  }
  if (fault.lose_unsynced) {
    ASSERT_TRUE(fs->DropUnsyncedData().ok());
  }

  // Reopen: nothing acknowledged is lost, and the store takes writes again.
  store = Open(Durability::kSync);
  ASSERT_NE(store, nullptr);
  CheckAndReconcile(*store, model_, /*acked_are_durable=*/true);
  {
    Workload work(*store, model_, random_->Next64(), {"g"});
    work.Start();
    ASSERT_GE(work.WaitForAcks(100), 100u);
    work.Stop();
    work.Join();
    EXPECT_EQ(work.failed(), 0u) << work.first_failure().ToString();
    EXPECT_TRUE(work.violations().empty()) << Join(work.violations());
  }
  ASSERT_TRUE(store->Close().ok());
  store = Open(Durability::kSync);
  ASSERT_NE(store, nullptr);
  CheckAndReconcile(*store, model_, /*acked_are_durable=*/true);
}

INSTANTIATE_TEST_SUITE_P(Faults, StoreWriteFaultTest,
                         ::testing::Values(WriteFault{"SyncFails", true, false},
                                           WriteFault{"SyncFailsThenPowerLoss", true, true},
                                           WriteFault{"AppendFails", false, false},
                                           WriteFault{"AppendFailsThenPowerLoss", false, true}),
                         [](const ::testing::TestParamInfo<WriteFault>& info) {
                           return std::string(info.param.name);
                         });

// A WAL sync fails, so its batch is written but not durable; then the power goes while
// only part of that batch had reached the disk, the last bytes of it garbage. Recovery
// must drop the torn batch and keep everything acknowledged.
TEST_F(StoreFaultTest, TornWalTailAfterFailedSyncRecoversAcknowledgedPrefix) {
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  for (int cycle = 0; cycle < 4; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    auto fs = NewFaultFs();
    fs->SetFaultFilter(IsWal);
    auto store = Open(Durability::kSync, fs);
    ASSERT_NE(store, nullptr);
    fs->FailSyncsAfter(2 + random_->Uniform(30));
    {
      Workload work(*store, model_, random_->Next64(), {"w" + std::to_string(cycle)});
      work.Start();
      work.Join();
      ASSERT_GT(fs->stats().syncs_failed, 0u) << "the fault never struck";
      EXPECT_TRUE(work.violations().empty()) << Join(work.violations());
    }
    fs->SetFilesystemActive(false);
    store->Close().IgnoreError();
    store.reset();
    ASSERT_GT(fs->UnsyncedBytesTotal(), 0u) << "no unsynced WAL tail to tear";
    ASSERT_TRUE(
        fs->CorruptUnsyncedTail(*random_, TornTailOptions{true, 1 + random_->Uniform(64)}).ok());
    store = Open(Durability::kSync);
    ASSERT_NE(store, nullptr) << "recovery must drop a torn tail, not refuse to open";
    CheckAndReconcile(*store, model_, /*acked_are_durable=*/true);
    ASSERT_TRUE(store->Close().ok());
    if (HasFailure()) return;
  }
}

// Buffered writes leave a long unsynced WAL tail; the power cuts it at a random byte and
// garbles its end. Every run must still be a transition-aligned prefix.
TEST_F(StoreFaultTest, TornBufferedWalRecoversToAPrefix) {
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  for (int cycle = 0; cycle < 4; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    auto fs = NewFaultFs();
    auto store = Open(Durability::kBuffered, fs);
    ASSERT_NE(store, nullptr);
    {
      Workload work(*store, model_, random_->Next64(), {"u" + std::to_string(cycle)});
      work.Start();
      const uint64_t target = 200 + random_->Uniform(300);
      ASSERT_GE(work.WaitForAcks(target), target) << "workload ended early";
      fs->SetFilesystemActive(false);
      work.Stop();
      work.Join();
      store->Close().IgnoreError();
      store.reset();
      EXPECT_TRUE(work.violations().empty()) << Join(work.violations());
    }
    ASSERT_TRUE(
        fs->CorruptUnsyncedTail(*random_, TornTailOptions{true, 1 + random_->Uniform(64)}).ok());
    store = Open(Durability::kBuffered);
    ASSERT_NE(store, nullptr) << "recovery must drop a torn tail, not refuse to open";
    CheckAndReconcile(*store, model_, /*acked_are_durable=*/false);
    ASSERT_TRUE(store->Close().ok());
    if (HasFailure()) return;
  }
}

// The power fails during Open() itself, at every sync in turn: while the store is being
// created, and while an existing one recovers. Whatever Open() left behind must open
// again, with every acknowledged transition, and a failed Open() must release all its
// files.
TEST_F(StoreFaultTest, PowerLossDuringOpenNeverBricksTheStore) {
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  constexpr uint64_t kSyncsMax = 64;  // Open() needs far fewer
  // Returns true once Open() got through `failing_sync` without the fault striking.
  auto crash_open_at = [&](uint64_t failing_sync) {
    SCOPED_TRACE("power lost at sync " + std::to_string(failing_sync));
    auto fs = NewFaultFs();
    // OPTIONS files are advisory: RocksDB logs a failure to persist one and opens anyway.
    fs->SetFaultFilter(
        [](std::string_view path) { return path.find("/OPTIONS-") == std::string_view::npos; });
    fs->FailSyncsAfter(failing_sync);
    auto store = OpenStore(dir_, clock_, Durability::kSync, fs);
    const bool struck = fs->stats().syncs_failed > 0;
    if (store.ok()) {
      EXPECT_FALSE(struck) << "Open() succeeded although a sync failed";
      fs->SetFilesystemActive(false);
      (*store)->Close().IgnoreError();
    } else {
      EXPECT_TRUE(struck) << "Open() failed without a fault: " << store.status().ToString();
    }
    store = Status::Internal("closed");  // destroys the store, if any
    Status lost = fs->DropUnsyncedData();
    EXPECT_TRUE(lost.ok()) << lost.ToString();  // kFailedPrecondition: a file leaked
    return !struck;
  };
  // Creation.
  uint64_t k = 0;
  for (; k < kSyncsMax; ++k) {
    std::filesystem::remove_all(dir_);
    const bool opened = crash_open_at(k);
    auto store = Open(Durability::kSync);
    ASSERT_NE(store, nullptr) << "a power loss while creating left a store that cannot open";
    CheckAndReconcile(*store, model_, /*acked_are_durable=*/true);
    ASSERT_TRUE(store->Close().ok());
    if (opened || HasFailure()) break;
  }
  ASSERT_LT(k, kSyncsMax) << "Open() never succeeded";
  ASSERT_GT(k, 0u) << "creating a store synced nothing";
  {
    auto store = Open(Durability::kSync);
    ASSERT_NE(store, nullptr);
    CheckAndReconcile(*store, model_, /*acked_are_durable=*/true);
    Workload work(*store, model_, random_->Next64(), {"o"});
    work.Start();
    ASSERT_GE(work.WaitForAcks(200), 200u);
    work.Stop();
    work.Join();
    EXPECT_TRUE(work.violations().empty()) << Join(work.violations());
    // RocksDB does not flush memtables on close: the next Open() replays the WAL.
    ASSERT_TRUE(store->Close().ok());
  }
  // Recovery, from the same starting point each time.
  const std::string snapshot = dir_holder_.Sub("snapshot");
  std::filesystem::copy(dir_, snapshot, std::filesystem::copy_options::recursive);
  for (k = 0; k < kSyncsMax; ++k) {
    std::filesystem::remove_all(dir_);
    std::filesystem::copy(snapshot, dir_, std::filesystem::copy_options::recursive);
    const bool opened = crash_open_at(k);
    auto store = Open(Durability::kSync);
    ASSERT_NE(store, nullptr) << "a power loss during recovery left a store that cannot open";
    CheckAndReconcile(*store, model_, /*acked_are_durable=*/true);
    ASSERT_TRUE(store->Close().ok());
    if (opened || HasFailure()) break;
  }
  ASSERT_LT(k, kSyncsMax) << "Open() never succeeded";
  EXPECT_GT(k, 0u) << "recovery synced nothing";
}

// ---------------------------------------------------------------------------------------
// Bytes changed behind the store's back, in the events and runs families.

std::string EventKey(const char* run, uint64_t seq) {
  return storage::keys::EventKey(RunId::FromTrusted(run), seq);
}

constexpr uint64_t kCorruptRunEvents = 8;

void AppendRun(Store& store, Random& random, const std::string& name) {
  const RunId id = RunId::Parse(name).value();
  uint64_t next = 0;
  while (next < kCorruptRunEvents) {
    Transition t;
    t.run_id = id;
    t.expected_next_seq = next;
    t.header.status = RunStatus::kRunning;
    for (int i = 0; i < 2; ++i) {
      NewEvent e{"/do/" + std::to_string(next + static_cast<uint64_t>(i)), {}};
      if (next == 0 && i == 0) {
        e.body = RunStarted{};
      } else {
        e.body = cairn::testing::RandomMiddleEventBody(random, kPayloadBytes);
      }
      t.events.push_back(std::move(e));
    }
    auto r = store.Append(std::move(t));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    next = r->next_seq;
  }
}

// How far ScanHistory gets, and how it ends.
std::pair<uint64_t, Status> Scan(const Store& store, const std::string& run) {
  uint64_t visited = 0;
  Status s = store.ScanHistory(RunId::Parse(run).value(), 0, [&](const StoredEvent&) {
    ++visited;
    return true;
  });
  return {visited, s};
}

TEST_F(StoreFaultTest, CorruptedValuesAreReportedNotTrusted) {
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  const char* const kRuns[] = {"junk", "empty", "edited", "edited-last", "misplaced",
                               "hole", "cut",   "header", "flipped",     "intact"};
  {
    auto store = Open(Durability::kSync, rocksdb::FileSystem::Default());
    ASSERT_NE(store, nullptr);
    for (const char* run : kRuns) ASSERT_NO_FATAL_FAILURE(AppendRun(*store, *random_, run));
    ASSERT_TRUE(store->Close().ok());
  }
  const uint64_t flipped_seq = 1 + random_->Uniform(kCorruptRunEvents - 2);
  {
    RawDb raw(dir_);
    raw.Put("events", EventKey("junk", 3), random_->Bytes(1 + random_->Uniform(40)));
    raw.Put("events", EventKey("empty", 5), "");
    const std::vector<std::pair<const char*, uint64_t>> edits = {{"edited", 4}, {"edited-last", 7}};
    for (const auto& [run, seq] : edits) {
      auto event = DecodeEvent(raw.Get("events", EventKey(run, seq)));
      ASSERT_TRUE(event.ok()) << event.status().ToString();
      event->task_path += "/tampered";
      auto bytes = EncodeEvent(*event);
      ASSERT_TRUE(bytes.ok());
      raw.Put("events", EventKey(run, seq), *bytes);
    }
    raw.Put("events", EventKey("misplaced", 5), raw.Get("events", EventKey("misplaced", 2)));
    raw.Delete("events", EventKey("hole", 3));
    raw.Delete("events", EventKey("cut", kCorruptRunEvents - 1));
    raw.Put("runs", "header", random_->Bytes(24));
    std::string bytes = raw.Get("events", EventKey("flipped", flipped_seq));
    ASSERT_FALSE(bytes.empty());
    bytes[random_->Uniform(bytes.size())] ^= static_cast<char>(1 + random_->Uniform(255));
    raw.Put("events", EventKey("flipped", flipped_seq), bytes);
  }

  auto store = Open(Durability::kSync, rocksdb::FileSystem::Default());
  ASSERT_NE(store, nullptr);
  // Per storage/FORMAT.md's table: where VerifyRun must place the first bad seq.
  const std::map<std::string, uint64_t> first_bad = {{"junk", 3},
                                                     {"empty", 5},
                                                     {"edited", 4},
                                                     {"edited-last", 7},
                                                     {"misplaced", 5},
                                                     {"hole", 3},
                                                     {"cut", kCorruptRunEvents - 1}};
  for (const auto& [run, seq] : first_bad) {
    auto report = store->VerifyRun(RunId::Parse(run).value());
    ASSERT_TRUE(report.ok()) << run << ": " << report.status().ToString();
    EXPECT_FALSE(report->ok) << run;
    EXPECT_EQ(report->first_bad_seq, std::optional<uint64_t>(seq))
        << run << ": " << report->problem;
    EXPECT_FALSE(report->problem.empty()) << run;
  }
  // Reading stops with kDataLoss at bytes that cannot be this run's event at this seq.
  const std::vector<std::pair<const char*, uint64_t>> unreadable = {
      {"junk", 3}, {"empty", 5}, {"misplaced", 5}, {"hole", 3}};
  for (const auto& [run, seq] : unreadable) {
    auto [visited, status] = Scan(*store, run);
    EXPECT_EQ(status.code(), StatusCode::kDataLoss) << run << ": " << status.ToString();
    EXPECT_EQ(visited, seq) << run;
    auto history = store->ReadHistory(RunId::Parse(run).value(), 0, 100);
    EXPECT_EQ(history.status().code(), StatusCode::kDataLoss) << run;
  }
  // A flipped byte anywhere is caught by the chain: at the event or, if it hit the
  // event's prev_hash, at its predecessor (FORMAT.md).
  {
    auto report = store->VerifyRun(RunId::Parse("flipped").value());
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->ok);
    ASSERT_TRUE(report->first_bad_seq.has_value()) << report->problem;
    EXPECT_TRUE(*report->first_bad_seq == flipped_seq || *report->first_bad_seq + 1 == flipped_seq)
        << "flipped seq " << flipped_seq << ", reported " << *report->first_bad_seq << ": "
        << report->problem;
  }
  // A corrupt header is data loss, not a crash and not "no such run".
  {
    auto header = store->GetRun(RunId::Parse("header").value());
    EXPECT_EQ(header.status().code(), StatusCode::kDataLoss) << header.status().ToString();
    auto report = store->VerifyRun(RunId::Parse("header").value());
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->ok);
  }
  {
    auto [visited, status] = Scan(*store, "intact");
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(visited, kCorruptRunEvents);
  }
  std::map<std::string, bool> verified;
  auto failures = store->VerifyAll([&](const VerifyReport& r) { verified[r.run_id.str()] = r.ok; });
  ASSERT_TRUE(failures.ok()) << failures.status().ToString();
  EXPECT_EQ(*failures, std::size(kRuns) - 1);
  EXPECT_EQ(verified.size(), std::size(kRuns));
  for (const char* run : kRuns) {
    EXPECT_EQ(verified[run], std::string_view(run) == "intact") << run;
  }
}

}  // namespace
}  // namespace cairn::storage
