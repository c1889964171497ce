// The store's behaviour through its public contract (storage/store.h): opening and
// locking, run creation and appends with optimistic concurrency, the run header, reads,
// the derived indexes (active runs, status index, timers, start keys), blobs and
// definitions, and the validation of transitions.
#include "storage/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <limits>
#include <mutex>
#include <optional>
#include <source_location>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "base/random.h"
#include "base/sha256.h"
#include "storage/keys.h"
#include "tests/support/assertions.h"
#include "tests/support/event_gen.h"
#include "tests/support/raw_db.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace cairn::storage {
namespace {
using cairn::testing::RawDb;

using testing::HasSubstr;
using testing::IsError;
using testing::Must;

constexpr int64_t kT0 = 1'700'000'000'000'000'000;
constexpr int64_t kSecond = 1'000'000'000;

// ---- building transitions ----

RunId Id(std::string_view text) { return RunId::FromTrusted(text); }

NewEvent Started(std::string start_key = "") {
  RunStarted started;
  started.workflow_namespace = "billing";
  started.workflow_name = "change-plan";
  started.workflow_version = "1.0.0";
  started.definition_hash = Sha256::Of("definition");
  started.input = Payload::Json(R"({"seats":12})");
  started.start_key = std::move(start_key);
  return {"", std::move(started)};
}

NewEvent Value(std::string name) {
  return {"/do/" + name, ValueRecorded{name, Payload::Json("\"" + name + "\"")}};
}

NewEvent Stopped(StopReason reason = StopReason::kCompleted) {
  RunStopped stopped;
  stopped.reason = reason;
  stopped.output = Payload::Json("{}");
  return {"", std::move(stopped)};
}

NewEvent Scheduled(std::string timer_id, int64_t due_at_ns,
                   TimerPurpose purpose = TimerPurpose::kWait) {
  return {"/do/wait", TimerScheduled{std::move(timer_id), due_at_ns, purpose}};
}
NewEvent Fired(std::string timer_id, int64_t due_at_ns,
               TimerPurpose purpose = TimerPurpose::kWait) {
  return {"/do/wait", TimerFired{std::move(timer_id), due_at_ns, purpose}};
}
NewEvent Cancelled(std::string timer_id, int64_t due_at_ns) {
  return {"/do/wait", TimerCancelled{std::move(timer_id), due_at_ns}};
}

RunHeader HeaderWith(RunStatus status) {
  RunHeader header;
  header.status = status;
  header.workflow_namespace = "billing";
  header.workflow_name = "change-plan";
  header.workflow_version = "1.0.0";
  header.definition_hash = Sha256::Of("definition");
  if (status == RunStatus::kCompleted) header.stop_reason = StopReason::kCompleted;
  if (status == RunStatus::kFailed) header.stop_reason = StopReason::kFaulted;
  return header;
}

Transition Create(const RunId& run, std::string start_key = "",
                  RunStatus status = RunStatus::kRunning) {
  Transition t;
  t.run_id = run;
  t.expected_next_seq = 0;
  t.events.push_back(Started(start_key));
  t.header = HeaderWith(status);
  t.header.start_key = std::move(start_key);
  return t;
}

Transition Step(const RunId& run, uint64_t expected_next_seq, std::vector<NewEvent> events,
                RunStatus status = RunStatus::kRunning) {
  Transition t;
  t.run_id = run;
  t.expected_next_seq = expected_next_seq;
  t.events = std::move(events);
  t.header = HeaderWith(status);
  return t;
}

// ---- the fixture ----

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = Open(); }

  StoreOptions Options(Durability durability = Durability::kSync) const {
    StoreOptions options;
    options.clock = &clock_;
    options.durability = durability;
    options.owner_description = "store-test";
    return options;
  }
  std::unique_ptr<Store> Open(Durability durability = Durability::kSync) {
    return Must(Store::Open(data_dir(), Options(durability)));
  }
  void Reopen() {
    Must(store_->Close());
    store_.reset();
    store_ = Open();
  }
  void CloseStore() {
    Must(store_->Close());
    store_.reset();
  }

  std::string data_dir() const { return dir_.path() + "/data"; }

  AppendResult Append(Transition t) { return Must(store_->Append(std::move(t))); }
  RunHeader GetRun(const RunId& run) { return Must(store_->GetRun(run)); }
  std::vector<Event> History(const RunId& run) {
    return Must(store_->ReadHistory(run, 0, limits::history_read_events_max));
  }
  std::vector<std::string> Ids(const std::vector<RunSummary>& runs) {
    std::vector<std::string> ids;
    for (const auto& r : runs) ids.push_back(r.run_id.str());
    return ids;
  }
  // The statuses under which the status index lists `run`.
  std::vector<RunStatus> IndexedStatuses(const RunId& run) {
    std::vector<RunStatus> found;
    for (int s = 0; s <= static_cast<int>(RunStatus::kKilled); ++s) {
      const auto status = static_cast<RunStatus>(s);
      for (const auto& r : Must(store_->ListRuns(status, "", limits::list_runs_max))) {
        if (r.run_id == run) {
          EXPECT_EQ(r.status, status);
          found.push_back(status);
        }
      }
    }
    return found;
  }
  // Creates a run and appends `values` single-event steps; returns next_seq.
  uint64_t MakeRun(const RunId& run, size_t values) {
    Append(Create(run));
    for (size_t i = 0; i < values; ++i) {
      Append(Step(run, 1 + i, {Value("v" + std::to_string(i))}));
    }
    return 1 + values;
  }

  testing::TempDir dir_;
  ManualClock clock_{kT0};
  std::unique_ptr<Store> store_;
};

// ---------------------------------------------------------------------------------------
// Opening.

TEST_F(StoreTest, CreatesDirectoryAndReopensWithEverythingIntact) {
  EXPECT_TRUE(std::filesystem::exists(data_dir() + "/db/CURRENT"));
  EXPECT_TRUE(std::filesystem::exists(data_dir() + "/cairn.lock"));
  EXPECT_EQ(store_->dir(), data_dir());
  EXPECT_FALSE(store_->read_only());

  const RunId run = Id("run-1");
  Append(Create(run, "order-17"));
  Append(Step(run, 1, {Value("a"), Value("b")}, RunStatus::kWaiting));
  const Sha256 blob = Must(store_->PutBlob("a large prompt"));
  const Sha256 definition = Must(store_->PutDefinition("document: {}"));
  const RunHeader header_before = GetRun(run);
  const std::vector<Event> history_before = History(run);
  ASSERT_EQ(history_before.size(), 3u);

  Reopen();
  EXPECT_EQ(GetRun(run), header_before);
  EXPECT_EQ(History(run), history_before);
  EXPECT_EQ(Must(store_->GetBlob(blob)), "a large prompt");
  EXPECT_EQ(Must(store_->GetDefinition(definition)), "document: {}");
  EXPECT_EQ(Must(store_->FindStartKey("order-17")), std::optional<RunId>(run));
  EXPECT_EQ(Ids(Must(store_->ListActiveRuns("", 10))), std::vector<std::string>{"run-1"});
  // The reopened store continues the chain where it was.
  const AppendResult next = Append(Step(run, 3, {Value("c")}));
  EXPECT_EQ(next.first_seq, EventSeq(3));
  EXPECT_EQ(next.next_seq, 4u);
  EXPECT_EQ(History(run)[3].prev_hash, header_before.chain_head);
  EXPECT_TRUE(Must(store_->VerifyRun(run)).ok);
}

TEST_F(StoreTest, CloseIsIdempotent) {
  EXPECT_TRUE(store_->Close().ok());
  EXPECT_TRUE(store_->Close().ok());
}

