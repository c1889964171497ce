#include "tools/cairn/run_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/json.h"
#include "base/limits.h"
#include "engine/definition/duration.h"
#include "storage/event_json.h"
#include "tools/serve/run_view.h"

namespace cairn::cli {
namespace {

using serve::MatchesWorkflow;
using serve::ReadRunView;
using serve::RunView;
using serve::RunViewToJson;

using std::chrono::milliseconds;

constexpr size_t kListLimitDefault = 1000;
// `run list --workflow` filters run headers one by one; it stops after this many and says
// where to go on.
constexpr size_t kListScanMax = 1'000'000;
// --input / --data / --result: one JSON document, as large as a run's data may be.
constexpr size_t kArgumentBytesMax = limits::run_data_bytes_max;
// Text output shortens JSON values to this many bytes (-o json prints them whole).
constexpr size_t kDescribeValueBytesMax = 2000;
constexpr size_t kShowValueBytesMax = 80;
constexpr const char* kSignalTimeoutDefault = "30s";
// Steering commands with --timeout 0 still let the run reach a point where closing the
// engine cuts off no tool call (see Settle); at most this long.
constexpr milliseconds kSettleMax = std::chrono::seconds(60);

// ---- arguments ----

// A JSON argument: the text itself, `@FILE` (the file's contents) or `@-` (stdin).
Result<Json> ParseJsonArgument(const GlobalOptions& global, const std::string& text,
                               std::string_view flag) {
  if (text.empty() || text[0] != '@') return ParseJson(text, flag, kArgumentBytesMax);
  const std::string path = text.substr(1);
  std::string content;
  if (path == "-") {
    content.assign(std::istreambuf_iterator<char>(*global.in), std::istreambuf_iterator<char>());
    if (content.size() > kArgumentBytesMax) {
      return Status::InvalidArgument(std::string(flag) + " @-: more than " +
                                     std::to_string(kArgumentBytesMax) + " bytes on stdin");
    }
  } else {
    CAIRN_ASSIGN_OR_RETURN(content,
                           ReadTextFile(path, std::string(flag) + " file", kArgumentBytesMax));
  }
  return ParseJson(content, std::string(flag) + " " + text, kArgumentBytesMax);
}

Result<RunId> ParseRunArgument(const std::string& text) {
  auto run = RunId::Parse(text);
  if (!run.ok()) return run.status().WithContext("run id '" + text + "'");
  return run;
}

// --as NAME (global): who asks. $USER, else "cli".
storage::Actor ActorFrom(const GlobalOptions& global) {
  return storage::Actor{global.actor.empty() ? "cli" : global.actor, "operator"};
}

std::string JoinTypes(const std::vector<std::string>& types) {
  std::string text;
  for (const std::string& type : types) text += (text.empty() ? "" : ", ") + type;
  return text;
}

// RFC 3339 to the millisecond.
std::string TimeToMillis(int64_t ns) {
  std::string text = storage::FormatTimeRfc3339(ns);
  if (text.size() > 7 && text.back() == 'Z') text.erase(text.size() - 7, 6);
  return text;
}

std::string Shorten(std::string text, size_t bytes_max) {
  if (text.size() <= bytes_max) return text;
  const size_t full = text.size();
  return TruncateUtf8(std::move(text), bytes_max) + "… (" + std::to_string(full) + " bytes)";
}

std::string ShortJson(const Json& value, size_t bytes_max) {
  return Shorten(DumpJson(value), bytes_max);
}

std::string ErrorText(const storage::ErrorInfo& e) {
  std::string text = e.title.empty() ? e.type : e.title;
  if (e.status != 0) text += " (" + std::to_string(e.status) + ")";
  if (!e.detail.empty()) text += ": " + e.detail;
  if (!e.instance.empty()) text += " at " + e.instance;
  return text;
}

// "steps 4/200, tool calls 2/20, cost 0.0012/5": spent against each cap, for the
// dimensions that are capped or were spent on ("" when none). Money in decimal units.
std::string BudgetText(const storage::RunHeader& h) {
  const storage::BudgetAmounts& cap = h.budget_limits;
  const storage::BudgetAmounts& spent = h.budget_spent;
  std::string text;
  auto add = [&text](const char* name, const std::string& used, const std::string& limit,
                     bool show) {
    if (!show) return;
    text += (text.empty() ? "" : ", ") + std::string(name) + " " + used;
    if (!limit.empty()) text += "/" + limit;
  };
  auto count = [](uint64_t n, bool capped) { return capped ? std::to_string(n) : std::string(); };
  add("steps", std::to_string(spent.steps), count(cap.steps, cap.steps != 0),
      cap.steps != 0 || spent.steps != 0);
  add("tool calls", std::to_string(spent.tool_calls), count(cap.tool_calls, cap.tool_calls != 0),
      cap.tool_calls != 0 || spent.tool_calls != 0);
  add("tokens", std::to_string(spent.tokens), count(cap.tokens, cap.tokens != 0),
      cap.tokens != 0 || spent.tokens != 0);
  add("cost", FormatMoney(spent.cost_micros),
      cap.cost_micros != 0 ? FormatMoney(cap.cost_micros) : "",
      cap.cost_micros != 0 || spent.cost_micros != 0);
  if (cap.wall_ms != 0) {
    text += (text.empty() ? "" : ", ") + std::string("wall clock ") +
            engine::FormatDurationMs(cap.wall_ms);
  }
  return text;
}

void PrintRunViewText(std::ostream& out, const RunView& v) {
  const storage::RunHeader& h = v.header;
  std::vector<std::pair<std::string, std::string>> rows = {
      {"run", h.run_id.str()},
      {"status", StatusLabel(h)},
      {"workflow", WorkflowLabel(h) + " (sha256:" + h.definition_hash.Hex() + ")"},
      {"started", TimeToMillis(h.created_at_ns) +
                      (v.started_by.name.empty() ? "" : " by " + v.started_by.name)},
      {"updated", TimeToMillis(h.updated_at_ns)},
      {"events", std::to_string(h.next_seq)}};
  if (!h.waiting_on.empty()) {
    rows.emplace_back(
        "waiting on",
        h.waiting_on +
            (v.awaited_types.empty() ? "" : " (type " + JoinTypes(v.awaited_types) + ")"));
  }
  for (const storage::TimerRef& t : h.timers) {
    rows.emplace_back("timer", t.timer_id + " (" + std::string(storage::Name(t.purpose)) +
                                   ") due " + TimeToMillis(t.due_at_ns));
  }
  if (v.approval) {
    const storage::ApprovalRequested& a = *v.approval;
    std::string text = a.approval_id + " to call " + a.tool;
    if (!a.rule_id.empty()) text += " (rule " + a.rule_id + ")";
    rows.emplace_back("approval", std::move(text));
    rows.emplace_back("  arguments", ShortJson(v.approval_arguments, kDescribeValueBytesMax));
    if (!a.reason.empty()) rows.emplace_back("  why", a.reason);
    std::string who;
    for (const std::string& name : a.approvers) who += (who.empty() ? "" : ", ") + name;
    rows.emplace_back("  approvers", who.empty() ? "anyone" : who);
    if (a.expires_at_ns != 0) {
      rows.emplace_back("  expires", TimeToMillis(a.expires_at_ns) + " (unanswered by then: " +
                                         std::string(storage::Name(a.on_expiry)) +
                                         (a.on_expiry == storage::ApprovalResolution::kApproved
                                              ? ")"
                                              : ", the call is not made)"));
    }
  }
  if (std::string budget = BudgetText(h); !budget.empty()) rows.emplace_back("budget", budget);
  rows.emplace_back("input", ShortJson(v.input, kDescribeValueBytesMax));
  if (v.output) rows.emplace_back("output", ShortJson(*v.output, kDescribeValueBytesMax));
  if (!v.error.empty()) rows.emplace_back("error", ErrorText(v.error));
  if (!v.stop_detail.empty()) rows.emplace_back("detail", v.stop_detail);
  if (!v.stopped_by.name.empty()) rows.emplace_back("stopped by", v.stopped_by.name);
  for (const auto& [key, value] : rows) {
    out << key << std::string(12 - std::min<size_t>(key.size(), 11), ' ') << value << '\n';
  }
}

void PrintRunView(const GlobalOptions& global, const RunView& view) {
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine(RunViewToJson(view)) << '\n';
  } else {
    PrintRunViewText(*global.out, view);
  }
}

// What to say about a run that has not stopped, and which command moves it on.
std::string ParkedNote(const GlobalOptions& global, const RunView& view) {
  const storage::RunHeader& h = view.header;
  const std::string run = h.run_id.str();
  std::string note = "run " + run + " is " + std::string(storage::Name(h.status));
  if (!h.waiting_on.empty()) note += " on " + h.waiting_on;
  if (h.waiting_on.rfind("event", 0) == 0) {
    note += "; deliver it with '" + global.program + " run signal " + run + " --type " +
            (view.awaited_types.size() == 1 ? view.awaited_types.front() : "TYPE") + "'";
  } else if (view.approval) {
    note += "; an approver answers with '" + global.program + " run approve " + run +
            " --as NAME' or '" + global.program + " run reject " + run +
            " --as NAME --reason TEXT'";
  } else if (h.waiting_on.rfind("indeterminate_effect", 0) == 0 ||
             h.stop_reason == storage::StopReason::kIndeterminateEffect) {
    note += "; an operator decides with '" + global.program + " run resolve " + run +
            " --outcome ok|failed|abandon'";
  } else if (!h.timers.empty()) {
    note += "; it goes on when an engine runs after " + TimeToMillis(h.timers.front().due_at_ns) +
            " ('" + global.program + " run resume')";
  }
  return note;
}

// What the steering commands expect of the run they moved.
enum class Expect : uint8_t {
  kCompletion,  // start --wait: completing is success, stopping otherwise is not
  kProgress,    // signal, resolve: the request was recorded; the run moved on
  kStop,        // cancel, kill: stopping is success
};

// Prints the run's state after a drive; returns the exit code (see tools/README.md).
int ReportState(const GlobalOptions& global, const RunView& view, bool timed_out,
                milliseconds waited, Expect expect) {
  PrintRunView(global, view);
  global.out->flush();
  const storage::RunHeader& h = view.header;
  if (storage::IsTerminal(h.status)) {
    if (h.status == storage::RunStatus::kCompleted || expect == Expect::kStop) return kExitOk;
    return kExitFailed;
  }
  if (timed_out) {
    *global.err << "run " << h.run_id.str() << " is still " << storage::Name(h.status)
                << (waited.count() > 0 ? " after " + engine::FormatDurationMs(
                                                         static_cast<uint64_t>(waited.count()))
                                       : std::string())
                << "; it goes on when an engine next runs ('" << global.program
                << " run resume')\n";
    return expect == Expect::kCompletion ? kExitFailed : kExitOk;
  }
  *global.err << ParkedNote(global, view) << '\n';
  return kExitOk;
}

// Lets a run that the engine is driving reach a point where closing the engine cuts off
// no tool call: until it is no longer `running` (it parked on a timer, an event or an
// operator, or stopped), at most `bound`. True if it got there.
//
// Why: Engine::Close abandons tool calls in flight, and the next engine parks a run whose
// non-idempotent call was cut off as an indeterminate effect for an operator. A request
// delivered with --timeout 0 (do not wait) still sets the run going in this engine, so it
// is let settle before the engine closes. Polls the header: the engine offers no
// notification for "not running".
bool Settle(const GlobalOptions& global, engine::Engine& engine, const RunId& run,
            milliseconds bound) {
  const int64_t deadline = global.clock->MonotonicNanos() + bound.count() * 1'000'000;
  milliseconds pause(1);
  for (;;) {
    auto header = engine.store().GetRun(run);
    if (!header.ok() || header->status != storage::RunStatus::kRunning) return true;
    if (global.clock->MonotonicNanos() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, milliseconds(50));
  }
}

// Waits for the run (for `timeout`; 0: only until it settles), then reads and reports its
// state.
int DriveAndReport(const GlobalOptions& global, engine::Engine& engine, const RunId& run,
                   milliseconds timeout, Expect expect) {
  bool timed_out = false;
  if (timeout.count() > 0) {
    auto waited = engine.Wait(run, timeout);
    if (!waited.ok()) {
      if (waited.status().code() != StatusCode::kDeadlineExceeded) {
        return Fail(global, waited.status().WithContext("waiting for run " + run.str()));
      }
      timed_out = true;
    }
  } else if (!Settle(global, engine, run, kSettleMax)) {
    timed_out = true;
    timeout = kSettleMax;
  }
  auto view = ReadRunView(engine.store(), run);
  if (!view.ok()) return Fail(global, view.status());
  return ReportState(global, *view, timed_out, timeout, expect);
}

// ---- run start ----

struct StartOptions {
  std::string workflow;
  std::string input;
  std::string id;
  bool wait = false;
  std::string timeout;
};

int PrintStarted(const GlobalOptions& global, const engine::StartResult& started,
                 const std::string& workflow) {
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"run_id", started.run_id.str()},
                             {"created", started.created},
                             {"workflow", workflow}})
                << '\n';
  } else {
    *global.out << started.run_id.str() << '\n';
  }
  global.out->flush();
  if (started.created) {
    *global.err << "recorded run " << started.run_id.str() << " of " << workflow
                << "; it runs when an engine next runs ('" << global.program << " run resume')\n";
  } else {
    *global.err << "run " << started.run_id.str()
                << " was started before with this --id: nothing new started\n";
  }
  return kExitOk;
}

