// Replay throughput, beside the raw RocksDB scan ceiling measured in the same run.
//
// The runs are made by the real engine (buffered durability) in a scratch store, then the
// engine is closed and the store reopened read-only, as `cairn replay` opens it.
//
//   BM_Replay/W/runs:N/jobs:J   BatchReplayer over all N runs of workflow W on J threads
//       (histories read with one iterator, as `cairn replay --all` reads them; definition
//       caches and jq programs warmed by one pass before timing, as they are after the
//       first runs of `cairn replay --all`). The ceiling is a single-thread scan: compare
//       it with jobs:1. Every event is read, decoded,
//       re-produced by the interpreter and compared. Figures: events_per_s (recorded
//       events checked), runs_per_s; the ceiling: a full scan of a plain RocksDB (default
//       options) holding as many values of the same average size (ceiling_per_s, ratio);
//       the stricter own-data ceiling: a raw iterator over the store's own `events` family,
//       same data, same table options (own_data_ceiling_per_s, own_data_ratio).
//   BM_ReplayCli/W/runs:N   `cairn --data DIR -o json replay --all` in a child process on
//       the same kind of store: what a user runs, process start, store open, definition
//       load and jq compiles included. events_per_s from the child's wall time,
//       cli_events_per_s as the command reports it (its replay loop, compiles included);
//       one_run_ms: `cairn replay RUN` of a single run, almost all of it start-up.
//
// Workflows: `refund-triage` (engine_bench's 5-task back-office workflow: set, a C++ read
// tool, switch, set) and `plan-change` (examples/plan-change: three reads, a jq shortlist,
// an agent decision by the example's scripted planner, a policy verdict on a write, an
// approval above 200 a month resolved by an operator, a try/catch; the example's policy
// with its budgets). Tools are C++ stand-ins answering like the example's billing.py.
//
// Data goes to $CAIRN_BENCH_DIR (default: the system temp directory).
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "agent/config.h"
#include "base/clock.h"
#include "bench/bench_support.h"
#include "bench/triage_workflow.h"
#include "engine/core/engine.h"
#include "policy/policy.h"
#include "replay/replay_runs.h"
#include "replay/replayer.h"
#include "storage/keys.h"
#include "storage/store.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRefundTriage = bench::kTriageWorkflow;

enum class Workflow { kRefundTriage = 0, kPlanChange = 1 };

const char* WorkflowName(Workflow w) {
  return w == Workflow::kRefundTriage ? "refund-triage" : "plan-change";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ExampleFile(const std::string& name) {
  return std::string(CAIRN_SOURCE_DIR) + "/examples/plan-change/" + name;
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, r.status().ToString().c_str());
    std::abort();
  }
  return std::move(r).value();
}

void Must(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::abort();
  }
}

// ---------------------------------------------------------------------------------------
// The plan-change example's billing service, in C++ (examples/plan-change/tools/billing.py
// over billing.json, without the ledger): account "acct-<i>" is synthetic, so that runs
// take every path of the workflow (a change allowed by the policy, one needing approval,
// no change, no plan that fits).

const Json& Plans() {
  static const Json plans = Must(ParseJson(ReadFile(ExampleFile("billing.json")), "billing.json"),
                                 "billing.json")["plans"];
  return plans;
}

Json Account(const std::string& account_id) {
  const uint64_t i = std::strtoull(account_id.c_str() + std::min<size_t>(account_id.size(), 5),
                                   nullptr, 10);
  static const char* kPlanIds[] = {"starter", "team", "business"};
  return Json{{"subscription_id", "sub_" + account_id},
              {"plan", kPlanIds[i % 3]},
              {"seats", 1 + i % 7},
              {"limits",
               {{"seats_max", 50},
                {"self_serve_plans", {"starter", "team", "business"}},
                {"monthly_spend_max", 1500}}}};
}