TEST_F(StoreTest, ReadOnlyOpenOfMissingDirectoryIsNotFound) {
  const std::string missing = dir_.path() + "/no-such-store";
  StoreOptions options = Options();
  options.read_only = true;
  auto opened = Store::Open(missing, options);
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(IsError(opened.status(), StatusCode::kNotFound, {missing, "does not exist"}));
  // One clear message: not a RocksDB error, and nothing was created on the way.
  EXPECT_FALSE(HasSubstr(opened.status().message(), "IO error"));
  EXPECT_EQ(opened.status().message().find(missing), opened.status().message().rfind(missing));
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(StoreTest, WritableOpenWithoutCreateOfMissingDirectoryIsNotFound) {
  const std::string missing = dir_.path() + "/no-such-store";
  StoreOptions options = Options();
  options.create_if_missing = false;
  auto opened = Store::Open(missing, options);
  EXPECT_TRUE(IsError(opened.status(), StatusCode::kNotFound, {missing}));
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(StoreTest, ReadOnlyOpenOfEmptyDirectoryIsNotACairnStore) {
  const std::string empty = dir_.path() + "/empty";
  std::filesystem::create_directories(empty);
  StoreOptions options = Options();
  options.read_only = true;
  auto opened = Store::Open(empty, options);
  EXPECT_TRUE(IsError(opened.status(), StatusCode::kNotFound, {"no cairn store", empty}));
  EXPECT_FALSE(std::filesystem::exists(empty + "/db"));
}

TEST_F(StoreTest, ReadOnlyOpenOfForeignRocksDbIsDataLoss) {
  const std::string foreign = dir_.path() + "/foreign";
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    std::filesystem::create_directories(foreign);
    ASSERT_TRUE(rocksdb::DB::Open(options, foreign + "/db", &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "some", "thing").ok());
    delete db;
  }
  StoreOptions options = Options();
  options.read_only = true;
  auto opened = Store::Open(foreign, options);
  EXPECT_TRUE(IsError(opened.status(), StatusCode::kDataLoss, {"not a cairn store", "events"}));
}

TEST_F(StoreTest, WritableOpenNeverAdoptsAForeignRocksDb) {
  const std::string foreign = dir_.path() + "/foreign";
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    std::filesystem::create_directories(foreign);
    ASSERT_TRUE(rocksdb::DB::Open(options, foreign + "/db", &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "some", "thing").ok());
    delete db;
  }
  auto opened = Store::Open(foreign, Options());
  EXPECT_TRUE(IsError(opened.status(), StatusCode::kDataLoss,
                      {"not a cairn store", "format version", "'default'"}));
  // A second try is refused the same way: the first one stamped nothing.
  auto again = Store::Open(foreign, Options());
  EXPECT_TRUE(IsError(again.status(), StatusCode::kDataLoss, {"not a cairn store"}));
}

TEST_F(StoreTest, ReadsAndWritesAfterCloseFailCleanly) {
  Must(store_->Append(Create(Id("run-1"))));
  Must(store_->Close());
  EXPECT_TRUE(
      IsError(store_->GetRun(Id("run-1")).status(), StatusCode::kFailedPrecondition, {"closed"}));
  EXPECT_TRUE(IsError(store_->ReadHistory(Id("run-1"), 0, 10).status(),
                      StatusCode::kFailedPrecondition, {"closed"}));
  EXPECT_TRUE(IsError(store_->ListRuns(std::nullopt, "", 10).status(),
                      StatusCode::kFailedPrecondition, {"closed"}));
  EXPECT_TRUE(IsError(store_->VerifyAll([](const VerifyReport&) {}).status(),
                      StatusCode::kFailedPrecondition, {"closed"}));
  EXPECT_TRUE(IsError(store_->Submit(Step(Id("run-1"), 1, {Value("x")}), [](auto) {}),
                      StatusCode::kFailedPrecondition, {"closed"}));
  Must(store_->Close());  // idempotent
}

TEST_F(StoreTest, CloseFromACompletionCallbackIsRefused) {
  std::promise<Status> closed_in_callback;
  Must(store_->Submit(Create(Id("run-1")), [&](Result<AppendResult>) {
    closed_in_callback.set_value(store_->Close());
  }));
  EXPECT_TRUE(IsError(closed_in_callback.get_future().get(), StatusCode::kFailedPrecondition,
                      {"completion callback"}));
  Must(store_->GetRun(Id("run-1")).status());
}

TEST_F(StoreTest, StoppingARunDropsItsOutstandingTimers) {
  const RunId run = Id("timed");
  Append(Create(run));
  Append(Step(run, 1, {Scheduled("t1", kT0 + kSecond), Scheduled("t2", kT0 + 2 * kSecond)},
              RunStatus::kWaiting));
  EXPECT_EQ(Must(store_->GetRun(run)).timers.size(), 2u);
  EXPECT_EQ(Must(store_->DueTimers(kT0 + 10 * kSecond, 10)).size(), 2u);
  Append(Step(run, 3, {Stopped(StopReason::kCancelled)}, RunStatus::kCancelled));
  EXPECT_TRUE(Must(store_->DueTimers(kT0 + 10 * kSecond, 10)).empty());
  EXPECT_TRUE(Must(store_->GetRun(run)).timers.empty());
}

TEST_F(StoreTest, TimersMustBeOutstandingToFireOrCancel) {
  const RunId run = Id("timed");
  Append(Create(run));
  Append(Step(run, 1, {Scheduled("t1", kT0 + kSecond)}, RunStatus::kWaiting));
  EXPECT_TRUE(IsError(store_->Submit(Step(run, 2, {Scheduled("t1", kT0)}), [](auto) {}),
                      StatusCode::kInvalidArgument, {"'t1'", "already scheduled"}));
  EXPECT_TRUE(IsError(store_->Submit(Step(run, 2, {Fired("nope", kT0)}), [](auto) {}),
                      StatusCode::kInvalidArgument, {"'nope'", "not outstanding"}));
  EXPECT_TRUE(IsError(store_->Submit(Step(run, 2, {Fired("t1", kT0)}), [](auto) {}),
                      StatusCode::kInvalidArgument, {"'t1'", "due at"}));
  Append(Step(run, 2, {Fired("t1", kT0 + kSecond)}));
  EXPECT_TRUE(Must(store_->GetRun(run)).timers.empty());
  // Once fired, the id may be scheduled again.
  Append(Step(run, 3, {Scheduled("t1", kT0 + 5 * kSecond)}, RunStatus::kWaiting));
  EXPECT_EQ(Must(store_->DueTimers(kT0 + 10 * kSecond, 10)).size(), 1u);
}

TEST_F(StoreTest, VerifyIsConsistentWhileAppendsRun) {
  const RunId run = Id("live");
  Append(Create(run));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint64_t next = 1;
    while (!stop) {
      auto r = store_->Append(Step(run, next, {Value("v")}));
      if (!r.ok()) break;
      next = r->next_seq;
    }
  });
  int broken = 0;
  for (int i = 0; i < 300 && broken == 0; ++i) {
    if (!Must(store_->VerifyRun(run)).ok) ++broken;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(broken, 0);
}

TEST_F(StoreTest, SubmitWithoutACallbackIsRefused) {
  EXPECT_TRUE(IsError(store_->Submit(Create(Id("run-1")), AppendCallback()),
                      StatusCode::kInvalidArgument, {"callback"}));
}