int RunStart(const GlobalOptions& global, const StartOptions& options) {
  // Everything given is checked before the directory is touched: a bad argument records
  // nothing.
  engine::StartRequest request;
  request.workflow = options.workflow;
  if (!options.input.empty()) {
    auto input = ParseJsonArgument(global, options.input, "--input");
    if (!input.ok()) return Fail(global, input.status());
    request.input = std::move(input).value();
  }
  if (!options.id.empty()) {
    auto id = RunId::Parse(options.id);
    if (!id.ok()) return Fail(global, id.status().WithContext("--id '" + options.id + "'"));
    request.run_id = std::move(id).value();
  }
  milliseconds timeout = kWaitForever;
  if (!options.timeout.empty()) {
    if (!options.wait) return Fail(global, "--timeout needs --wait");
    auto parsed = ParseDurationFlag(options.timeout, "--timeout");
    if (!parsed.ok()) return Fail(global, parsed.status());
    timeout = *parsed;
  }
  request.started_by = ActorFrom(global);
  // Without --wait the start is only recorded: this short-lived engine must not begin side
  // effects it will not see through. The next engine begins the run.
  request.defer = !options.wait;
  const EngineUse use = options.wait ? EngineUse::kDriveTouched : EngineUse::kRecord;
  return WithEngine(global, use, "cairn run start", [&](engine::Engine& engine) {
    auto started = engine.Start(std::move(request));
    if (!started.ok()) {
      return Fail(global, started.status().WithContext("starting " + options.workflow));
    }
    if (!options.wait) return PrintStarted(global, *started, options.workflow);
    if (!started->created) {
      // This engine drives only the runs it touches; one started before (perhaps deferred)
      // is shown as it is. `run resume` drives it if it has not finished.
      *global.err << "run " << started->run_id.str() << " was started before with this --id\n";
      auto view = ReadRunView(engine.store(), started->run_id);
      if (!view.ok()) return Fail(global, view.status());
      const bool running = view->header.status == storage::RunStatus::kRunning;
      return ReportState(global, *view, running, milliseconds(0), Expect::kCompletion);
    }
    return DriveAndReport(global, engine, started->run_id, timeout, Expect::kCompletion);
  });
}

