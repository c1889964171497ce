// engine_kill_child: the engine process tests/crash/engine_kill_test.cc SIGKILLs.
//
//   engine_kill_child DIR SINK_URL SEED TAG NEW_RUNS GOVERNED_RUNS kill|final [OPTION...]
//     --answer-approvals       answer every pending approval this child finds
//     --kill-switches=N        engage the kill switch of up to N governed runs first
//     --die-after-approval=N   SIGKILL itself right after its N-th approval is acknowledged
//     --die-after-kill-switch  SIGKILL itself right after its first kill switch is
//                              acknowledged (the runs it covers are most likely not stopped
//                              yet: the next children must hold them back)
//
// Opens an Engine (Durability::kSync) with the write tools of both workflows (executor
// "http", idempotent, POST to SINK_URL/sink/<tool>), the crash policy and the "sink" agent
// (governed_workflow.h) -- which resumes every run an earlier child left unfinished --,
// applies both workflows, starts GOVERNED_RUNS governed runs TAG-g0 .. and NEW_RUNS order
// runs with ids TAG-0 .. TAG-<NEW_RUNS-1>, and drives every run until none is active or the
// only ones left wait on approvals this child does not answer.
//
// The "sink" agent POSTs each decision to SINK_URL/agent/ask with the decision key and
// TAG, and proposes the option the sink answers, with the usage the sink reports.
//
// With --kill-switches the engine opens without resuming runs, and before anything else
// the child engages the kill switch (scope: run) of up to N governed runs, picked at random
// among the active ones that have recorded no effect intent -- so no write of theirs can
// have been started by any engine before the switch was acknowledged.
//
// It writes to stdout, one write(2) per line (below PIPE_BUF, never torn):
//   "open"              Engine::Open returned (the store exists and is stamped);
//   "killswitch ID"     only after EngageKillSwitch returned ok: the switch is acknowledged;
//   "started ID"        only after Engine::Start returned ok: the start is acknowledged;
//   "awaiting ID A"     the first time this child sees run ID wait on approval A;
//   "approved ID A"     only after ResolveApproval returned ok (also "rejected ID A");
//   "idle"              no run is active any more, except runs waiting on approvals this
//                       child does not answer;
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

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/agent.h"
#include "agent/config.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/random.h"
#include "engine/core/engine.h"
#include "tests/crash/governed_workflow.h"
#include "tests/crash/order_workflow.h"

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
// One approval in this many is rejected.
constexpr uint64_t kRejectOneIn = 5;

enum class Mode : uint8_t { kKill, kFinal };

struct Args {
  std::string dir;
  std::string sink_url;
  uint64_t seed = 0;
  std::string tag;
  int new_runs = 0;
  int governed_runs = 0;
  Mode mode = Mode::kKill;
  bool answer_approvals = false;
  int kill_switches = 0;
  int die_after_approval = 0;  // 0: never
  bool die_after_kill_switch = false;
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
  if (argc < 8) {
    Die(4,
        "usage: engine_kill_child DIR SINK_URL SEED TAG NEW_RUNS GOVERNED_RUNS kill|final "
        "[--answer-approvals] [--kill-switches=N] [--die-after-approval=N] "
        "[--die-after-kill-switch]");
  }
  Args a;
  a.dir = argv[1];
  a.sink_url = argv[2];
  a.tag = argv[4];
  const std::string_view mode = argv[7];
  if (!ParseNumber(argv[3], &a.seed)) Die(4, "bad SEED");
  if (!ParseNumber(argv[5], &a.new_runs) || a.new_runs < 0 || a.new_runs > 1000) {
    Die(4, "bad NEW_RUNS (0..1000)");
  }
  if (!ParseNumber(argv[6], &a.governed_runs) || a.governed_runs < 0 || a.governed_runs > 1000) {
    Die(4, "bad GOVERNED_RUNS (0..1000)");
  }
  if (mode == "kill") {
    a.mode = Mode::kKill;
  } else if (mode == "final") {
    a.mode = Mode::kFinal;
  } else {
    Die(4, "the mode must be kill or final");
  }
  for (int i = 8; i < argc; ++i) {
    const std::string_view option = argv[i];
    auto number = [&](std::string_view prefix, int* out) {
      if (option.substr(0, prefix.size()) != prefix) return false;
      if (!ParseNumber(option.substr(prefix.size()), out) || *out < 0 || *out > 1000) {
        Die(4, "bad " + std::string(option));
      }
      return true;
    };
    if (option == "--answer-approvals") {
      a.answer_approvals = true;
    } else if (option == "--die-after-kill-switch") {
      a.die_after_kill_switch = true;
    } else if (!number("--kill-switches=", &a.kill_switches) &&
               !number("--die-after-approval=", &a.die_after_approval)) {
      Die(4, "unknown option " + std::string(option));
    }
  }
  if (!RunId::Parse(a.tag + "-g0").ok()) Die(4, "TAG must be run id characters");
  return a;
}