void RegisterBillingTools(engine::ToolCatalog& tools) {
  auto spec = [](const char* name, storage::EffectKind effect, storage::RiskLevel risk) {
    engine::ToolSpec s;
    s.name = name;
    s.effect = effect;
    s.risk = risk;
    s.idempotent = true;
    return s;
  };
  using storage::EffectKind;
  using storage::RiskLevel;
  Must(tools.Register(spec("billing.get_subscription", EffectKind::kRead, RiskLevel::kLow),
                      [](const engine::ToolRequest& r) -> Result<Json> {
                        const std::string id = r.arguments.value("account_id", "");
                        Json a = Account(id);
                        int64_t price = 0;
                        for (const Json& p : Plans()) {
                          if (p["id"] == a["plan"]) {
                            price = p["price_per_seat"].get<int64_t>() * a["seats"].get<int64_t>();
                          }
                        }
                        return Json{{"account_id", id},
                                    {"subscription_id", a["subscription_id"]},
                                    {"plan", a["plan"]},
                                    {"seats", a["seats"]},
                                    {"monthly_price", price},
                                    {"currency", "EUR"}};
                      }),
       "register");
  Must(tools.Register(spec("billing.get_account_limits", EffectKind::kRead, RiskLevel::kLow),
                      [](const engine::ToolRequest& r) -> Result<Json> {
                        const std::string id = r.arguments.value("account_id", "");
                        Json limits = Account(id)["limits"];
                        limits["account_id"] = id;
                        return limits;
                      }),
       "register");
  Must(tools.Register(spec("billing.list_plans", EffectKind::kRead, RiskLevel::kLow),
                      [](const engine::ToolRequest&) -> Result<Json> {
                        return Json{{"currency", "EUR"}, {"plans", Plans()}};
                      }),
       "register");
  Must(tools.Register(spec("billing.change_plan", EffectKind::kWrite, RiskLevel::kHigh),
                      [](const engine::ToolRequest& r) -> Result<Json> {
                        std::string key = r.idempotency_key;
                        std::replace(key.begin(), key.end(), '#', '_');
                        return Json{{"confirmation", "chg_" + key},
                                    {"subscription_id", r.arguments.value("subscription_id", "")},
                                    {"plan", r.arguments.value("plan", "")},
                                    {"seats", r.arguments.value("seats", 0)},
                                    {"monthly_price", r.arguments.value("monthly_price", 0)},
                                    {"currency", "EUR"}};
                      }),
       "register");
}

// ---------------------------------------------------------------------------------------
// Producing the runs.

Json RunInput(Workflow w, size_t i) {
  if (w == Workflow::kRefundTriage) {
    return Json{{"ticket", "T-" + std::to_string(i)}, {"amount", static_cast<int>(i % 200)}};
  }
  // Team sizes 1..60: starter, team or business fits (some above 200 a month: an
  // approval), and above 50 seats nothing fits.
  return Json{{"account_id", "acct-" + std::to_string(i)},
              {"team_size", static_cast<int>(1 + (i * 7) % 60)}};
}

// Answers every approval the engine waits on: approve three in four, reject the rest.
void AnswerApprovals(engine::Engine& engine) {
  std::string after;
  for (;;) {
    auto page =
        Must(engine.ListRuns(storage::RunStatus::kWaiting, after, 1000), "list waiting runs");
    if (page.empty()) return;
    for (const storage::RunSummary& s : page) {
      after = s.run_id.str();
      const bool approve = s.run_id.str().back() % 4 != 0;
      Status st = engine.ResolveApproval(
          s.run_id, {approve, "", approve ? "fits the budget" : "not this quarter",
                     {"alice", "approver"}});
      static_cast<void>(st);  // a run waiting on something else: left as it is
    }
  }
}

// Flushes every column family of the closed store in `data_dir` to table files: a store that
// has been running for a while holds its history there, not in a write-ahead log that a
// read-only open would replay into a memtable.
void FlushStore(const std::string& data_dir) {
  rocksdb::ConfigOptions config;
  rocksdb::DBOptions db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  const std::string path = data_dir + "/db";
  if (!rocksdb::LoadLatestOptions(config, path, &db_options, &families).ok()) std::abort();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(db_options, path, families, &handles, &raw).ok()) std::abort();
  if (!raw->Flush(rocksdb::FlushOptions(), handles).ok()) std::abort();
  for (auto* h : handles) raw->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  if (!raw->Close().ok()) std::abort();
  delete raw;
}