void AddStart(CLI::App& run, GlobalOptions& global) {
  auto options = std::make_shared<StartOptions>();
  CLI::App* start = run.add_subcommand(
      "start", "Start a run of an applied workflow; print its id, or with --wait its final state");
  start
      ->add_option("workflow", options->workflow,
                   "NAME, NAMESPACE/NAME, NAMESPACE/NAME:VERSION or sha256:HEX (newest version "
                   "when none is given)")
      ->type_name("WORKFLOW")
      ->required();
  start->add_option("--input", options->input, "The run's input: JSON, @FILE (JSON) or @- (stdin)")
      ->type_name("JSON|@FILE");
  start
      ->add_option("--id", options->id,
                   "Run id to use: starting again with the same id returns the same run")
      ->type_name("ID");
  start->add_flag("--wait", options->wait,
                  "Drive the run here until it stops or parks; exit 0 completed or parked, 1 "
                  "stopped otherwise or still running at --timeout");
  start->add_option("--timeout", options->timeout, "With --wait: give up waiting after DUR")
      ->type_name("DUR");
  SetAction(start, global, [&global, options] { return RunStart(global, *options); });
}

// ---- run list ----

struct ListOptions {
  std::string status;
  std::string workflow;
  size_t limit = kListLimitDefault;
  std::string after;
};