TEST_F(StoreTest, BlockingCallsFromACallbackAreRefused) {
  std::promise<std::pair<Status, Status>> seen;
  Must(store_->Submit(Create(Id("run-1")), [&](Result<AppendResult>) {
    seen.set_value({store_->PutBlob("x").status(),
                    store_->Append(Step(Id("run-1"), 1, {Value("v")})).status()});
  }));
  auto [blob, append] = seen.get_future().get();
  EXPECT_TRUE(IsError(blob, StatusCode::kFailedPrecondition, {"PutBlob()", "callback"}));
  EXPECT_TRUE(IsError(append, StatusCode::kFailedPrecondition, {"Append()", "callback"}));
}

TEST_F(StoreTest, ConcurrentClosesAreSafe) {
  Must(store_->Append(Create(Id("run-1"))));
  std::vector<std::thread> closers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    closers.emplace_back([&] { ok += store_->Close().ok() ? 1 : 0; });
  }
  for (auto& t : closers) t.join();
  EXPECT_EQ(ok.load(), 4);
}

TEST_F(StoreTest, OpenRefusesAnotherFormatVersion) {
  CloseStore();
  RawDb(data_dir()).Put(keys::kDefaultFamily, keys::kFormatVersionKey, "99");
  auto opened = Store::Open(data_dir(), Options());
  EXPECT_TRUE(IsError(opened.status(), StatusCode::kFailedPrecondition, {"'99'", "version 1"}));
  // The refused open released the lock and changed nothing: putting the version back
  // makes the store usable again.
  RawDb(data_dir()).Put(keys::kDefaultFamily, keys::kFormatVersionKey, keys::kFormatVersion);
  EXPECT_TRUE(Store::Open(data_dir(), Options()).ok());
}

TEST_F(StoreTest, OpenRejectsBadOptions) {
  StoreOptions no_clock = Options();
  no_clock.clock = nullptr;
  EXPECT_TRUE(IsError(Store::Open(dir_.path() + "/other", no_clock).status(),
                      StatusCode::kInvalidArgument, {"clock"}));

  const std::string file = dir_.path() + "/a-file";
  { std::ofstream(file) << "not a directory"; }
  EXPECT_TRUE(IsError(Store::Open(file, Options()).status(), StatusCode::kInvalidArgument,
                      {file, "not a directory"}));
}

TEST_F(StoreTest, SecondOpenInTheSameProcessFailsNamingOurPid) {
  auto second = Store::Open(data_dir(), Options());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(IsError(second.status(), StatusCode::kFailedPrecondition,
                      {"pid " + std::to_string(getpid()) + " ", "store-test", data_dir()}));
  // The failed open did not disturb the owner.
  const RunId run = Id("still-mine");
  EXPECT_EQ(Append(Create(run)).next_seq, 1u);

  // Once the owner closes, the directory can be taken again.
  CloseStore();
  store_ = Open();
  EXPECT_EQ(GetRun(run).next_seq, 1u);
}

TEST_F(StoreTest, ReadOnlyOpenWorksBesideAWriter) {
  const RunId run = Id("shared");
  MakeRun(run, 2);
  const Sha256 blob = Must(store_->PutBlob("blob bytes"));

  StoreOptions options = Options();
  options.read_only = true;
  auto reader = Must(Store::Open(data_dir(), options));
  EXPECT_TRUE(reader->read_only());
  EXPECT_EQ(Must(reader->GetRun(run)), GetRun(run));
  EXPECT_EQ(Must(reader->ReadHistory(run, 0, 100)), History(run));
  EXPECT_EQ(Must(reader->GetBlob(blob)), "blob bytes");
  EXPECT_TRUE(Must(reader->VerifyRun(run)).ok);

  // Writes through the reader are refused and change nothing.
  EXPECT_TRUE(IsError(reader->Append(Step(run, 3, {Value("x")})).status(),
                      StatusCode::kFailedPrecondition, {"read-only"}));
  EXPECT_TRUE(IsError(reader->Append(Create(Id("other"))).status(), StatusCode::kFailedPrecondition,
                      {"read-only"}));
  EXPECT_TRUE(
      IsError(reader->PutBlob("x").status(), StatusCode::kFailedPrecondition, {"read-only"}));
  EXPECT_TRUE(
      IsError(reader->PutDefinition("x").status(), StatusCode::kFailedPrecondition, {"read-only"}));
  EXPECT_TRUE(reader->Close().ok());

  // The writer carries on.
  EXPECT_EQ(Append(Step(run, 3, {Value("y")})).next_seq, 4u);
  EXPECT_EQ(History(run).size(), 4u);
}

TEST_F(StoreTest, BufferedAndSyncDurabilityBothPersist) {
  CloseStore();
  for (Durability durability : {Durability::kBuffered, Durability::kSync}) {
    SCOPED_TRACE(durability == Durability::kSync ? "sync" : "buffered");
    const RunId run = Id(durability == Durability::kSync ? "sync-run" : "buffered-run");
    {
      auto store = Must(Store::Open(data_dir(), Options(durability)));
      EXPECT_EQ(Must(store->Append(Create(run))).next_seq, 1u);
      EXPECT_EQ(Must(store->Append(Step(run, 1, {Value("a"), Value("b")}))).next_seq, 3u);
      EXPECT_TRUE(store->Close().ok());
    }
    auto store = Must(Store::Open(data_dir(), Options(durability)));
    EXPECT_EQ(Must(store->GetRun(run)).next_seq, 3u);
    EXPECT_EQ(Must(store->ReadHistory(run, 0, 10)).size(), 3u);
    EXPECT_TRUE(Must(store->VerifyRun(run)).ok);
  }
}

// ---------------------------------------------------------------------------------------
// Creating runs and appending.

TEST_F(StoreTest, CreateReturnsTheChainAndFillsTheFirstEvent) {
  const RunId run = Id("run-a");
  const AppendResult created = Append(Create(run));
  EXPECT_EQ(created.first_seq, EventSeq(0));
  EXPECT_EQ(created.next_seq, 1u);

  std::vector<std::string> bytes;
  ASSERT_TRUE(store_
                  ->ScanHistory(run, 0,
                                [&](const StoredEvent& e) {
                                  bytes.emplace_back(e.bytes);
                                  return true;
                                })
                  .ok());
  ASSERT_EQ(bytes.size(), 1u);
  EXPECT_EQ(created.chain_head, Sha256::Of(Sha256().view(), bytes[0]));

  const std::vector<Event> history = History(run);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].run_id, run);
  EXPECT_EQ(history[0].seq, EventSeq(0));
  EXPECT_EQ(history[0].time_ns, kT0);
  EXPECT_TRUE(history[0].prev_hash.IsZero());
  EXPECT_EQ(history[0].body, Started().body);
}

TEST_F(StoreTest, FirstEventMustBeRunStarted) {
  const RunId run = Id("run-a");
  Transition t = Step(run, 0, {Value("x")});
  EXPECT_TRUE(IsError(store_->Append(t).status(), StatusCode::kInvalidArgument,
                      {"run-a", "event 0 (value_recorded)", "must be run_started"}));
  EXPECT_TRUE(IsError(store_->GetRun(run).status(), StatusCode::kNotFound));

  Transition twice = Create(run);
  twice.events.push_back(Started());
  EXPECT_TRUE(IsError(store_->Append(twice).status(), StatusCode::kInvalidArgument,
                      {"event 1 (run_started)", "first event"}));
  EXPECT_TRUE(IsError(store_->GetRun(run).status(), StatusCode::kNotFound));

  Append(Create(run));
  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {Started()})).status(),
                      StatusCode::kInvalidArgument, {"event 0 (run_started)"}));
  EXPECT_EQ(GetRun(run).next_seq, 1u);
}