// Makes `runs` runs of `w` with the real engine in `data_dir`, drives them to the end,
// closes the engine. Aborts on failure (benchmarks have no error path).
void ProduceRuns(Workflow w, size_t runs, const std::string& data_dir) {
  SystemClock clock;
  engine::EngineOptions options;
  options.data_dir = data_dir;
  options.clock = &clock;
  options.durability = storage::Durability::kBuffered;
  options.threads = 2;
  if (w == Workflow::kRefundTriage) {
    options.policy =
        Must(policy::Policy::Load("version: 1\ndefaults: {read: allow, write: allow}\n",
                                  "allow-all"),
             "policy");
    Must(bench::RegisterTriageTools(options.tools), "register");
  } else {
    options.policy = Must(policy::Policy::LoadFile(ExampleFile("policy.yaml")), "policy");
    options.agents = Must(agent::AgentRegistry::LoadFile(ExampleFile("agents.yaml")), "agents");
    RegisterBillingTools(options.tools);
  }
  auto engine = Must(engine::Engine::Open(std::move(options)), "engine open");
  const std::string text =
      w == Workflow::kRefundTriage ? std::string(kRefundTriage) : ReadFile(ExampleFile("workflow.yaml"));
  const engine::WorkflowRef ref = Must(engine->ApplyDefinition(text, "workflow.yaml"), "apply");
  constexpr size_t kChunk = 200;  // started, then driven, so the run queue never fills
  for (size_t first = 0; first < runs; first += kChunk) {
    for (size_t i = first; i < std::min(runs, first + kChunk); ++i) {
      engine::StartRequest request;
      request.workflow = ref.namespace_ + "/" + ref.name;
      request.input = RunInput(w, i);
      Must(engine->Start(std::move(request)), "start");
    }
    Must(engine->RunUntilIdle(600s), "run");
    AnswerApprovals(*engine);
    Must(engine->RunUntilIdle(600s), "run");
  }
  Must(engine->Close(), "engine close");
  FlushStore(data_dir);
}

std::unique_ptr<storage::Store> OpenReadOnly(const std::string& data_dir, const Clock& clock) {
  storage::StoreOptions options;
  options.clock = &clock;
  options.read_only = true;
  return Must(storage::Store::Open(data_dir, options), "store open");
}

std::vector<RunId> AllRuns(const storage::Store& store) {
  std::vector<RunId> ids;
  std::string after;
  for (;;) {
    auto page = Must(store.ListRuns(std::nullopt, after, 1000), "list runs");
    if (page.empty()) return ids;
    for (const auto& s : page) ids.push_back(s.run_id);
    after = ids.back().str();
  }
}

// ---------------------------------------------------------------------------------------
// Ceilings.

struct OwnScan {
  double events_per_s = 0;
  uint64_t events = 0;       // events in the family (one pass)
  uint64_t value_bytes = 0;  // their encoded size (one pass)
};

