// engine_kill_child: the engine process tests/crash/engine_kill_test.cc SIGKILLs.
//
//   engine_kill_child DIR SINK_URL SEED TAG NEW_RUNS kill|final
//
// Opens an Engine (Durability::kSync) on DIR with the order workflow's write tools (executor
// "http", idempotent, POST to SINK_URL/sink/<tool>) -- which resumes every run an earlier
// child left unfinished --, applies the workflow, starts NEW_RUNS runs
// with ids TAG-0 .. TAG-<NEW_RUNS-1>, and drives every run until none is active.
//
// It writes to stdout, one write(2) per line (below PIPE_BUF, never torn):
//   "open"              Engine::Open returned (the store exists and is stamped);
//   "started ID"        only after Engine::Start returned ok: the start is acknowledged;
//   "idle"              no run is active any more;
//   "stuck ID STATUS W" (final) a run that is not terminal and that the engine will not
//                       finish by itself (W: what it waits on).
// Engine logs go to stderr.
//
// kill: after "idle" it waits to be killed. final: it closes the engine and exits 0 after
// "idle", or exits 5 after the "stuck" lines when runs do not finish within a deadline.
// Other exit statuses: 2 the engine did not open, 3 an engine call failed, 4 bad arguments.
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/random.h"
#include "engine/core/engine.h"
#include "tests/crash/order_workflow.h"
#include "tests/support/policies.h"