struct ListedRuns {
  std::vector<storage::RunHeader> runs;
  bool more = false;          // matching runs follow the last one
  std::string scanned_until;  // set when the scan stopped at kListScanMax
};

Result<ListedRuns> CollectRuns(const storage::Store& store,
                               const std::optional<storage::RunStatus>& status,
                               const std::optional<engine::ParsedWorkflowRef>& workflow,
                               const ListOptions& options) {
  ListedRuns listed;
  std::string after = options.after;
  size_t scanned = 0;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(auto page, store.ListRuns(status, after, limits::list_runs_max));
    for (const storage::RunSummary& summary : page) {
      after = summary.run_id.str();
      ++scanned;
      CAIRN_ASSIGN_OR_RETURN(storage::RunHeader header, store.GetRun(summary.run_id));
      if (workflow && !MatchesWorkflow(*workflow, header)) continue;
      if (listed.runs.size() == options.limit) {
        listed.more = true;
        return listed;
      }
      listed.runs.push_back(std::move(header));
    }
    if (page.size() < limits::list_runs_max) return listed;
    if (scanned >= kListScanMax) {
      listed.scanned_until = after;
      return listed;
    }
  }
}

void PrintRunTable(const GlobalOptions& global, const std::vector<storage::RunHeader>& runs) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(runs.size());
  for (const storage::RunHeader& h : runs) {
    rows.push_back({h.run_id.str(), StatusLabel(h), WorkflowLabel(h), std::to_string(h.next_seq),
                    TimeToMillis(h.created_at_ns), h.waiting_on.empty() ? "-" : h.waiting_on});
  }
  PrintTable(*global.out, {"RUN", "STATUS", "WORKFLOW", "EVENTS", "STARTED", "WAITING ON"}, rows);
}

int RunList(const GlobalOptions& global, const ListOptions& options) {
  std::optional<storage::RunStatus> status;
  if (!options.status.empty()) {
    auto parsed = storage::ParseRunStatus(options.status);
    if (!parsed.ok()) return Fail(global, parsed.status().WithContext("--status"));
    status = *parsed;
  }
  std::optional<engine::ParsedWorkflowRef> workflow;
  if (!options.workflow.empty()) {
    auto parsed = engine::ParseWorkflowRef(options.workflow);
    if (!parsed.ok()) return Fail(global, parsed.status().WithContext("--workflow"));
    workflow = std::move(parsed).value();
  }
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  auto listed = CollectRuns(**store, status, workflow, options);
  if (!listed.ok()) {
    return Fail(global, listed.status().WithContext("reading runs in " + global.data_dir));
  }
  if (global.output == OutputFormat::kJson) {
    for (const auto& h : listed->runs) *global.out << JsonLine(storage::RunHeaderToJson(h)) << '\n';
  } else if (listed->runs.empty()) {
    *global.err << "no runs" << (options.status.empty() ? "" : " with status " + options.status)
                << (options.workflow.empty() ? "" : " of " + options.workflow) << " in "
                << global.data_dir << '\n';
  } else {
    PrintRunTable(global, listed->runs);
  }
  global.out->flush();
  if (listed->more) {
    *global.err << "more runs follow: add --after " << listed->runs.back().run_id.str() << '\n';
  } else if (!listed->scanned_until.empty()) {
    *global.err << "stopped after looking at " << kListScanMax << " runs: add --after "
                << listed->scanned_until << " to look further\n";
  }
  return kExitOk;
}