// A raw iterator over the store's whole `events` family, opened with the options the
// store persisted: the same events, the same layout; touches every key and value.
OwnScan MeasureRawScanOwnData(const std::string& data_dir, uint64_t* checksum) {
  bench::RawStoreEvents raw(data_dir);
  OwnScan scan;
  uint64_t events = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  for (int pass = 0; elapsed < bench::kCeilingSeconds; ++pass) {
    rocksdb::ReadOptions ro;
    ro.readahead_size = 1 << 20;
    std::unique_ptr<rocksdb::Iterator> it(raw.db()->NewIterator(ro, raw.events()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      *checksum += it->key().size() + static_cast<unsigned char>(it->value()[0]);
      ++events;
      if (pass == 0) {
        ++scan.events;
        scan.value_bytes += it->value().size();
      }
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  scan.events_per_s = static_cast<double>(events) / elapsed;
  return scan;
}

// The ceiling as store_bench's BM_HistoryScan defines it: a plain RocksDB (default
// options) holding `events` values of `event_bytes` under event-shaped keys, flushed,
// fully scanned.
double MeasureRawScanDefaultDb(uint64_t events_total, size_t event_bytes, uint64_t* checksum) {
  bench::ScratchDir dir("raw-replay-scan");
  auto db = bench::OpenRaw(dir.path());
  const std::string value(event_bytes, 'v');
  for (uint64_t i = 0; i < events_total;) {
    rocksdb::WriteBatch batch;
    for (size_t j = 0; j < 1000 && i < events_total; ++j, ++i) {
      // Runs of ~16 events under run-id-shaped prefixes, like the store's keys.
      std::string key = "01JBENCHRUN" + std::to_string(1000000000000000 + i / 16);
      key.push_back('\0');
      storage::keys::AppendBigEndian64(&key, i % 16);
      batch.Put(key, value);
    }
    if (!db->Write(rocksdb::WriteOptions(), &batch).ok()) std::abort();
  }
  if (!db->Flush(rocksdb::FlushOptions()).ok()) std::abort();
  uint64_t events = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < bench::kCeilingSeconds) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      *checksum += it->key().size() + static_cast<unsigned char>(it->value()[0]);
      ++events;
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return static_cast<double>(events) / elapsed;
}

struct Ceilings {
  double plain_per_s = 0;
  double own_data_per_s = 0;
  double event_bytes = 0;
};

Ceilings MeasureCeilings(const std::string& data_dir) {
  uint64_t checksum = 0;
  Ceilings c;
  const OwnScan own = MeasureRawScanOwnData(data_dir, &checksum);
  c.own_data_per_s = own.events_per_s;
  c.event_bytes = own.events == 0 ? 0 : static_cast<double>(own.value_bytes) / own.events;
  c.plain_per_s = MeasureRawScanDefaultDb(own.events, static_cast<size_t>(c.event_bytes), &checksum);
  benchmark::DoNotOptimize(checksum);
  return c;
}

void SetCeilings(benchmark::State& state, double events_per_s, const Ceilings& c) {
  bench::SetRatio(state, events_per_s, c.plain_per_s);
  state.counters["own_data_ceiling_per_s"] = c.own_data_per_s;
  state.counters["own_data_ratio"] = events_per_s / c.own_data_per_s;
  state.counters["event_bytes"] = c.event_bytes;
}

// ---------------------------------------------------------------------------------------
// Benchmarks.

// Replays every run once; false (and the state skipped) on a divergence or error.
bool ReplayAll(benchmark::State& state, replay::BatchReplayer& replayer,
               const std::vector<RunId>& runs, uint64_t* events) {
  bool ok = true;
  replayer.Replay(runs, [&](size_t i, Result<replay::ReplayResult> r) {
    if (!ok) return;
    if (!r.ok()) {
      state.SkipWithError(("replay " + runs[i].str() + ": " + r.status().ToString()).c_str());
      ok = false;
    } else if (r->divergence) {
      state.SkipWithError(replay::DescribeDivergence(*r->divergence).c_str());
      ok = false;
    } else {
      *events += r->events;
    }
  });
  return ok;
}

void BM_Replay(benchmark::State& state, Workflow workflow) {
  const auto run_count = static_cast<size_t>(state.range(0));
  const auto jobs = static_cast<size_t>(state.range(1));
  bench::ScratchDir dir(std::string("replay-") + WorkflowName(workflow));
  const std::string data_dir = dir.path() + "/data";
  ProduceRuns(workflow, run_count, data_dir);
  const Ceilings ceilings = MeasureCeilings(data_dir);
  SystemClock clock;
  auto store = OpenReadOnly(data_dir, clock);
  const std::vector<RunId> runs = AllRuns(*store);
  replay::BatchReplayer replayer(*store, {}, jobs);
  uint64_t warm_events = 0;
  if (!ReplayAll(state, replayer, runs, &warm_events)) return;  // warms caches, checks all
  uint64_t events = 0, replayed_runs = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (!ReplayAll(state, replayer, runs, &events)) return;
    replayed_runs += runs.size();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.counters["runs_per_s"] = static_cast<double>(replayed_runs) / seconds;
  state.counters["events_per_run"] = static_cast<double>(warm_events) / runs.size();
  SetCeilings(state, static_cast<double>(events) / seconds, ceilings);
}
// Fixed iterations (about 2 s each): the runs are made once per benchmark, not once per
// iteration-count estimate. jobs:1 replays on one thread, comparable with the ceiling (a
// single-thread scan); jobs:2 on two threads plus the reading one.
BENCHMARK_CAPTURE(BM_Replay, refund_triage, Workflow::kRefundTriage)
    ->ArgNames({"runs", "jobs"})
    ->Args({2000, 1})
    ->Args({2000, 2})
    ->Iterations(25)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Replay, plan_change, Workflow::kPlanChange)
    ->ArgNames({"runs", "jobs"})
    ->Args({1000, 1})
    ->Args({1000, 2})
    ->Iterations(6)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// `cairn --data DIR -o json replay --all`; the summary line's numbers.
void BM_ReplayCli(benchmark::State& state, Workflow workflow) {
  const auto run_count = static_cast<size_t>(state.range(0));
  bench::ScratchDir dir(std::string("replay-cli-") + WorkflowName(workflow));
  const std::string data_dir = dir.path() + "/data";
  ProduceRuns(workflow, run_count, data_dir);
  const Ceilings ceilings = MeasureCeilings(data_dir);
  const std::string command = std::string("'") + CAIRN_CLI_PATH + "' --data '" + data_dir +
                              "' -o json replay --all 2>&1";
  uint64_t events = 0, reported_rate_sum = 0, passes = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
      state.SkipWithError("popen");
      return;
    }
    std::string out;
    char buffer[4096];
    while (::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
    const int code = ::pclose(pipe);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const size_t line = out.rfind("{\"summary\"");
    if (code != 0 || line == std::string::npos) {
      state.SkipWithError(("cairn replay failed: " + out.substr(0, 400)).c_str());
      return;
    }
    const Json summary = Must(ParseJson(out.substr(line), "summary"), "summary")["summary"];
    if (summary["matched"].get<uint64_t>() != run_count) {
      state.SkipWithError(("not every run matched: " + out.substr(0, 400)).c_str());
      return;
    }
    events += summary["events"].get<uint64_t>();
    reported_rate_sum += summary["events_per_second"].get<uint64_t>();
    ++passes;
  }
  // One run alone: the start-up (store open, definition load, jq compiles) dominates.
  SystemClock clock;
  std::string first_run;
  {
    auto store = OpenReadOnly(data_dir, clock);
    first_run = AllRuns(*store).front().str();
  }
  const auto one_start = std::chrono::steady_clock::now();
  const int one_code =
      std::system((std::string("'") + CAIRN_CLI_PATH + "' --data '" + data_dir + "' replay " +
                   first_run + " > /dev/null 2>&1")
                      .c_str());
  const double one_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - one_start).count();
  if (one_code != 0) {
    state.SkipWithError("cairn replay RUN failed");
    return;
  }
  state.counters["one_run_ms"] = one_seconds * 1e3;
  state.counters["cli_events_per_s"] = static_cast<double>(reported_rate_sum) / passes;
  SetCeilings(state, static_cast<double>(events) / seconds, ceilings);
}
BENCHMARK_CAPTURE(BM_ReplayCli, refund_triage, Workflow::kRefundTriage)
    ->ArgName("runs")
    ->Arg(2000)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReplayCli, plan_change, Workflow::kPlanChange)
    ->ArgName("runs")
    ->Arg(1000)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