namespace cairn::crash {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Far beyond the sink's longest delay (250 ms): a call never times out in this test.
constexpr uint64_t kToolTimeoutMs = 30'000;
// How long "final" waits for every run to finish (sanitizer builds are slow).
constexpr milliseconds kFinalDeadline{180'000};
// A killed child is normally dead within a second; this only bounds a forgotten one.
constexpr milliseconds kKillModeDeadline{600'000};

enum class Mode : uint8_t { kKill, kFinal };

struct Args {
  std::string dir;
  std::string sink_url;
  uint64_t seed = 0;
  std::string tag;
  int new_runs = 0;
  Mode mode = Mode::kKill;
};

[[noreturn]] void Die(int code, const std::string& what) {
  std::fprintf(stderr, "engine_kill_child[%d]: %s\n", static_cast<int>(getpid()), what.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

// Writes a line to stdout (for the test) and to the log (for a person reading it).
void Say(const std::string& text) {
  spdlog::info("child: {}", text);
  const std::string line = text + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = write(STDOUT_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die(3, std::string("write to stdout: ") + std::strerror(errno));
    p += n;
    left -= static_cast<size_t>(n);
  }
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

Args ParseArgs(int argc, char** argv) {
  if (argc != 7) Die(4, "usage: engine_kill_child DIR SINK_URL SEED TAG NEW_RUNS kill|final");
  Args a;
  a.dir = argv[1];
  a.sink_url = argv[2];
  a.tag = argv[4];
  const std::string_view mode = argv[6];
  if (!ParseNumber(argv[3], &a.seed)) Die(4, "bad SEED");
  if (!ParseNumber(argv[5], &a.new_runs) || a.new_runs < 0 || a.new_runs > 1000) {
    Die(4, "bad NEW_RUNS (0..1000)");
  }
  if (mode == "kill") {
    a.mode = Mode::kKill;
  } else if (mode == "final") {
    a.mode = Mode::kFinal;
  } else {
    Die(4, "the mode must be kill or final");
  }
  if (!RunId::Parse(a.tag + "-0").ok()) Die(4, "TAG must be run id characters");
  return a;
}

void RegisterTools(engine::ToolCatalog& catalog, const std::string& sink_url) {
  for (std::string_view name : kTools) {
    engine::ToolSpec spec;
    spec.name = std::string(name);
    spec.description = "crash test sink: " + spec.name;
    spec.effect = storage::EffectKind::kWrite;
    spec.risk = storage::RiskLevel::kMedium;
    spec.idempotent = true;
    spec.executor = "http";
    spec.config =
        Json{{"method", "post"},
             {"endpoint", sink_url + "/sink/" + spec.name.substr(spec.name.find('.') + 1)}};
    spec.timeout_ms = kToolTimeoutMs;
    Status st = catalog.Register(std::move(spec));
    if (!st.ok()) Die(3, "RegisterTool " + std::string(name) + ": " + st.ToString());
  }
}

void StartRuns(engine::Engine& engine, const Args& args) {
  Random random(args.seed);
  for (int i = 0; i < args.new_runs; ++i) {
    const RunId id = RunId::Parse(args.tag + "-" + std::to_string(i)).value();
    Json items = Json::array();
    const int64_t count = random.Range(kItemsMin, kItemsMax);
    for (int64_t k = 0; k < count; ++k) items.push_back("item-" + std::to_string(k));
    engine::StartRequest request;
    request.workflow = std::string(kWorkflow);
    request.input = Json{{"order", id.str()}, {"items", std::move(items)}};
    request.run_id = id;
    request.started_by = {"engine_kill_child", "test"};
    auto started = engine.Start(std::move(request));
    if (!started.ok()) Die(3, "Start " + id.str() + ": " + started.status().ToString());
    Say("started " + started->run_id.str());
  }
}

// Every non-terminal run, in id order.
std::vector<storage::RunSummary> ActiveRuns(engine::Engine& engine) {
  std::vector<storage::RunSummary> runs;
  std::string after;
  for (;;) {
    auto page = engine.store().ListActiveRuns(after, limits::list_runs_max);
    if (!page.ok()) Die(3, "ListActiveRuns: " + page.status().ToString());
    if (page->empty()) return runs;
    after = page->back().run_id.str();
    runs.insert(runs.end(), page->begin(), page->end());
  }
}

// Waits until no run is active. Returns the runs that are still not terminal at the
// deadline or that wait on something only the outside world could give (nothing in this
// workflow does), as "ID STATUS WAITING_ON".
std::vector<std::string> DriveToIdle(engine::Engine& engine, milliseconds budget) {
  const auto deadline = SteadyClock::now() + budget;
  auto left = [&] {
    return std::max(milliseconds(1),
                    std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()));
  };
  // Errors here are only "deadline exceeded": the Wait loop below tells which runs.
  static_cast<void>(engine.RunUntilIdle(left()));
  for (;;) {
    std::vector<storage::RunSummary> active = ActiveRuns(engine);
    if (active.empty()) return {};
    std::vector<std::string> stuck;
    for (const storage::RunSummary& run : active) {
      auto info = engine.Wait(run.run_id, left());
      if (info.ok() && storage::IsTerminal(info->header.status)) continue;
      auto now = engine.Describe(run.run_id);
      std::string line = run.run_id.str();
      if (now.ok()) {
        line += " " + std::string(storage::Name(now->header.status)) + " " +
                (now->waiting_on.empty() ? "-" : now->waiting_on);
      } else {
        line += " ? " + now.status().ToString();
      }
      stuck.push_back(std::move(line));
    }
    // A run that Wait gave back unfinished before the deadline waits on the outside world.
    if (!stuck.empty() && (SteadyClock::now() >= deadline || stuck.size() == active.size())) {
      return stuck;
    }
  }
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  // Never outlive the test that started us, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) Die(4, "parent already gone");
  spdlog::set_default_logger(spdlog::stderr_logger_mt("engine_kill_child"));
  std::fprintf(stderr, "engine_kill_child[%d]: tag %s, %d new runs, %s\n",
               static_cast<int>(getpid()), args.tag.c_str(), args.new_runs,
               args.mode == Mode::kKill ? "kill" : "final");

  SystemClock clock;
  engine::EngineOptions options;
  options.policy = cairn::testing::AllowAllPolicy();
  // Before Open: Open resumes runs at once, and they may call these tools.
  RegisterTools(options.tools, args.sink_url);
  options.data_dir = args.dir;
  options.durability = storage::Durability::kSync;
  options.clock = &clock;
  options.threads = 2;
  options.timer_poll = milliseconds(100);
  options.owner_description = "engine_kill_child " + args.tag;
  auto opened = engine::Engine::Open(std::move(options));
  if (!opened.ok()) Die(2, "open " + args.dir + ": " + opened.status().ToString());
  engine::Engine& engine = **opened;
  Say("open");
  auto applied = engine.ApplyDefinition(OrderWorkflowYaml(), "order.yaml");
  if (!applied.ok()) Die(3, "ApplyDefinition: " + applied.status().ToString());

  StartRuns(engine, args);
  const std::vector<std::string> stuck =
      DriveToIdle(engine, args.mode == Mode::kFinal ? kFinalDeadline : kKillModeDeadline);
  for (const std::string& line : stuck) Say("stuck " + line);
  if (!stuck.empty() && args.mode == Mode::kFinal) Die(5, "runs did not finish");
  Say("idle");
  if (args.mode == Mode::kKill) {
    for (;;) pause();  // the parent kills us
  }
  Status closed = engine.Close();
  if (!closed.ok()) Die(3, "Close: " + closed.ToString());
  return 0;
}

}  // namespace
}  // namespace cairn::crash

int main(int argc, char** argv) { return cairn::crash::Main(argc, argv); }