TEST_F(StoreTest, AppendChecksExpectedNextSeq) {
  const RunId run = Id("run-a");
  MakeRun(run, 1);  // next_seq 2
  EXPECT_TRUE(IsError(store_->Append(Step(run, 3, {Value("x")})).status(), StatusCode::kAborted,
                      {"run-a", "at seq 2", "expected 3"}));
  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {Value("x")})).status(), StatusCode::kAborted,
                      {"at seq 2", "expected 1"}));
  EXPECT_EQ(GetRun(run).next_seq, 2u);
  EXPECT_EQ(History(run).size(), 2u);

  const AppendResult ok = Append(Step(run, 2, {Value("x"), Value("y")}));
  EXPECT_EQ(ok.first_seq, EventSeq(2));
  EXPECT_EQ(ok.next_seq, 4u);
  EXPECT_EQ(GetRun(run).next_seq, 4u);
}

TEST_F(StoreTest, AppendToUnknownRunIsNotFound) {
  EXPECT_TRUE(IsError(store_->Append(Step(Id("ghost"), 1, {Value("x")})).status(),
                      StatusCode::kNotFound, {"ghost"}));
  EXPECT_TRUE(IsError(store_->GetRun(Id("ghost")).status(), StatusCode::kNotFound, {"ghost"}));
}

TEST_F(StoreTest, CreatingARunTwiceIsAlreadyExists) {
  const RunId run = Id("run-a");
  const AppendResult first = Append(Create(run));
  EXPECT_TRUE(IsError(store_->Append(Create(run)).status(), StatusCode::kAlreadyExists, {"run-a"}));
  EXPECT_EQ(GetRun(run).chain_head, first.chain_head);
  EXPECT_EQ(History(run).size(), 1u);
  Reopen();  // also when the run is known only from disk
  EXPECT_TRUE(IsError(store_->Append(Create(run)).status(), StatusCode::kAlreadyExists, {"run-a"}));
}

TEST_F(StoreTest, DuplicateStartKeyIsAlreadyExistsAndNamesTheRun) {
  const RunId first = Id("first");
  Append(Create(first, "invoice-42"));
  EXPECT_EQ(Must(store_->FindStartKey("invoice-42")), std::optional<RunId>(first));
  EXPECT_EQ(Must(store_->FindStartKey("invoice-43")), std::nullopt);

  EXPECT_TRUE(IsError(store_->Append(Create(Id("second"), "invoice-42")).status(),
                      StatusCode::kAlreadyExists, {"invoice-42", "first"}));
  EXPECT_TRUE(IsError(store_->GetRun(Id("second")).status(), StatusCode::kNotFound));

  // Runs without a start key never collide; another key is free.
  Append(Create(Id("third")));
  Append(Create(Id("fourth")));
  Append(Create(Id("fifth"), "invoice-43"));
  EXPECT_EQ(Must(store_->FindStartKey("invoice-43")), std::optional<RunId>(Id("fifth")));

  Reopen();
  EXPECT_EQ(Must(store_->FindStartKey("invoice-42")), std::optional<RunId>(first));
  EXPECT_TRUE(IsError(store_->Append(Create(Id("sixth"), "invoice-42")).status(),
                      StatusCode::kAlreadyExists, {"invoice-42"}));
}

TEST_F(StoreTest, StartKeyIsReservedWhileItsCreationIsInFlight) {
  // Hold the commit thread in a completion callback so that the first creation stays
  // queued: the second must then be refused by the reservation, as the committed dedupe
  // entry does not exist yet.
  std::promise<void> held;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(store_
                  ->Submit(Create(Id("holder")),
                           [&held, released](Result<AppendResult>) {
                             held.set_value();
                             released.wait();
                           })
                  .ok());
  held.get_future().wait();

  std::promise<Result<AppendResult>> first_done;
  const Status first = store_->Submit(Create(Id("first"), "k"), [&](Result<AppendResult> r) {
    first_done.set_value(std::move(r));
  });
  int second_calls = 0;
  const Status second =
      store_->Submit(Create(Id("second"), "k"), [&](Result<AppendResult>) { ++second_calls; });
  // Not durable yet, but already visible: a retrying client finds the run it started.
  EXPECT_EQ(Must(store_->FindStartKey("k")), std::optional<RunId>(Id("first")));
  release.set_value();
  ASSERT_TRUE(first.ok()) << first.ToString();
  EXPECT_TRUE(IsError(second, StatusCode::kAlreadyExists, {"'k'", "first"}));
  EXPECT_TRUE(first_done.get_future().get().ok());
  EXPECT_EQ(second_calls, 0);
  EXPECT_EQ(Must(store_->FindStartKey("k")), std::optional<RunId>(Id("first")));
  EXPECT_TRUE(IsError(store_->GetRun(Id("second")).status(), StatusCode::kNotFound));
}

TEST_F(StoreTest, ConcurrentCreationsWithOneStartKeyHaveExactlyOneWinner) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string key = "key-" + std::to_string(round);
    std::latch start(kThreads);
    std::vector<Status> results(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        const RunId run = Id("r" + std::to_string(round) + "-t" + std::to_string(i));
        start.arrive_and_wait();
        results[i] = store_->Append(Create(run, key)).status();
      });
    }
    for (auto& t : threads) t.join();
    int winner = -1;
    for (int i = 0; i < kThreads; ++i) {
      if (results[i].ok()) {
        EXPECT_EQ(winner, -1) << "two creations with start key " << key << " succeeded";
        winner = i;
      } else {
        EXPECT_TRUE(IsError(results[i], StatusCode::kAlreadyExists, {key}));
      }
    }
    ASSERT_NE(winner, -1);
    const RunId won = Id("r" + std::to_string(round) + "-t" + std::to_string(winner));
    EXPECT_EQ(Must(store_->FindStartKey(key)), std::optional<RunId>(won));
    for (int i = 0; i < kThreads; ++i) {
      const RunId run = Id("r" + std::to_string(round) + "-t" + std::to_string(i));
      EXPECT_EQ(store_->GetRun(run).ok(), i == winner);
    }
  }
}

TEST_F(StoreTest, ConcurrentCreationsOfOneRunIdHaveExactlyOneWinner) {
  constexpr int kThreads = 8;
  const RunId run = Id("contested");
  std::latch start(kThreads);
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Transition t = Create(run);
      t.header.engine_state = std::to_string(i);
      start.arrive_and_wait();
      results[i] = store_->Append(std::move(t)).status();
    });
  }
  for (auto& t : threads) t.join();
  int winners = 0;
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].ok()) {
      ++winners;
      EXPECT_EQ(GetRun(run).engine_state, std::to_string(i));
    } else {
      EXPECT_TRUE(IsError(results[i], StatusCode::kAlreadyExists, {"contested"}));
    }
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(History(run).size(), 1u);
}

TEST_F(StoreTest, TerminalRunsRefuseMoreEvents) {
  const RunId run = Id("run-a");
  MakeRun(run, 1);
  Transition stop =
      Step(run, 2, {Value("last"), Stopped(StopReason::kCompleted)}, RunStatus::kCompleted);
  EXPECT_EQ(Append(stop).next_seq, 4u);
  const RunHeader header = GetRun(run);
  EXPECT_EQ(header.status, RunStatus::kCompleted);
  EXPECT_EQ(header.stop_reason, StopReason::kCompleted);

  EXPECT_TRUE(IsError(store_->Append(Step(run, 4, {Value("late")})).status(),
                      StatusCode::kFailedPrecondition, {"run-a", "stopped", "completed"}));
  EXPECT_TRUE(IsError(store_->Append(Step(run, 4, {Stopped()}, RunStatus::kCompleted)).status(),
                      StatusCode::kFailedPrecondition, {"run-a"}));
  Reopen();
  EXPECT_TRUE(IsError(store_->Append(Step(run, 4, {Value("late")})).status(),
                      StatusCode::kFailedPrecondition, {"run-a"}));
  EXPECT_EQ(GetRun(run), header);
}