// The governed workflow's agent: asks the sink, which lives in the test and outlives every
// child, so that the test can count the asks of each decision key. Thread-safe (immutable).
class SinkAgent final : public agent::Agent {
 public:
  SinkAgent(std::string url, std::string tag)
      : name_(kSinkAgent), url_(std::move(url)), tag_(std::move(tag)) {}

  const std::string& name() const override { return name_; }
  std::string_view kind() const override { return "crash-sink"; }

  std::optional<agent::Proposal> Propose(agent::Session& session) override {
    session.SetModel("crash-sink");
    if (!session.BeginStep()) return std::nullopt;
    const agent::DecisionRequest& request = session.request();
    const Json ask{{"decision_key", request.decision_key},
                   {"run_id", request.run_id},
                   {"child", tag_},
                   {"options", request.options}};
    session.RecordRequest(ask);
    auto reply = session.io().PostJson(url_, {}, DumpJson(ask), session.Remaining());
    if (!reply.ok()) {
      session.Fail(agent::Reason::kAgentUnavailable, reply.status().ToString());
      return std::nullopt;
    }
    auto answer = ParseJson(reply->body, "the sink's answer");
    if (reply->status != 200 || !answer.ok() || !answer->is_object()) {
      session.Fail(
          agent::Reason::kAgentError,
          "the sink answered " + std::to_string(reply->status) + ": " + reply->body.substr(0, 200));
      return std::nullopt;
    }
    session.RecordResponse(*answer);
    const Json usage = answer->value("usage", Json::object());
    agent::Usage used;
    used.prompt_tokens = usage.value("prompt_tokens", uint64_t{0});
    used.completion_tokens = usage.value("completion_tokens", uint64_t{0});
    used.cost_micros = usage.value("cost_micros", int64_t{0});
    used.cost_known = true;
    used.calls = 1;
    if (!session.AddUsage(used)) return std::nullopt;
    return agent::Proposal{answer->value("option", ""), answer->value("rationale", ""),
                           std::nullopt};
  }

 private:
  const std::string name_;
  const std::string url_;
  const std::string tag_;
};

std::shared_ptr<agent::AgentRegistry> MakeAgents(const Args& args) {
  auto agents = std::make_shared<agent::AgentRegistry>();
  Status added =
      agents->Add(std::make_shared<SinkAgent>(args.sink_url + std::string(kAskPath), args.tag));
  if (!added.ok()) Die(3, "AgentRegistry::Add: " + added.ToString());
  agents->set_default_name(std::string(kSinkAgent));
  return agents;
}