void AddList(CLI::App& run, GlobalOptions& global) {
  auto options = std::make_shared<ListOptions>();
  CLI::App* list = run.add_subcommand(
      "list", "List runs, oldest first: id, status, workflow, events, start, what it waits on");
  list->add_option("--status", options->status,
                   "Only runs with this status (running, waiting, blocked, completed, failed, "
                   "cancelled, killed)")
      ->type_name("STATUS");
  list->add_option("--workflow", options->workflow,
                   "Only runs of this workflow (NAME, NAMESPACE/NAME[:VERSION] or sha256:HEX)")
      ->type_name("WORKFLOW");
  list->add_option("--limit", options->limit, "At most N runs")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, limits::list_runs_max));
  list->add_option("--after", options->after, "Start after this run id (runs are in id order)")
      ->type_name("RUN");
  SetAction(list, global, [&global, options] { return RunList(global, *options); });
}

// ---- run describe ----

int RunDescribe(const GlobalOptions& global, const std::string& run_text) {
  auto run = ParseRunArgument(run_text);
  if (!run.ok()) return Fail(global, run.status());
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  auto view = ReadRunView(**store, *run);
  if (!view.ok()) return Fail(global, view.status());
  PrintRunView(global, *view);
  return kExitOk;
}

void AddDescribe(CLI::App& run, GlobalOptions& global) {
  auto run_text = std::make_shared<std::string>();
  CLI::App* describe =
      run.add_subcommand("describe",
                         "A run's state: status, stop reason, workflow, times, what it waits on, "
                         "input, output or error");
  describe->add_option("run", *run_text, "Run id")->type_name("RUN")->required();
  SetAction(describe, global, [&global, run_text] { return RunDescribe(global, *run_text); });
}

// ---- run show ----

std::string Value(const nlohmann::json& value) {
  if (value.is_null()) return "null";
  if (value.is_object() && value.size() == 1 && value.contains("blob")) {
    return "(blob " + value["blob"].get<std::string>().substr(0, 12) + "…)";
  }
  return Shorten(JsonLine(value), kShowValueBytesMax);
}

std::string Str(const nlohmann::json& body, const char* key) { return JsonText(body, key); }

std::string ErrorSummary(const nlohmann::json& error) {
  if (!error.is_object()) return "";
  std::string text = Str(error, "title").empty() ? Str(error, "type") : Str(error, "title");
  if (error.value("status", 0) != 0) text += " (" + Str(error, "status") + ")";
  if (!Str(error, "detail").empty()) text += ": " + Str(error, "detail");
  return Shorten(text, kShowValueBytesMax);
}

std::string ActorSuffix(const nlohmann::json& actor) {
  return actor.is_object() && !Str(actor, "name").empty() ? " by " + Str(actor, "name") : "";
}

std::string TimerSummary(const nlohmann::json& b) {
  return Str(b, "timer_id") + " (" + Str(b, "purpose") + ") due " +
         TimeToMillis(b.value("due_at_ns", int64_t{0}));
}

// One line on what an event says, from its export form (storage/event_json.h).
std::string Summary(const std::string& kind, const nlohmann::json& b) {
  if (kind == "run_started") {
    std::string label = Str(b, "workflow_name");
    if (!Str(b, "workflow_namespace").empty()) label = Str(b, "workflow_namespace") + "/" + label;
    if (!Str(b, "workflow_version").empty()) label += ":" + Str(b, "workflow_version");
    return label + ActorSuffix(b["started_by"]) + ", input " + Value(b["input"]);
  }
  if (kind == "task_routed") {
    std::string text = Str(b, "task_name") + " (" + Str(b, "task_kind") + ")";
    if (b.value("attempt", 0) > 1) text += " attempt " + Str(b, "attempt");
    return text;
  }
  if (kind == "task_completed") {
    std::string text = Str(b, "task_name") + " " + Str(b, "status");
    if (Str(b, "status") == "faulted") return text + ": " + ErrorSummary(b["error"]);
    if (!Str(b, "then").empty()) text += " then " + Str(b, "then");
    return text + " → " + Value(b["output"]);
  }
  if (kind == "effect_intent") {
    return Str(b, "tool") + " key " + Str(b, "idempotency_key") + " (" + Str(b, "effect") + ", " +
           Str(b, "risk") + (b.value("idempotent", false) ? ", idempotent" : "") + ") args " +
           Value(b["arguments"]);
  }
  if (kind == "effect_outcome") {
    std::string text = "key " + Str(b, "idempotency_key") + " " + Str(b, "status") + " in " +
                       Str(b, "duration_ms") + "ms" + ActorSuffix(b["resolved_by"]);
    return text + (Str(b, "status") == "ok" ? " → " + Value(b["result"])
                                            : ": " + ErrorSummary(b["error"]));
  }
  if (kind == "timer_scheduled" || kind == "timer_fired") return TimerSummary(b);
  if (kind == "timer_cancelled") return Str(b, "timer_id");
  if (kind == "event_received") {
    return Str(b, "event_type") + " from " + Str(b, "source") + ActorSuffix(b["actor"]) + ": " +
           Value(b["payload"]);
  }
  if (kind == "run_stopped") {
    std::string text = Str(b, "reason") + ActorSuffix(b["actor"]);
    // A detail may already start with the reason ("budget_exhausted: tool_calls").
    std::string detail = Str(b, "detail");
    if (detail.rfind(Str(b, "reason") + ": ", 0) == 0) detail.erase(0, Str(b, "reason").size() + 2);
    if (!detail.empty()) text += ": " + detail;
    if (b["error"].is_object()) return text + ": " + ErrorSummary(b["error"]);
    return text + (b["output"].is_null() ? "" : " → " + Value(b["output"]));
  }
  if (kind == "control_requested") {
    return Str(b, "action") + ActorSuffix(b["actor"]) +
           (Str(b, "reason").empty() ? "" : ": " + Str(b, "reason"));
  }
  if (kind == "agent_decided") {
    return Str(b, "agent") + " chose " + Str(b, "option") + " (" + Str(b, "reason_code") + ")";
  }
  if (kind == "policy_verdict") {
    return Str(b, "decision") + " " + Str(b, "tool") + " (rule " + Str(b, "rule_id") +
           (Str(b, "stage") == "before_commit" ? ", checked again before the commit)" : ")");
  }
  if (kind == "approval_requested") return Str(b, "approval_id") + " for " + Str(b, "tool");
  if (kind == "approval_resolved") {
    return Str(b, "approval_id") + " " + Str(b, "resolution") + ActorSuffix(b["actor"]);
  }
  if (kind == "budget_charged") return Str(b, "phase") + " " + Str(b, "purpose");
  if (kind == "value_recorded") return Str(b, "name") + " = " + Value(b["value"]);
  return Shorten(JsonLine(b), kShowValueBytesMax);
}