TEST_F(StoreTest, RunStoppedMustBeLastAndMatchATerminalStatus) {
  const RunId run = Id("run-a");
  MakeRun(run, 0);
  EXPECT_TRUE(IsError(
      store_->Append(Step(run, 1, {Stopped(), Value("after")}, RunStatus::kCompleted)).status(),
      StatusCode::kInvalidArgument, {"event 0 (run_stopped)", "must be the last event"}));
  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {Stopped()}, RunStatus::kRunning)).status(),
                      StatusCode::kInvalidArgument,
                      {"header.status running is not terminal", "run_stopped"}));
  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {Value("x")}, RunStatus::kFailed)).status(),
                      StatusCode::kInvalidArgument,
                      {"header.status failed is terminal", "does not end with run_stopped"}));
  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {Value("x")}, RunStatus::kUnknown)).status(),
                      StatusCode::kInvalidArgument, {"header.status must be set"}));
  EXPECT_EQ(GetRun(run).next_seq, 1u);
  EXPECT_EQ(GetRun(run).status, RunStatus::kRunning);

  // Every terminal status is accepted with run_stopped.
  const RunStatus terminal[] = {RunStatus::kCompleted, RunStatus::kFailed, RunStatus::kCancelled,
                                RunStatus::kKilled};
  for (RunStatus status : terminal) {
    const RunId other = Id("stop-" + std::string(Name(status)));
    MakeRun(other, 0);
    EXPECT_TRUE(store_->Append(Step(other, 1, {Stopped()}, status)).ok()) << Name(status);
    EXPECT_EQ(GetRun(other).status, status);
  }
}

TEST_F(StoreTest, RunCanStartAndStopInOneTransition) {
  const RunId run = Id("instant");
  Transition t = Create(run, "", RunStatus::kFailed);
  t.events.push_back(Stopped(StopReason::kFaulted));
  EXPECT_EQ(Append(t).next_seq, 2u);
  EXPECT_EQ(GetRun(run).status, RunStatus::kFailed);
  EXPECT_TRUE(Must(store_->ListActiveRuns("", 10)).empty());
  EXPECT_EQ(IndexedStatuses(run), std::vector<RunStatus>{RunStatus::kFailed});
}

// ---------------------------------------------------------------------------------------
// The header and event times.

TEST_F(StoreTest, HeaderHoldsStoreFieldsAndTheCallersFields) {
  const RunId run = Id("run-a");
  Append(Create(run, "start-1"));
  RunHeader after_create = GetRun(run);
  EXPECT_EQ(after_create.run_id, run);
  EXPECT_EQ(after_create.next_seq, 1u);
  EXPECT_EQ(after_create.created_at_ns, kT0);
  EXPECT_EQ(after_create.updated_at_ns, kT0);
  EXPECT_EQ(after_create.start_key, "start-1");
  EXPECT_EQ(after_create.workflow_name, "change-plan");

  clock_.Advance(5 * kSecond);
  Transition t = Step(run, 1, {Value("a"), Value("b")}, RunStatus::kWaiting);
  t.header.waiting_on = "approval:ap-1";
  t.header.engine_state = "state-bytes";
  t.header.budget_spent.steps = 7;
  t.header.budget_spent.cost_micros = 1234;
  // The store owns these; whatever the caller puts there is replaced.
  t.header.run_id = Id("someone-else");
  t.header.next_seq = 99;
  t.header.chain_head = Sha256::Of("forged");
  t.header.created_at_ns = 1;
  t.header.updated_at_ns = 2;
  const AppendResult appended = Append(t);

  const RunHeader header = GetRun(run);
  EXPECT_EQ(header.run_id, run);
  EXPECT_EQ(header.status, RunStatus::kWaiting);
  EXPECT_EQ(header.next_seq, 3u);
  EXPECT_EQ(header.chain_head, appended.chain_head);
  EXPECT_EQ(header.created_at_ns, kT0);
  EXPECT_EQ(header.updated_at_ns, kT0 + 5 * kSecond);
  EXPECT_EQ(header.waiting_on, "approval:ap-1");
  EXPECT_EQ(header.engine_state, "state-bytes");
  EXPECT_EQ(header.budget_spent.steps, 7u);
  EXPECT_EQ(header.budget_spent.cost_micros, 1234);
  // The caller's header replaces the previous one whole (start_key was not repeated).
  EXPECT_EQ(header.start_key, "");

  // The chain head is the hash over the stored bytes, linked from zero.
  Sha256 chain;
  uint64_t n = 0;
  ASSERT_TRUE(store_
                  ->ScanHistory(run, 0,
                                [&](const StoredEvent& e) {
                                  EXPECT_EQ(e.event.prev_hash, chain) << "event " << n;
                                  chain = Sha256::Of(chain.view(), e.bytes);
                                  ++n;
                                  return true;
                                })
                  .ok());
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(chain, header.chain_head);
}

TEST_F(StoreTest, EventTimesComeFromTheInjectedClock) {
  const RunId run = Id("run-a");
  clock_.Set(kT0 + 11);
  Append(Create(run));
  clock_.Set(kT0 + 22);
  Append(Step(run, 1, {Value("a"), Value("b")}));
  clock_.Set(kT0 + 33);
  Append(Step(run, 3, {Value("c")}));
  const std::vector<Event> history = History(run);
  ASSERT_EQ(history.size(), 4u);
  EXPECT_EQ(history[0].time_ns, kT0 + 11);
  EXPECT_EQ(history[1].time_ns, kT0 + 22);
  EXPECT_EQ(history[2].time_ns, kT0 + 22);
  EXPECT_EQ(history[3].time_ns, kT0 + 33);
  EXPECT_EQ(GetRun(run).created_at_ns, kT0 + 11);
  EXPECT_EQ(GetRun(run).updated_at_ns, kT0 + 33);
}

TEST_F(StoreTest, TransitionTimeOverridesTheClock) {
  const RunId run = Id("run-a");
  Transition create = Create(run);
  create.time_ns = 555;
  Append(create);
  Transition step = Step(run, 1, {Value("a")});
  step.time_ns = 777;
  Append(step);
  Append(Step(run, 2, {Value("b")}));  // back to the clock
  const std::vector<Event> history = History(run);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].time_ns, 555);
  EXPECT_EQ(history[1].time_ns, 777);
  EXPECT_EQ(history[2].time_ns, kT0);
  EXPECT_EQ(GetRun(run).created_at_ns, 555);
  EXPECT_EQ(GetRun(run).updated_at_ns, kT0);
}

// ---------------------------------------------------------------------------------------
// Reading history.

