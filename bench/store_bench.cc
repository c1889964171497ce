// Benchmarks of the event store, each beside the raw RocksDB ceiling measured in the same
// run on the same disk with the same event size, and the ratio of the two.
//
//   BM_SyncedTransitions/runs:N  N runs, each with one transition in flight (closed loop:
//                                on acknowledgement, a 2-thread pool submits the run's
//                                next one), group-committed with Durability::kSync.
//                                Ceiling: synced WriteBatches of 64 raw events.
//   BM_HistoryScan               ScanHistory of one long run (200k events), every event
//                                decoded and checked. Ceiling (ceiling_per_s, ratio): a
//                                full scan of a plain RocksDB with default options holding
//                                as many values of the same size. Stricter second ceiling
//                                (own_data_*): a raw iterator over the store's own `events`
//                                family, same data and table options -- the ratio then
//                                isolates cairn's per-event cost (decode and checks).
//   BM_EncodeEvent/BM_DecodeEvent codec cost per event. Ceiling: the raw synced write cost
//                                per event (what the codec adds to the write budget).
//
// Counters: events_per_s (engine), ceiling_per_s (raw RocksDB), ratio = engine / ceiling.
// Data goes to $CAIRN_BENCH_DIR (default: the system temp directory).
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <thread>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "bench/bench_support.h"
#include "base/random.h"
#include "storage/codec.h"
#include "storage/keys.h"
#include "storage/store.h"

namespace cairn {
namespace {

using bench::kCeilingSeconds;
using bench::MeasureRawSyncedWrites;
using bench::OpenRaw;
using bench::RawStoreEvents;
using bench::ScratchDir;
using bench::SetRatio;

using storage::Durability;
using storage::Event;
using storage::NewEvent;
using storage::RunHeader;
using storage::RunStatus;
using storage::Store;
using storage::StoreOptions;
using storage::Transition;

// A typical event: a task completing with a small JSON output (about 200 bytes encoded).
storage::EventBody TypicalBody(uint64_t i) {
  storage::TaskCompleted done;
  done.task_name = "checkEligibility";
  done.output = storage::Payload::Json(
      R"({"eligible":true,"customer":"cus_)" + std::to_string(100000 + i % 900000) +
      R"(","amount_cents":12900,"currency":"EUR","reason":"within 30-day window"})");
  done.then = "continue";
  return done;
}

storage::EventBody StartBody() {
  storage::RunStarted started;
  started.workflow_namespace = "bench";
  started.workflow_name = "refund-triage";
  started.workflow_version = "1.0.0";
  started.input = storage::Payload::Json(R"({"ticket":"T-1"})");
  return started;
}

RunHeader RunningHeader() {
  RunHeader h;
  h.status = RunStatus::kRunning;
  h.workflow_namespace = "bench";
  h.workflow_name = "refund-triage";
  h.workflow_version = "1.0.0";
  return h;
}

Event TypicalEvent() {
  Event e;
  e.run_id = RunId::FromTrusted("01JBENCHRUN000000000000000");
  e.seq = EventSeq(12345);
  e.time_ns = 1'700'000'000'000'000'000;
  e.task_path = "/do/1/checkEligibility";
  e.body = TypicalBody(7);
  return e;
}

// The encoded size of a typical event, so the ceiling writes values of the same size.
size_t TypicalEventBytes() {
  auto bytes = storage::EncodeEvent(TypicalEvent());
  return bytes.ok() ? bytes->size() : 200;
}