void RegisterTools(engine::ToolCatalog& catalog, const std::string& sink_url) {
  std::vector<std::string_view> names(std::begin(kTools), std::end(kTools));
  names.push_back(kCommitTool);
  for (std::string_view name : names) {
    engine::ToolSpec spec;
    spec.name = std::string(name);
    spec.description = "crash test sink: " + spec.name;
    spec.effect = storage::EffectKind::kWrite;
    spec.risk = name == kCommitTool ? storage::RiskLevel::kHigh : storage::RiskLevel::kMedium;
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

void StartRun(engine::Engine& engine, const std::string& id_text, std::string_view workflow,
              Json input) {
  const RunId id = RunId::Parse(id_text).value();
  engine::StartRequest request;
  request.workflow = std::string(workflow);
  request.input = std::move(input);
  request.run_id = id;
  request.started_by = {"engine_kill_child", "test"};
  auto started = engine.Start(std::move(request));
  if (!started.ok()) Die(3, "Start " + id.str() + ": " + started.status().ToString());
  Say("started " + started->run_id.str());
}

// The governed runs first: their decisions then start early in the child's life, where
// most kills land.
void StartRuns(engine::Engine& engine, const Args& args) {
  Random random(args.seed);
  for (int i = 0; i < args.governed_runs; ++i) {
    const std::string id = args.tag + "-g" + std::to_string(i);
    StartRun(engine, id, kGovernedWorkflow,
             Json{{"order", id}, {"amount", random.Range(kAmountMin, kAmountMax)}});
  }
  for (int i = 0; i < args.new_runs; ++i) {
    const std::string id = args.tag + "-" + std::to_string(i);
    Json items = Json::array();
    const int64_t count = random.Range(kItemsMin, kItemsMax);
    for (int64_t k = 0; k < count; ++k) items.push_back("item-" + std::to_string(k));
    StartRun(engine, id, kWorkflow, Json{{"order", id}, {"items", std::move(items)}});
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

// Governed runs with no effect intent in their history: no engine can have started their
// write, so a kill switch engaged now must keep every write of theirs from happening. Those
// waiting on an approval first (`parked` of them).
std::vector<RunId> KillSwitchCandidates(engine::Engine& engine, size_t* parked) {
  std::vector<RunId> waiting, others;
  for (const storage::RunSummary& run : ActiveRuns(engine)) {
    auto header = engine.store().GetRun(run.run_id);
    if (!header.ok()) Die(3, "GetRun " + run.run_id.str() + ": " + header.status().ToString());
    if (header->workflow_namespace + "/" + header->workflow_name != kGovernedWorkflow) continue;
    bool wrote = false;
    Status scanned = engine.store().ScanHistory(run.run_id, 0, [&](const storage::StoredEvent& e) {
      wrote = std::holds_alternative<storage::EffectIntent>(e.event.body);
      return !wrote;
    });
    if (!scanned.ok()) Die(3, "ScanHistory " + run.run_id.str() + ": " + scanned.ToString());
    if (wrote) continue;
    (header->status == storage::RunStatus::kWaiting ? waiting : others).push_back(run.run_id);
  }
  *parked = waiting.size();
  waiting.insert(waiting.end(), others.begin(), others.end());
  return waiting;
}

// Half of the picks are among the runs parked on an approval (if any): when a later child
// answers that approval, the switch must stop the run rather than let its commit through.
void EngageKillSwitches(engine::Engine& engine, const Args& args, Random& random) {
  if (args.kill_switches == 0) return;
  size_t parked = 0;
  std::vector<RunId> candidates = KillSwitchCandidates(engine, &parked);
  for (int k = 0; k < args.kill_switches && !candidates.empty(); ++k) {
    const size_t pick =
        parked > 0 && random.OneIn(2) ? random.Uniform(parked) : random.Uniform(candidates.size());
    if (pick < parked) --parked;
    const RunId id = candidates[pick];
    candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(pick));
    engine::KillSwitch kill;
    kill.scope = engine::KillSwitch::Scope::kRun;
    kill.target = id.str();
    kill.reason = "crash test: engaged by child " + args.tag;
    kill.actor = {"engine_kill_child " + args.tag, "admin"};
    Status engaged = engine.EngageKillSwitch(std::move(kill)).status();
    if (!engaged.ok()) Die(3, "EngageKillSwitch " + id.str() + ": " + engaged.ToString());
    Say("killswitch " + id.str());
    if (args.die_after_kill_switch) ::raise(SIGKILL);
  }
}

// Reports the approvals runs wait on and, if this child answers them, answers them: most
// approved, one in kRejectOneIn rejected. Not thread-safe (the driving thread only).
class Approver {
 public:
  Approver(const Args& args, Random& random) : args_(args), random_(random) {}

  // True if the run may have moved on (it was answered, or it stopped meanwhile).
  bool Handle(engine::Engine& engine, const RunId& run, const engine::PendingApproval& approval) {
    const std::string what = run.str() + " " + approval.approval_id;
    if (seen_.insert(what).second) Say("awaiting " + what);
    if (!args_.answer_approvals) return false;
    const bool approve = !random_.OneIn(kRejectOneIn);
    engine::ApprovalAnswer answer;
    answer.approve = approve;
    answer.approval_id = approval.approval_id;
    answer.reason = "crash test, child " + args_.tag;
    answer.actor = {std::string(kApprover), "approver"};
    Status answered = engine.ResolveApproval(run, std::move(answer));
    // The run stopped meanwhile (its kill switch): nothing to answer any more.
    if (answered.code() == StatusCode::kFailedPrecondition) return true;
    if (!answered.ok()) Die(3, "ResolveApproval " + what + ": " + answered.ToString());
    Say((approve ? "approved " : "rejected ") + what);
    if (approve && ++approved_ == args_.die_after_approval) {
      // Right after the approval is durable, before its write has (most likely) started.
      ::raise(SIGKILL);
    }
    return true;
  }

 private:
  const Args& args_;
  Random& random_;
  std::set<std::string> seen_;
  int approved_ = 0;
};

// Waits until no run is active, answering approvals on the way (if this child answers
// them) as soon as a run asks: governed runs are waited on first. Returns the runs that are
// still not terminal at the deadline or that wait on something only the outside world
// could give -- other than an approval this child does not answer --, as
// "ID STATUS WAITING_ON".
std::vector<std::string> DriveToIdle(engine::Engine& engine, milliseconds budget,
                                     Approver& approver) {
  const auto deadline = SteadyClock::now() + budget;
  auto left = [&] {
    return std::max(milliseconds(1),
                    std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()));
  };
  for (;;) {
    // Resumes every run (the deferred ones, and all of them when the engine opened without
    // resuming) without waiting for any: the Wait loop below does.
    static_cast<void>(engine.RunUntilIdle(milliseconds(0)));
    std::vector<storage::RunSummary> active = ActiveRuns(engine);
    if (active.empty()) return {};
    std::stable_partition(active.begin(), active.end(), [](const storage::RunSummary& run) {
      return run.run_id.str().find("-g") != std::string::npos;  // governed: TAG-g<i>
    });
    std::vector<std::string> stuck;
    size_t parked = 0;  // on approvals this child leaves alone
    bool moved = false;
    for (const storage::RunSummary& run : active) {
      auto info = engine.Wait(run.run_id, left());
      if (info.ok() && storage::IsTerminal(info->header.status)) continue;
      if (info.ok() && info->approval) {
        if (approver.Handle(engine, run.run_id, *info->approval)) {
          moved = true;
        } else {
          ++parked;
        }
        continue;
      }
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
    if (moved && SteadyClock::now() < deadline) continue;
    // A run that Wait gave back unfinished before the deadline waits on the outside world
    // (or on an approval this child leaves alone: then it is not stuck).
    if (SteadyClock::now() >= deadline || stuck.size() + parked == active.size()) return stuck;
  }
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  // Never outlive the test that started us, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) Die(4, "parent already gone");
  spdlog::set_default_logger(spdlog::stderr_logger_mt("engine_kill_child"));
  std::fprintf(stderr,
               "engine_kill_child[%d]: tag %s, %d new runs, %d governed, %s%s, %d kill "
               "switches%s, die after approval %d\n",
               static_cast<int>(getpid()), args.tag.c_str(), args.new_runs, args.governed_runs,
               args.mode == Mode::kKill ? "kill" : "final",
               args.answer_approvals ? ", answering approvals" : "", args.kill_switches,
               args.die_after_kill_switch ? " (then die)" : "", args.die_after_approval);

  SystemClock clock;
  engine::EngineOptions options;
  auto policy = policy::Policy::Load(CrashPolicyYaml(), "crash-policy.yaml");
  if (!policy.ok()) Die(3, "the crash policy: " + policy.status().ToString());
  options.policy = *policy;
  options.agents = MakeAgents(args);
  // Before Open: Open resumes runs at once, and they may call these tools.
  RegisterTools(options.tools, args.sink_url);
  options.data_dir = args.dir;
  options.durability = storage::Durability::kSync;
  options.clock = &clock;
  options.threads = 2;
  options.timer_poll = milliseconds(100);
  options.owner_description = "engine_kill_child " + args.tag;
  // Kill switches are engaged before any run is resumed (see the top of the file).
  options.resume_on_open = args.kill_switches == 0;
  auto opened = engine::Engine::Open(std::move(options));
  if (!opened.ok()) Die(2, "open " + args.dir + ": " + opened.status().ToString());
  engine::Engine& engine = **opened;
  Say("open");
  Random random(args.seed ^ 0x9a7e5ull);
  EngageKillSwitches(engine, args, random);
  for (const auto& [text, name] : {std::pair{OrderWorkflowYaml(), "order.yaml"},
                                   std::pair{GovernedWorkflowYaml(), "governed.yaml"}}) {
    auto applied = engine.ApplyDefinition(text, name);
    if (!applied.ok())
      Die(3, "ApplyDefinition " + std::string(name) + ": " + applied.status().ToString());
  }

  StartRuns(engine, args);
  Approver approver(args, random);
  const std::vector<std::string> stuck =
      DriveToIdle(engine, args.mode == Mode::kFinal ? kFinalDeadline : kKillModeDeadline, approver);
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