TEST_F(StoreTest, ReadHistoryFromAnOffsetAndWithALimit) {
  const RunId run = Id("run-a");
  MakeRun(run, 9);          // 10 events
  MakeRun(Id("run-b"), 3);  // a neighbour whose events must not leak in

  auto seqs = [](const std::vector<Event>& events) {
    std::vector<uint64_t> out;
    for (const auto& e : events) out.push_back(e.seq.value());
    return out;
  };
  EXPECT_EQ(seqs(Must(store_->ReadHistory(run, 0, 100))),
            (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(seqs(Must(store_->ReadHistory(run, 4, 3))), (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_EQ(seqs(Must(store_->ReadHistory(run, 8, 100))), (std::vector<uint64_t>{8, 9}));
  EXPECT_TRUE(Must(store_->ReadHistory(run, 10, 100)).empty());
  EXPECT_TRUE(Must(store_->ReadHistory(run, 1000, 100)).empty());
  EXPECT_TRUE(Must(store_->ReadHistory(run, 0, 0)).empty());
  const std::vector<Event> some = Must(store_->ReadHistory(run, 5, 1));
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0].run_id, run);
  EXPECT_EQ(some[0].body, Value("v4").body);
  EXPECT_EQ(some[0].task_path, "/do/v4");

  EXPECT_TRUE(
      IsError(store_->ReadHistory(Id("ghost"), 0, 10).status(), StatusCode::kNotFound, {"ghost"}));
  EXPECT_TRUE(
      IsError(store_->ReadHistory(Id("ghost"), 3, 10).status(), StatusCode::kNotFound, {"ghost"}));
}

TEST_F(StoreTest, ScanHistoryStopsWhenTheVisitorSaysSo) {
  const RunId run = Id("run-a");
  MakeRun(run, 9);
  std::vector<uint64_t> seen;
  ASSERT_TRUE(store_
                  ->ScanHistory(run, 2,
                                [&](const StoredEvent& e) {
                                  seen.push_back(e.event.seq.value());
                                  EXPECT_FALSE(e.bytes.empty());
                                  return seen.size() < 3;
                                })
                  .ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_TRUE(IsError(store_->ScanHistory(Id("ghost"), 0, [](const StoredEvent&) { return true; }),
                      StatusCode::kNotFound, {"ghost"}));
}

// Random bodies of every kind round-trip through the store unchanged.
TEST_F(StoreTest, RandomEventsReadBackAsWritten) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random random(seed);
  const RunId run = Id("random");
  Append(Create(run));
  std::vector<NewEvent> written;
  uint64_t next = 1;
  for (int step = 0; step < 20; ++step) {
    Transition t = Step(run, next, {});
    const size_t count = 1 + random.Uniform(4);
    for (size_t i = 0; i < count; ++i) {
      EventBody body = testing::RandomEventBody(random, 512);
      // The store gives these kinds meaning (first, last, timers); the rest are opaque.
      if (std::holds_alternative<RunStarted>(body) || std::holds_alternative<RunStopped>(body) ||
          std::holds_alternative<UnknownBody>(body) ||
          std::holds_alternative<TimerScheduled>(body) ||
          std::holds_alternative<TimerFired>(body) ||
          std::holds_alternative<TimerCancelled>(body)) {
        body = ValueRecorded{"replaced", Payload::Json("null")};
      }
      t.events.push_back({"/do/" + std::to_string(step) + "/" + std::to_string(i), body});
    }
    written.insert(written.end(), t.events.begin(), t.events.end());
    next = Append(std::move(t)).next_seq;
  }
  Reopen();
  const std::vector<Event> history = History(run);
  ASSERT_EQ(history.size(), written.size() + 1);
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ(history[i + 1].task_path, written[i].task_path) << "event " << i + 1;
    EXPECT_TRUE(history[i + 1].body == written[i].body) << "event " << i + 1;
  }
  EXPECT_TRUE(Must(store_->VerifyRun(run)).ok);
}

// ---------------------------------------------------------------------------------------
// Listing runs: the runs family, the status index and the active set.

TEST_F(StoreTest, ListRunsInIdOrderWithStatusFilterAndPagination) {
  Append(Create(Id("r3")));
  Append(Create(Id("r1")));
  Append(Create(Id("r5"), "", RunStatus::kWaiting));
  Append(Create(Id("r2"), "", RunStatus::kWaiting));
  Append(Create(Id("r4")));
  Append(Step(Id("r3"), 1, {Stopped()}, RunStatus::kCompleted));

  const auto all = Must(store_->ListRuns(std::nullopt, "", 100));
  EXPECT_EQ(Ids(all), (std::vector<std::string>{"r1", "r2", "r3", "r4", "r5"}));
  const std::vector<RunStatus> statuses = {RunStatus::kRunning, RunStatus::kWaiting,
                                           RunStatus::kCompleted, RunStatus::kRunning,
                                           RunStatus::kWaiting};
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].status, statuses[i]) << i;

  EXPECT_EQ(Ids(Must(store_->ListRuns(std::nullopt, "", 2))),
            (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(Ids(Must(store_->ListRuns(std::nullopt, "r2", 2))),
            (std::vector<std::string>{"r3", "r4"}));
  EXPECT_EQ(Ids(Must(store_->ListRuns(std::nullopt, "r4", 2))), std::vector<std::string>{"r5"});
  EXPECT_TRUE(Must(store_->ListRuns(std::nullopt, "r5", 2)).empty());
  // start_after need not name an existing run.
  EXPECT_EQ(Ids(Must(store_->ListRuns(std::nullopt, "r2a", 10))),
            (std::vector<std::string>{"r3", "r4", "r5"}));
  EXPECT_TRUE(Must(store_->ListRuns(std::nullopt, "", 0)).empty());

  EXPECT_EQ(Ids(Must(store_->ListRuns(RunStatus::kRunning, "", 100))),
            (std::vector<std::string>{"r1", "r4"}));
  EXPECT_EQ(Ids(Must(store_->ListRuns(RunStatus::kWaiting, "", 100))),
            (std::vector<std::string>{"r2", "r5"}));
  EXPECT_EQ(Ids(Must(store_->ListRuns(RunStatus::kCompleted, "", 100))),
            std::vector<std::string>{"r3"});
  EXPECT_TRUE(Must(store_->ListRuns(RunStatus::kKilled, "", 100)).empty());
  EXPECT_EQ(Ids(Must(store_->ListRuns(RunStatus::kRunning, "", 1))),
            std::vector<std::string>{"r1"});
  EXPECT_EQ(Ids(Must(store_->ListRuns(RunStatus::kRunning, "r1", 1))),
            std::vector<std::string>{"r4"});
  EXPECT_TRUE(Must(store_->ListRuns(RunStatus::kRunning, "r4", 1)).empty());
  EXPECT_EQ(Ids(Must(store_->ListRuns(RunStatus::kWaiting, "r3", 10))),
            std::vector<std::string>{"r5"});
  for (const auto& r : Must(store_->ListRuns(RunStatus::kWaiting, "", 10))) {
    EXPECT_EQ(r.status, RunStatus::kWaiting);
  }
}

TEST_F(StoreTest, ListActiveRunsHoldsExactlyTheNonTerminalRuns) {
  Append(Create(Id("a")));
  Append(Create(Id("b"), "", RunStatus::kWaiting));
  Append(Create(Id("c"), "", RunStatus::kBlocked));
  Append(Create(Id("d")));
  Append(Step(Id("d"), 1, {Stopped(StopReason::kKilled)}, RunStatus::kKilled));

  auto active = Must(store_->ListActiveRuns("", 100));
  EXPECT_EQ(Ids(active), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(active.size(), 3u);
  EXPECT_EQ(active[0].status, RunStatus::kRunning);
  EXPECT_EQ(active[1].status, RunStatus::kWaiting);
  EXPECT_EQ(active[2].status, RunStatus::kBlocked);
  EXPECT_EQ(Ids(Must(store_->ListActiveRuns("a", 1))), std::vector<std::string>{"b"});
  EXPECT_EQ(Ids(Must(store_->ListActiveRuns("b", 100))), std::vector<std::string>{"c"});
  EXPECT_TRUE(Must(store_->ListActiveRuns("c", 100)).empty());

  Append(Step(Id("b"), 1, {Stopped()}, RunStatus::kCompleted));
  EXPECT_EQ(Ids(Must(store_->ListActiveRuns("", 100))), (std::vector<std::string>{"a", "c"}));
  Reopen();
  EXPECT_EQ(Ids(Must(store_->ListActiveRuns("", 100))), (std::vector<std::string>{"a", "c"}));
}

TEST_F(StoreTest, StatusChangesMoveTheRunAndLeaveNoStaleEntries) {
  const RunId run = Id("mover");
  const RunId bystander = Id("bystander");
  Append(Create(bystander, "", RunStatus::kWaiting));
  Append(Create(run));
  EXPECT_EQ(IndexedStatuses(run), std::vector<RunStatus>{RunStatus::kRunning});

  uint64_t next = 1;
  const RunStatus path[] = {RunStatus::kWaiting, RunStatus::kWaiting, RunStatus::kBlocked,
                            RunStatus::kRunning, RunStatus::kWaiting, RunStatus::kRunning};
  for (RunStatus status : path) {
    SCOPED_TRACE(std::string("now ") + std::string(Name(status)));
    next = Append(Step(run, next, {Value("s")}, status)).next_seq;
    EXPECT_EQ(IndexedStatuses(run), std::vector<RunStatus>{status});
    const auto active = Must(store_->ListActiveRuns("", 100));
    ASSERT_EQ(Ids(active), (std::vector<std::string>{"bystander", "mover"}));
    EXPECT_EQ(active[1].status, status);
    EXPECT_EQ(GetRun(run).status, status);
  }
  Append(Step(run, next, {Stopped(StopReason::kCancelled)}, RunStatus::kCancelled));
  EXPECT_EQ(IndexedStatuses(run), std::vector<RunStatus>{RunStatus::kCancelled});
  EXPECT_EQ(Ids(Must(store_->ListActiveRuns("", 100))), std::vector<std::string>{"bystander"});
  EXPECT_EQ(IndexedStatuses(bystander), std::vector<RunStatus>{RunStatus::kWaiting});

  Reopen();
  EXPECT_EQ(IndexedStatuses(run), std::vector<RunStatus>{RunStatus::kCancelled});
  EXPECT_EQ(Ids(Must(store_->ListActiveRuns("", 100))), std::vector<std::string>{"bystander"});
}

// ---------------------------------------------------------------------------------------
// Timers.

std::vector<std::string> TimerNames(const std::vector<DueTimer>& timers) {
  std::vector<std::string> out;
  for (const auto& t : timers) out.push_back(t.run_id.str() + "/" + t.timer_id);
  return out;
}

TEST_F(StoreTest, DueTimersAreAddedRemovedAndOrderedByDueTime) {
  const RunId a = Id("a");
  const RunId b = Id("b");
  MakeRun(a, 0);
  MakeRun(b, 0);
  Append(Step(a, 1, {Scheduled("t300", 300, TimerPurpose::kTaskTimeout), Scheduled("t200", 200)},
              RunStatus::kWaiting));
  Append(Step(b, 1, {Scheduled("t100", 100, TimerPurpose::kApprovalExpiry)}, RunStatus::kWaiting));

  EXPECT_TRUE(Must(store_->DueTimers(99, 10)).empty());
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(100, 10))), std::vector<std::string>{"b/t100"});
  const auto due = Must(store_->DueTimers(250, 10));
  EXPECT_EQ(TimerNames(due), (std::vector<std::string>{"b/t100", "a/t200"}));
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].due_at_ns, 100);
  EXPECT_EQ(due[0].purpose, TimerPurpose::kApprovalExpiry);
  EXPECT_EQ(due[1].due_at_ns, 200);
  EXPECT_EQ(due[1].purpose, TimerPurpose::kWait);
  const auto all = Must(store_->DueTimers(1000, 10));
  EXPECT_EQ(TimerNames(all), (std::vector<std::string>{"b/t100", "a/t200", "a/t300"}));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].purpose, TimerPurpose::kTaskTimeout);
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(1000, 2))),
            (std::vector<std::string>{"b/t100", "a/t200"}));

  // Firing and cancelling remove them; the other run's timers stay.
  Append(Step(b, 2, {Fired("t100", 100, TimerPurpose::kApprovalExpiry)}, RunStatus::kRunning));
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(1000, 10))),
            (std::vector<std::string>{"a/t200", "a/t300"}));
  Append(Step(a, 3, {Cancelled("t200", 200)}, RunStatus::kWaiting));
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(1000, 10))), std::vector<std::string>{"a/t300"});
  Reopen();
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(1000, 10))), std::vector<std::string>{"a/t300"});
  Append(Step(a, 4, {Fired("t300", 300, TimerPurpose::kTaskTimeout)}));
  EXPECT_TRUE(Must(store_->DueTimers(std::numeric_limits<int64_t>::max(), 10)).empty());
}