std::unique_ptr<Store> OpenStore(const std::string& dir, Durability durability,
                                 const Clock& clock) {
  StoreOptions options;
  options.clock = &clock;
  options.durability = durability;
  auto store = Store::Open(dir, options);
  if (!store.ok()) {
    std::fprintf(stderr, "store open failed: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  return std::move(store).value();
}

// A small thread pool standing in for the engine's Asio pool: completion callbacks hand
// the next step of a run to it instead of doing the work on the store's commit thread.
class WorkerPool {
 public:
  explicit WorkerPool(size_t threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Closed-loop driver: every run keeps one transition in flight; when it is acknowledged
// the run's next transition is built and submitted on the worker pool.
class ClosedLoop {
 public:
  ClosedLoop(Store& store, WorkerPool& pool, std::vector<RunId> runs)
      : store_(store), pool_(pool) {
    for (auto& id : runs) states_.push_back({std::move(id), 1});
  }

  void Start() {
    chains_ = states_.size();
    for (size_t i = 0; i < states_.size(); ++i) SubmitNext(i);
  }

  // Blocks until `n` more transitions were acknowledged since the last call.
  void WaitFor(uint64_t n) {
    const uint64_t target = target_.fetch_add(n) + n;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_.load() >= target || !error_.ok(); });
  }

  // Ends every run's chain and waits until none has a transition in flight.
  void Stop() {
    stopping_ = true;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return chains_.load() == 0; });
  }

  const Status& error() const { return error_; }

 private:
  struct RunState {
    RunId id;
    uint64_t next_seq;
  };

  void SubmitNext(size_t i) {
    RunState& run = states_[i];
    Transition t;
    t.run_id = run.id;
    t.expected_next_seq = run.next_seq;
    t.events.push_back(NewEvent{"/do/1/checkEligibility", TypicalBody(run.next_seq)});
    t.header = RunningHeader();
    Status s = store_.Submit(std::move(t), [this, i](Result<storage::AppendResult> r) {
      if (!r.ok()) {
        EndChain(r.status());
        return;
      }
      states_[i].next_seq = r->next_seq;
      const uint64_t done = done_.fetch_add(1) + 1;
      if (stopping_) {
        EndChain(Status::Ok());
        return;
      }
      pool_.Post([this, i] { SubmitNext(i); });
      if (done >= target_.load()) {
        std::lock_guard lock(mu_);
        cv_.notify_all();
      }
    });
    if (!s.ok()) EndChain(s);
  }

  void EndChain(const Status& s) {
    std::lock_guard lock(mu_);
    if (error_.ok() && !s.ok()) error_ = s;
    chains_.fetch_sub(1);
    cv_.notify_all();
  }

  Store& store_;
  WorkerPool& pool_;
  std::vector<RunState> states_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> chains_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> target_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  Status error_;
};

void BM_SyncedTransitions(benchmark::State& state) {
  const size_t run_count = static_cast<size_t>(state.range(0));
  const double ceiling = MeasureRawSyncedWrites(TypicalEventBytes());
  SystemClock clock;
  Random rng(42);
  ScratchDir dir("store");
  auto store = OpenStore(dir.path(), Durability::kSync, clock);
  std::vector<RunId> runs;
  for (size_t i = 0; i < run_count; ++i) {
    Transition t;
    t.run_id = RunId::Generate(clock.NowNanos(), rng);
    runs.push_back(t.run_id);
    t.events.push_back(NewEvent{"", StartBody()});
    t.header = RunningHeader();
    if (!store->Append(std::move(t)).ok()) std::abort();
  }
  WorkerPool pool(2);  // the engine's pool on the 2-core target machine
  ClosedLoop loop(*store, pool, runs);
  loop.Start();
  loop.WaitFor(run_count);  // warm up
  const auto groups_before = store->stats().commit_groups;
  const auto start = std::chrono::steady_clock::now();
  uint64_t transitions = 0;
  for (auto _ : state) {
    loop.WaitFor(run_count);
    transitions += run_count;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto groups = store->stats().commit_groups - groups_before;
  loop.Stop();
  if (!loop.error().ok()) state.SkipWithError(loop.error().ToString().c_str());
  state.SetItemsProcessed(static_cast<int64_t>(transitions));
  state.counters["events_per_group"] =
      groups > 0 ? static_cast<double>(transitions) / static_cast<double>(groups) : 0;
  SetRatio(state, static_cast<double>(transitions) / seconds, ceiling);
  if (!store->Close().ok()) std::abort();
}
BENCHMARK(BM_SyncedTransitions)
    ->ArgName("runs")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->UseRealTime()
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond);

constexpr uint64_t kScanEvents = 200'000;

// Raw ceiling as the issue defines it: a plain RocksDB (default options) holding the same
// number of values of the same size under keys of the same shape, flushed, fully scanned.
double MeasureRawScanDefaultDb(size_t event_bytes, uint64_t* checksum) {
  ScratchDir dir("raw-scan");
  auto db = OpenRaw(dir.path());
  const std::string value(event_bytes, 'v');
  std::string prefix = "01JBENCHRUN000000000000000";
  prefix.push_back('\0');
  for (uint64_t i = 0; i < kScanEvents;) {
    rocksdb::WriteBatch batch;
    for (size_t j = 0; j < 1000; ++j, ++i) {
      std::string key = prefix;
      storage::keys::AppendBigEndian64(&key, i);
      batch.Put(key, value);
    }
    if (!db->Write(rocksdb::WriteOptions(), &batch).ok()) std::abort();
  }
  if (!db->Flush(rocksdb::FlushOptions()).ok()) std::abort();
  uint64_t events = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < kCeilingSeconds) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      *checksum += it->key().size() + static_cast<unsigned char>(it->value()[0]);
      ++events;
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return static_cast<double>(events) / elapsed;
}