int RunShow(const GlobalOptions& global, const std::string& run_text) {
  auto run = ParseRunArgument(run_text);
  if (!run.ok()) return Fail(global, run.status());
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  std::vector<std::vector<std::string>> rows;
  Status scanned = (*store)->ScanHistory(*run, 0, [&](const storage::StoredEvent& e) {
    nlohmann::json event = storage::EventToJson(e.event);
    if (global.output == OutputFormat::kJson) {
      *global.out << JsonLine(event) << '\n';
    } else {
      const std::string kind = event["kind"].get<std::string>();
      rows.push_back({std::to_string(e.event.seq.value()), TimeToMillis(e.event.time_ns),
                      e.event.task_path.empty() ? "-" : e.event.task_path, kind,
                      Summary(kind, event["body"])});
    }
    return true;
  });
  if (!scanned.ok()) {
    global.out->flush();
    return Fail(global, scanned);
  }
  if (global.output == OutputFormat::kText) {
    PrintTable(*global.out, {"SEQ", "TIME", "TASK", "KIND", "SUMMARY"}, rows);
  }
  return kExitOk;
}

void AddShow(CLI::App& run, GlobalOptions& global) {
  auto run_text = std::make_shared<std::string>();
  CLI::App* show = run.add_subcommand(
      "show", "A run's events as a timeline (with -o json: JSON lines, as 'cairn log dump')");
  show->add_option("run", *run_text, "Run id")->type_name("RUN")->required();
  SetAction(show, global, [&global, run_text] { return RunShow(global, *run_text); });
}

// ---- run signal / cancel / kill / resolve ----

struct SteerOptions {
  std::string run;
  std::string timeout = kSignalTimeoutDefault;
  std::string reason;
  // signal
  std::string type;
  std::string data;
  std::string source = "cairn";
  std::string event_id;
  // resolve
  std::string outcome;
  std::string result;
  // approve, reject
  std::string approval_id;
};

void AddSteerOptions(CLI::App* command, SteerOptions& options) {
  command->add_option("run", options.run, "Run id")->type_name("RUN")->required();
  command
      ->add_option("--timeout", options.timeout,
                   "Drive the run on for at most DUR, then print its state (0: do not wait)")
      ->type_name("DUR")
      ->capture_default_str();
}

// Parses what every steering command shares: the run and the timeout.
struct Steer {
  RunId run;
  milliseconds timeout{0};
  storage::Actor actor;
};
Result<Steer> ParseSteer(const GlobalOptions& global, const SteerOptions& options) {
  Steer steer;
  CAIRN_ASSIGN_OR_RETURN(steer.run, ParseRunArgument(options.run));
  CAIRN_ASSIGN_OR_RETURN(steer.timeout, ParseDurationFlag(options.timeout, "--timeout"));
  steer.actor = ActorFrom(global);
  return steer;
}

// Records `request` with an engine that drives the run, then reports the run's state.
int SteerRun(const GlobalOptions& global, const Steer& steer, const std::string& owner,
             Expect expect, const std::function<Status(engine::Engine&)>& request) {
  return WithEngine(global, EngineUse::kDriveTouched, owner, [&](engine::Engine& engine) {
    Status recorded = request(engine);
    if (!recorded.ok()) return Fail(global, recorded);
    return DriveAndReport(global, engine, steer.run, steer.timeout, expect);
  });
}

int RunSignal(const GlobalOptions& global, const SteerOptions& options) {
  auto steer = ParseSteer(global, options);
  if (!steer.ok()) return Fail(global, steer.status());
  engine::Signal signal;
  signal.type = options.type;
  signal.source = options.source;
  signal.id = options.event_id;
  signal.actor = steer->actor;
  if (!options.data.empty()) {
    auto data = ParseJsonArgument(global, options.data, "--data");
    if (!data.ok()) return Fail(global, data.status());
    signal.data = std::move(data).value();
  }
  return SteerRun(
      global, *steer, "cairn run signal", Expect::kProgress, [&](engine::Engine& engine) {
        return engine.SendSignal(steer->run, std::move(signal)).WithContext("cannot signal");
      });
}