TEST_F(StoreTest, DueTimersHandleNegativeAndExtremeDueTimes) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const RunId run = Id("run");
  MakeRun(run, 0);
  Append(Step(run, 1,
              {Scheduled("max", kMax), Scheduled("zero", 0), Scheduled("minus-five", -5),
               Scheduled("min", kMin), Scheduled("plus-five", 5), Scheduled("big", kMax - 1)},
              RunStatus::kWaiting));
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(kMin, 10))), std::vector<std::string>{"run/min"});
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(-6, 10))), std::vector<std::string>{"run/min"});
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(-1, 10))),
            (std::vector<std::string>{"run/min", "run/minus-five"}));
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(0, 10))),
            (std::vector<std::string>{"run/min", "run/minus-five", "run/zero"}));
  EXPECT_EQ(TimerNames(Must(store_->DueTimers(kMax - 1, 10))),
            (std::vector<std::string>{"run/min", "run/minus-five", "run/zero", "run/plus-five",
                                      "run/big"}));
  const auto all = Must(store_->DueTimers(kMax, 10));
  EXPECT_EQ(TimerNames(all), (std::vector<std::string>{"run/min", "run/minus-five", "run/zero",
                                                       "run/plus-five", "run/big", "run/max"}));
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all.front().due_at_ns, kMin);
  EXPECT_EQ(all.back().due_at_ns, kMax);
  EXPECT_EQ(all[1].due_at_ns, -5);
}

// ---------------------------------------------------------------------------------------
// Blobs and definitions.

TEST_F(StoreTest, BlobsAreContentAddressedAndIdempotent) {
  const Sha256 digest = Must(store_->PutBlob("the prompt"));
  EXPECT_EQ(digest, Sha256::Of("the prompt"));
  EXPECT_EQ(Must(store_->PutBlob("the prompt")), digest);
  EXPECT_EQ(Must(store_->GetBlob(digest)), "the prompt");
  const Sha256 empty = Must(store_->PutBlob(""));
  EXPECT_EQ(Must(store_->GetBlob(empty)), "");
  EXPECT_TRUE(IsError(store_->GetBlob(Sha256::Of("never stored")).status(), StatusCode::kNotFound,
                      {Sha256::Of("never stored").Hex()}));
  // Blobs and definitions live apart.
  EXPECT_TRUE(IsError(store_->GetDefinition(digest).status(), StatusCode::kNotFound));
}