// Raw ceiling: a plain RocksDB iterator over the very same data -- the store's `events`
// family, opened with the options the store persisted -- touching each key and value.
double MeasureRawScanOwnData(const std::string& store_dir, const RunId& run, uint64_t* checksum) {
  RawStoreEvents raw(store_dir);
  const std::string prefix = storage::keys::EventPrefix(run);
  const std::string end = storage::keys::EventPrefixEnd(run);
  uint64_t events = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < kCeilingSeconds) {
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    ro.readahead_size = 1 << 20;
    std::unique_ptr<rocksdb::Iterator> it(raw.db()->NewIterator(ro, raw.events()));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      *checksum += it->key().size() + static_cast<unsigned char>(it->value()[0]);
      ++events;
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return static_cast<double>(events) / elapsed;
}

// Writes one run of kScanEvents typical events and closes the store.
RunId PopulateScanRun(const std::string& dir, const Clock& clock) {
  Random rng(7);
  auto store = OpenStore(dir, Durability::kBuffered, clock);
  const RunId run = RunId::Generate(clock.NowNanos(), rng);
  uint64_t next = 0;
  while (next < kScanEvents) {
    Transition t;
    t.run_id = run;
    t.expected_next_seq = next;
    t.header = RunningHeader();
    for (size_t j = 0; j < 1000; ++j) {
      t.events.push_back(next == 0 && j == 0 ? NewEvent{"", StartBody()}
                                             : NewEvent{"/do/1/check", TypicalBody(next + j)});
    }
    auto r = store->Append(std::move(t));
    if (!r.ok()) std::abort();
    next = r->next_seq;
  }
  if (!store->Close().ok()) std::abort();
  return run;
}

void BM_HistoryScan(benchmark::State& state) {
  SystemClock clock;
  ScratchDir dir("scan");
  const RunId run = PopulateScanRun(dir.path(), clock);
  uint64_t checksum = 0;
  const double ceiling = MeasureRawScanDefaultDb(TypicalEventBytes(), &checksum);
  const double own_data_ceiling = MeasureRawScanOwnData(dir.path(), run, &checksum);
  StoreOptions options;
  options.clock = &clock;
  auto opened = Store::Open(dir.path(), options);
  if (!opened.ok()) std::abort();
  auto store = std::move(opened).value();
  uint64_t events = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Status s = store->ScanHistory(run, 0, [&](const storage::StoredEvent& e) {
      checksum += e.event.seq.value();
      ++events;
      return true;
    });
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(static_cast<int64_t>(events));
  const double per_s = static_cast<double>(events) / seconds;
  SetRatio(state, per_s, ceiling);
  state.counters["own_data_ceiling_per_s"] = own_data_ceiling;
  state.counters["own_data_ratio"] = per_s / own_data_ceiling;
}
BENCHMARK(BM_HistoryScan)->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMillisecond);

void BM_EncodeEvent(benchmark::State& state) {
  const double ceiling = MeasureRawSyncedWrites(TypicalEventBytes());
  const Event e = TypicalEvent();
  std::string out;
  for (auto _ : state) {
    if (!storage::EncodeEvent(e, &out).ok()) std::abort();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(out.size());
  state.counters["ceiling_ns_per_event"] = 1e9 / ceiling;
}
BENCHMARK(BM_EncodeEvent);

void BM_DecodeEvent(benchmark::State& state) {
  const double ceiling = MeasureRawSyncedWrites(TypicalEventBytes());
  auto bytes = storage::EncodeEvent(TypicalEvent());
  if (!bytes.ok()) std::abort();
  // Decode from an odd offset: stored values are not aligned.
  std::string shifted = " " + *bytes;
  const std::string_view view = std::string_view(shifted).substr(1);
  for (auto _ : state) {
    auto e = storage::DecodeEvent(view);
    if (!e.ok()) std::abort();
    benchmark::DoNotOptimize(e->seq);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ceiling_ns_per_event"] = 1e9 / ceiling;
}
BENCHMARK(BM_DecodeEvent);

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