int RunStop(const GlobalOptions& global, const SteerOptions& options, bool kill) {
  auto steer = ParseSteer(global, options);
  if (!steer.ok()) return Fail(global, steer.status());
  return SteerRun(global, *steer, kill ? "cairn run kill" : "cairn run cancel", Expect::kStop,
                  [&](engine::Engine& engine) {
                    Status stopped = kill ? engine.Kill(steer->run, options.reason, steer->actor)
                                          : engine.Cancel(steer->run, options.reason, steer->actor);
                    return stopped.WithContext(kill ? "cannot kill" : "cannot cancel");
                  });
}

int RunResolve(const GlobalOptions& global, const SteerOptions& options) {
  auto steer = ParseSteer(global, options);
  if (!steer.ok()) return Fail(global, steer.status());
  engine::EffectResolution resolution;
  resolution.outcome = options.outcome == "ok"       ? engine::EffectResolution::Outcome::kOk
                       : options.outcome == "failed" ? engine::EffectResolution::Outcome::kFailed
                                                     : engine::EffectResolution::Outcome::kAbandon;
  if (!options.result.empty()) {
    if (options.outcome != "ok") return Fail(global, "--result goes with --outcome ok");
    auto result = ParseJsonArgument(global, options.result, "--result");
    if (!result.ok()) return Fail(global, result.status());
    resolution.result = std::move(result).value();
  }
  resolution.detail = options.reason;
  resolution.actor = steer->actor;
  return SteerRun(global, *steer, "cairn run resolve", Expect::kProgress,
                  [&](engine::Engine& engine) {
                    return engine.ResolveEffect(steer->run, std::move(resolution))
                        .WithContext("cannot resolve");
                  });
}

int RunAnswer(const GlobalOptions& global, const SteerOptions& options, bool approve) {
  auto steer = ParseSteer(global, options);
  if (!steer.ok()) return Fail(global, steer.status());
  engine::ApprovalAnswer answer;
  answer.approve = approve;
  answer.approval_id = options.approval_id;
  answer.reason = options.reason;
  answer.actor = steer->actor;
  // A rejection usually stops the run (approval_denied): that is what was asked for.
  return SteerRun(global, *steer, approve ? "cairn run approve" : "cairn run reject",
                  approve ? Expect::kProgress : Expect::kStop, [&](engine::Engine& engine) {
                    return engine.ResolveApproval(steer->run, std::move(answer))
                        .WithContext(approve ? "cannot approve" : "cannot reject");
                  });
}

void AddSteering(CLI::App& run, GlobalOptions& global) {
  auto signal_options = std::make_shared<SteerOptions>();
  CLI::App* signal = run.add_subcommand(
      "signal", "Deliver an event to a run (for its listen tasks), then drive it on");
  AddSteerOptions(signal, *signal_options);
  signal->add_option("--type", signal_options->type, "The event's type")
      ->type_name("TYPE")
      ->required();
  signal->add_option("--data", signal_options->data, "The event's data: JSON, @FILE or @-")
      ->type_name("JSON|@FILE");
  signal->add_option("--source", signal_options->source, "The event's source")
      ->type_name("SOURCE")
      ->capture_default_str();
  signal->add_option("--event-id", signal_options->event_id, "The event's id (default: generated)")
      ->type_name("ID");
  SetAction(signal, global,
            [&global, signal_options] { return RunSignal(global, *signal_options); });

  for (const bool kill : {false, true}) {
    auto options = std::make_shared<SteerOptions>();
    CLI::App* stop = run.add_subcommand(
        kill ? "kill" : "cancel",
        kill ? "Stop a run at once as killed (in-flight tool calls are abandoned)"
             : "Stop a run as cancelled");
    AddSteerOptions(stop, *options);
    stop->add_option("--reason", options->reason, "Why, recorded in the run")->type_name("TEXT");
    SetAction(stop, global, [&global, options, kill] { return RunStop(global, *options, kill); });
  }

  for (const bool approve : {true, false}) {
    auto options = std::make_shared<SteerOptions>();
    CLI::App* answer = run.add_subcommand(
        approve ? "approve" : "reject",
        approve ? "Approve the tool call a run waits on (as --as NAME), then drive the run on"
                : "Reject the tool call a run waits on (as --as NAME); the run goes on without "
                  "it (usually: it stops, approval_denied)");
    AddSteerOptions(answer, *options);
    answer->add_option("--reason", options->reason, "Why, recorded in the run")->type_name("TEXT");
    answer
        ->add_option("--approval", options->approval_id,
                     "Answer only this approval id (default: the one the run waits on)")
        ->type_name("ID");
    SetAction(answer, global,
              [&global, options, approve] { return RunAnswer(global, *options, approve); });
  }

  auto resolve_options = std::make_shared<SteerOptions>();
  CLI::App* resolve = run.add_subcommand(
      "resolve",
      "Decide the outcome of a tool call whose result is unknown (a run blocked on an "
      "indeterminate effect), then drive the run on");
  AddSteerOptions(resolve, *resolve_options);
  resolve
      ->add_option("--outcome", resolve_options->outcome,
                   "ok: the call happened (give --result); failed: it did not; abandon: stop "
                   "the run")
      ->type_name("OUTCOME")
      ->required()
      ->check(CLI::IsMember({"ok", "failed", "abandon"}));
  resolve
      ->add_option("--result", resolve_options->result,
                   "With ok: the call's result as the task sees it (JSON, @FILE or @-)")
      ->type_name("JSON|@FILE");
  resolve->add_option("--reason", resolve_options->reason, "Why, recorded in the run")
      ->type_name("TEXT");
  SetAction(resolve, global,
            [&global, resolve_options] { return RunResolve(global, *resolve_options); });
}