TEST_F(StoreTest, BlobsOfATransitionAreWrittenWithIt) {
  const RunId run = Id("run-a");
  MakeRun(run, 0);
  const std::string response(100'000, 'r');
  Transition t =
      Step(run, 1, {{"/do/agent", ValueRecorded{"response", Payload::Blob(Sha256::Of(response))}}});
  t.blobs = {response, "second blob"};
  Append(t);
  EXPECT_EQ(Must(store_->GetBlob(Sha256::Of(response))), response);
  EXPECT_EQ(Must(store_->GetBlob(Sha256::Of("second blob"))), "second blob");
  const std::vector<Event> history = History(run);
  ASSERT_EQ(history.size(), 2u);
  const auto& recorded = std::get<ValueRecorded>(history[1].body);
  EXPECT_EQ(recorded.value.kind, Payload::Kind::kBlob);
  EXPECT_EQ(recorded.value.blob, Sha256::Of(response));

  // A refused transition writes none of its blobs.
  Transition refused = Step(run, 1, {Value("stale")});
  refused.blobs = {"orphan"};
  EXPECT_TRUE(IsError(store_->Append(refused).status(), StatusCode::kAborted));
  EXPECT_TRUE(IsError(store_->GetBlob(Sha256::Of("orphan")).status(), StatusCode::kNotFound));
}

TEST_F(StoreTest, DefinitionsAreContentAddressed) {
  const std::string yaml = "document:\n  dsl: 1.0.0\n  name: change-plan\n";
  const Sha256 digest = Must(store_->PutDefinition(yaml));
  EXPECT_EQ(digest, Sha256::Of(yaml));
  EXPECT_EQ(Must(store_->PutDefinition(yaml)), digest);
  EXPECT_EQ(Must(store_->GetDefinition(digest)), yaml);
  EXPECT_TRUE(IsError(store_->GetBlob(digest).status(), StatusCode::kNotFound));
  EXPECT_TRUE(IsError(store_->GetDefinition(Sha256::Of("other")).status(), StatusCode::kNotFound,
                      {"definition"}));
  EXPECT_TRUE(
      IsError(store_->PutDefinition(std::string(limits::definition_bytes_max + 1, 'x')).status(),
              StatusCode::kInvalidArgument, {std::to_string(limits::definition_bytes_max)}));
}

TEST_F(StoreTest, CorruptedBlobOrDefinitionIsDataLoss) {
  const Sha256 blob = Must(store_->PutBlob("original blob"));
  const Sha256 definition = Must(store_->PutDefinition("original definition"));
  CloseStore();
  {
    RawDb raw(data_dir());
    raw.Put(keys::kBlobsFamily, blob.view(), "original blob!");
    raw.Put(keys::kDefinitionsFamily, definition.view(), "0riginal definition");
  }
  store_ = Open();
  EXPECT_TRUE(IsError(store_->GetBlob(blob).status(), StatusCode::kDataLoss,
                      {blob.Hex(), Sha256::Of("original blob!").Hex()}));
  EXPECT_TRUE(IsError(store_->GetDefinition(definition).status(), StatusCode::kDataLoss,
                      {definition.Hex()}));
}

// ---------------------------------------------------------------------------------------
// Validation: errors name the field and nothing is written.

TEST_F(StoreTest, ValidationErrorsNameTheField) {
  const RunId run = Id("run-v");
  MakeRun(run, 0);
  const RunHeader before = GetRun(run);

  Transition oversized = Step(run, 1, {Value("x")});
  oversized.blobs = {std::string(limits::transition_bytes_max, 'b')};
  EXPECT_TRUE(IsError(store_->Append(oversized).status(), StatusCode::kInvalidArgument,
                      {"run-v", "bytes; at most " + std::to_string(limits::transition_bytes_max)}));

  Transition too_many = Step(run, 1, {});
  for (size_t i = 0; i <= limits::events_per_transition_max; ++i)
    too_many.events.push_back(Value("x"));
  EXPECT_TRUE(IsError(store_->Append(too_many).status(), StatusCode::kInvalidArgument,
                      {std::to_string(limits::events_per_transition_max + 1) + " events",
                       "at most " + std::to_string(limits::events_per_transition_max)}));

  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {})).status(), StatusCode::kInvalidArgument,
                      {"run-v", "no events"}));

  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {Value("x"), {"/p", UnknownBody{99}}})).status(),
                      StatusCode::kInvalidArgument, {"event 1", "unknown event kind"}));

  EXPECT_TRUE(IsError(store_->Append(Step(run, 1, {Scheduled("", 100)})).status(),
                      StatusCode::kInvalidArgument, {"event 0 (timer_scheduled)", "timer_id"}));
  EXPECT_TRUE(IsError(
      store_
          ->Append(Step(run, 1, {Scheduled(std::string(limits::timer_id_bytes_max + 1, 't'), 100)}))
          .status(),
      StatusCode::kInvalidArgument, {"timer_id", std::to_string(limits::timer_id_bytes_max)}));
  // At the bound is fine.
  Transition long_timer =
      Step(run, 1, {Scheduled(std::string(limits::timer_id_bytes_max, 't'), 100)});
  EXPECT_TRUE(store_->Append(long_timer).ok());

  const RunId other = Id("run-w");
  EXPECT_TRUE(IsError(
      store_->Append(Create(other, std::string(limits::start_key_bytes_max + 1, 'k'))).status(),
      StatusCode::kInvalidArgument, {"start_key", std::to_string(limits::start_key_bytes_max)}));
  EXPECT_TRUE(IsError(store_->GetRun(other).status(), StatusCode::kNotFound));

  Transition no_id = Create(other);
  no_id.run_id = RunId();
  EXPECT_TRUE(IsError(store_->Append(no_id).status(), StatusCode::kInvalidArgument, {"run id"}));

  // Only the transition at the bound went through.
  EXPECT_EQ(GetRun(run).next_seq, before.next_seq + 1);
  EXPECT_EQ(History(run).size(), 2u);
}

}  // namespace
}  // namespace cairn::storage

namespace cairn::storage {
namespace {

TEST(StoreSettingsTest, PutGetListDeleteAndReopen) {
  ManualClock clock;
  testing::TempDir dir;
  {
    StoreOptions options;
    options.clock = &clock;
    auto store = Store::Open(dir.path(), options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    EXPECT_EQ((*store)->GetSetting("kill/all").value(), std::nullopt);
    ASSERT_TRUE((*store)->PutSetting("kill/all", R"({"reason":"x"})").ok());
    ASSERT_TRUE((*store)->PutSetting("kill/workflow/ns/a", "1").ok());
    ASSERT_TRUE((*store)->PutSetting("policy/current", "abc").ok());
    auto kills = (*store)->ListSettings("kill/");
    ASSERT_TRUE(kills.ok());
    ASSERT_EQ(kills->size(), 2u);
    EXPECT_EQ((*kills)[0].first, "kill/all");
    EXPECT_EQ((*kills)[1].first, "kill/workflow/ns/a");
    ASSERT_TRUE((*store)->DeleteSetting("kill/workflow/ns/a").ok());
    EXPECT_EQ((*store)->PutSetting("bad key", "1").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*store)->PutSetting("", "1").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*store)->PutSetting("big", std::string(limits::setting_bytes_max + 1, 'x')).code(),
              StatusCode::kInvalidArgument);
  }
  StoreOptions options;
  options.clock = &clock;
  options.read_only = true;
  auto store = Store::Open(dir.path(), options);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ((*store)->GetSetting("kill/all").value(),
            std::optional<std::string>(R"({"reason":"x"})"));
  EXPECT_EQ((*store)->GetSetting("kill/workflow/ns/a").value(), std::nullopt);
  EXPECT_EQ((*store)->ListSettings("").value().size(), 2u);
  EXPECT_EQ((*store)->PutSetting("x", "1").code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace cairn::storage