// ---- run resume ----

Result<std::vector<RunId>> ActiveRuns(const storage::Store& store) {
  std::vector<RunId> runs;
  std::string after;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(auto page, store.ListActiveRuns(after, limits::list_runs_max));
    for (const storage::RunSummary& summary : page) runs.push_back(summary.run_id);
    if (page.size() < limits::list_runs_max) return runs;
    after = page.back().run_id.str();
  }
}

struct ResumeTally {
  size_t completed = 0;
  size_t stopped = 0;  // failed, cancelled, killed
  size_t parked = 0;
};

int PrintResumed(const GlobalOptions& global, const std::vector<storage::RunHeader>& runs,
                 bool timed_out, milliseconds timeout) {
  ResumeTally tally;
  std::vector<std::vector<std::string>> rows;
  for (const storage::RunHeader& h : runs) {
    if (h.status == storage::RunStatus::kCompleted)
      ++tally.completed;
    else if (storage::IsTerminal(h.status))
      ++tally.stopped;
    else
      ++tally.parked;
    if (global.output == OutputFormat::kJson) {
      *global.out << JsonLine({{"run_id", h.run_id.str()},
                               {"status", storage::Name(h.status)},
                               {"stop_reason", storage::Name(h.stop_reason)},
                               {"workflow", WorkflowLabel(h)},
                               {"waiting_on", h.waiting_on}})
                  << '\n';
    } else {
      rows.push_back({h.run_id.str(), StatusLabel(h), WorkflowLabel(h),
                      h.waiting_on.empty() ? "-" : h.waiting_on});
    }
  }
  if (global.output == OutputFormat::kText) {
    if (!rows.empty()) PrintTable(*global.out, {"RUN", "STATUS", "WORKFLOW", "WAITING ON"}, rows);
    *global.out << "resumed " << runs.size() << (runs.size() == 1 ? " run: " : " runs: ")
                << tally.completed << " completed, " << tally.stopped << " stopped otherwise, "
                << tally.parked << " not finished\n";
  }
  global.out->flush();
  if (timed_out) {
    *global.err << "runs were still runnable after "
                << engine::FormatDurationMs(static_cast<uint64_t>(timeout.count()))
                << "; run 'cairn run resume' again to go on\n";
  }
  return timed_out || tally.stopped > 0 ? kExitFailed : kExitOk;
}

int RunResume(const GlobalOptions& global, const std::string& timeout_text) {
  auto timeout = ParseDurationFlag(timeout_text, "--timeout");
  if (!timeout.ok()) return Fail(global, timeout.status());
  return WithEngine(global, EngineUse::kDriveAll, "cairn run resume", [&](engine::Engine& engine) {
    auto active = ActiveRuns(engine.store());
    if (!active.ok()) return Fail(global, active.status().WithContext("listing runs to resume"));
    bool timed_out = false;
    Status idle = engine.RunUntilIdle(*timeout);
    if (!idle.ok()) {
      if (idle.code() != StatusCode::kDeadlineExceeded) {
        return Fail(global, idle.WithContext("resuming runs"));
      }
      timed_out = true;
    }
    std::vector<storage::RunHeader> headers;
    for (const RunId& run : *active) {
      auto header = engine.store().GetRun(run);
      if (!header.ok()) return Fail(global, header.status());
      headers.push_back(std::move(header).value());
    }
    return PrintResumed(global, headers, timed_out, *timeout);
  });
}

void AddResume(CLI::App& run, GlobalOptions& global) {
  auto timeout = std::make_shared<std::string>("10m");
  CLI::App* resume = run.add_subcommand(
      "resume",
      "Resume every run that has not stopped and drive them until none can move on; print "
      "what became of each");
  resume->add_option("--timeout", *timeout, "Stop driving after DUR")
      ->type_name("DUR")
      ->capture_default_str();
  SetAction(resume, global, [&global, timeout] { return RunResume(global, *timeout); });
}

}  // namespace

void AddRunCommand(CLI::App& app, GlobalOptions& global) {
  CLI::App* run = app.add_subcommand("run", "Start, inspect and steer workflow runs");
  run->require_subcommand(1);
  AddStart(*run, global);
  AddList(*run, global);
  AddDescribe(*run, global);
  AddShow(*run, global);
  AddSteering(*run, global);
  AddResume(*run, global);
}

}  // namespace cairn::cli
