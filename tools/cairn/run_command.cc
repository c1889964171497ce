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
#include "tools/cairn/remote.h"
#include "tools/cairn/run_output.h"
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
// Remote `run list`: the server's largest page, and how many pages one listing asks for
// (each page looks at a bounded number of runs on the server).
constexpr size_t kRemotePageMax = 1000;
constexpr size_t kRemoteListPagesMax = 10;
// Remote `run show`: events asked for per request.
constexpr size_t kHistoryPage = 1000;
// --input / --data / --result: one JSON document, as large as a run's data may be.
constexpr size_t kArgumentBytesMax = limits::run_data_bytes_max;
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
  return ReportState(global, RunViewToJson(*view), timed_out, timeout, expect);
}

// Remote mode: follows the run the server drives as DriveAndReport waits for it: for
// `*timeout` until it stops or parks; with 0, only until it is no longer running (at
// most kSettleMax, which `*timeout` then becomes if it was still running).
Result<Followed> FollowAsDriven(serve::Client& client, const std::string& run,
                                milliseconds* timeout) {
  if (timeout->count() > 0) return FollowRun(client, run, *timeout, FollowUntil::kParkedOrStopped);
  auto followed = FollowRun(client, run, kSettleMax, FollowUntil::kSettled);
  if (followed.ok() && followed->timed_out) *timeout = kSettleMax;
  return followed;
}

// Remote mode: follows the run (FollowAsDriven), then reports its state as DriveAndReport
// does.
int FollowAndReport(const GlobalOptions& global, serve::Client& client, const std::string& run,
                    milliseconds timeout, Expect expect) {
  auto followed = FollowAsDriven(client, run, &timeout);
  if (!followed.ok()) return Fail(global, followed.status().WithContext("waiting for run " + run));
  return ReportState(global, followed->view, followed->timed_out, timeout, expect);
}

// ---- run start ----

struct StartOptions {
  std::string workflow;
  std::string input;
  std::string id;
  bool wait = false;
  std::string timeout;
};

// Starts the run on the server; with --wait, follows it there. The server drives every run
// it has, so a run started before with this --id is followed too.
int RemoteStart(const GlobalOptions& global, const StartOptions& options,
                const engine::StartRequest& request, milliseconds timeout) {
  auto client = ConnectRemote(global);
  if (!client.ok()) return Fail(global, client.status());
  Json body{{"workflow", options.workflow}};
  if (!options.input.empty()) body["input"] = request.input;
  if (request.run_id) body["run_id"] = request.run_id->str();
  auto started = (*client)->Post("/v1/runs", body);
  if (!started.ok())
    return Fail(global, started.status().WithContext("starting " + options.workflow));
  const std::string run_id = JsonText(*started, "run_id");
  const bool created = started->value("created", false);
  if (!options.wait) {
    return PrintStarted(global, run_id, created, options.workflow, (*client)->address().url);
  }
  if (!created) *global.err << "run " << run_id << " was started before with this --id\n";
  return FollowAndReport(global, **client, run_id, timeout, Expect::kCompletion);
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
  if (IsRemote(global)) return RemoteStart(global, options, request, timeout);
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
    if (!options.wait) {
      return PrintStarted(global, started->run_id.str(), started->created, options.workflow, "");
    }
    if (!started->created) {
      // This engine drives only the runs it touches; one started before (perhaps deferred)
      // is shown as it is. `run resume` drives it if it has not finished.
      *global.err << "run " << started->run_id.str() << " was started before with this --id\n";
      auto view = ReadRunView(engine.store(), started->run_id);
      if (!view.ok()) return Fail(global, view.status());
      const bool running = view->header.status == storage::RunStatus::kRunning;
      return ReportState(global, RunViewToJson(*view), running, milliseconds(0),
                         Expect::kCompletion);
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
  SetAction(
      start, global, [&global, options] { return RunStart(global, *options); }, Reach::kRemoteToo);
}

// ---- run list ----

struct ListOptions {
  std::string status;
  std::string workflow;
  size_t limit = kListLimitDefault;
  std::string after;
};

struct ListedRuns {
  std::vector<Json> runs;     // RunHeaderToJson forms
  bool more = false;          // matching runs follow the last one
  std::string scanned_until;  // set when the scan stopped at kListScanMax (or, remote,
                              // kRemoteListPagesMax)
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
      listed.runs.push_back(storage::RunHeaderToJson(header));
    }
    if (page.size() < limits::list_runs_max) return listed;
    if (scanned >= kListScanMax) {
      listed.scanned_until = after;
      return listed;
    }
  }
}

// Remote mode: the server answers at most kRemotePageMax runs a request, and looks at a
// bounded number of runs for each; this asks page after page until `limit` runs, the end,
// or kRemoteListPagesMax requests.
Result<ListedRuns> CollectRemoteRuns(serve::Client& client, const ListOptions& options) {
  ListedRuns listed;
  std::string after = options.after;
  for (size_t pages = 0; listed.runs.size() < options.limit; ++pages) {
    if (pages == kRemoteListPagesMax) {
      listed.scanned_until = after;
      return listed;
    }
    std::string target =
        "/v1/runs?limit=" +
        std::to_string(std::min(options.limit - listed.runs.size(), kRemotePageMax));
    if (!options.status.empty()) target += "&status=" + serve::UrlEncode(options.status);
    if (!options.workflow.empty()) target += "&workflow=" + serve::UrlEncode(options.workflow);
    if (!after.empty()) target += "&after=" + serve::UrlEncode(after);
    CAIRN_ASSIGN_OR_RETURN(Json page, client.Get(target));
    if (!page.is_object() || !page["runs"].is_array()) {
      return Status::Internal(client.address().url + " answered GET /v1/runs without 'runs'");
    }
    for (Json& run : page["runs"]) listed.runs.push_back(std::move(run));
    if (!page.contains("next_after") || !page["next_after"].is_string()) return listed;
    after = page["next_after"].get<std::string>();
  }
  listed.more = true;
  return listed;
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
  std::string where = global.data_dir;
  // Connection and open errors are told as they are; reading errors name where.
  auto collect = [&]() -> Result<ListedRuns> {
    if (IsRemote(global)) {
      CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<serve::Client> client, ConnectRemote(global));
      where = client->address().url;
      auto listed = CollectRemoteRuns(*client, options);
      if (!listed.ok()) return listed.status().WithContext("reading runs in " + where);
      return listed;
    }
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store, OpenStoreReadOnly(global));
    auto listed = CollectRuns(*store, status, workflow, options);
    if (!listed.ok()) return listed.status().WithContext("reading runs in " + where);
    return listed;
  };
  Result<ListedRuns> listed = collect();
  if (!listed.ok()) return Fail(global, listed.status());
  if (global.output == OutputFormat::kJson) {
    for (const Json& h : listed->runs) *global.out << JsonLine(h) << '\n';
  } else if (listed->runs.empty()) {
    *global.err << "no runs" << (options.status.empty() ? "" : " with status " + options.status)
                << (options.workflow.empty() ? "" : " of " + options.workflow) << " in " << where
                << '\n';
  } else {
    PrintRunTable(global, listed->runs);
  }
  global.out->flush();
  if (listed->more) {
    *global.err << "more runs follow: add --after " << JsonText(listed->runs.back(), "run_id")
                << '\n';
  } else if (!listed->scanned_until.empty()) {
    *global.err << "stopped after looking at "
                << (IsRemote(global) ? std::to_string(kRemoteListPagesMax) + " pages of"
                                     : std::to_string(kListScanMax))
                << " runs: add --after " << listed->scanned_until << " to look further\n";
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
  SetAction(
      list, global, [&global, options] { return RunList(global, *options); }, Reach::kRemoteToo);
}

// ---- run describe ----

int RunDescribe(const GlobalOptions& global, const std::string& run_text) {
  auto run = ParseRunArgument(run_text);
  if (!run.ok()) return Fail(global, run.status());
  if (IsRemote(global)) {
    auto client = ConnectRemote(global);
    if (!client.ok()) return Fail(global, client.status());
    auto view = (*client)->Get(RunPath(run->str()));
    if (!view.ok()) return Fail(global, view.status());
    PrintRunView(global, *view);
    return kExitOk;
  }
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  auto view = ReadRunView(**store, *run);
  if (!view.ok()) return Fail(global, view.status());
  PrintRunView(global, RunViewToJson(*view));
  return kExitOk;
}

void AddDescribe(CLI::App& run, GlobalOptions& global) {
  auto run_text = std::make_shared<std::string>();
  CLI::App* describe =
      run.add_subcommand("describe",
                         "A run's state: status, stop reason, workflow, times, what it waits on, "
                         "input, output or error");
  describe->add_option("run", *run_text, "Run id")->type_name("RUN")->required();
  SetAction(
      describe, global, [&global, run_text] { return RunDescribe(global, *run_text); },
      Reach::kRemoteToo);
}

// ---- run show ----

// Remote mode: the run's history, a page at a time (GET /v1/runs/{id}/history), each event
// in the form the store's scan gives (EventToJson) to `each`.
Status ScanRemoteHistory(serve::Client& client, const RunId& run,
                         const std::function<void(const Json&)>& each) {
  uint64_t from = 0;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(Json page,
                           client.Get(RunPath(run.str()) + "/history?from=" + std::to_string(from) +
                                      "&limit=" + std::to_string(kHistoryPage)));
    if (!page.is_object() || !page["events"].is_array()) {
      return Status::Internal(client.address().url + " answered a history without 'events'");
    }
    for (const Json& event : page["events"]) each(event);
    if (!page.contains("next_from") || !page["next_from"].is_number_unsigned()) {
      return Status::Ok();
    }
    const uint64_t next = page["next_from"].get<uint64_t>();
    if (next <= from) {
      return Status::Internal(client.address().url + " answered a history that does not advance");
    }
    from = next;
  }
}

int RunShow(const GlobalOptions& global, const std::string& run_text) {
  auto run = ParseRunArgument(run_text);
  if (!run.ok()) return Fail(global, run.status());
  std::vector<std::vector<std::string>> rows;
  auto each = [&](const Json& event) {
    if (global.output == OutputFormat::kJson) {
      *global.out << JsonLine(event) << '\n';
    } else {
      rows.push_back(TimelineRow(event));
    }
  };
  Status scanned;
  if (IsRemote(global)) {
    auto client = ConnectRemote(global);
    if (!client.ok()) return Fail(global, client.status());
    scanned = ScanRemoteHistory(**client, *run, each);
  } else {
    auto store = OpenStoreReadOnly(global);
    if (!store.ok()) return Fail(global, store.status());
    scanned = (*store)->ScanHistory(*run, 0, [&](const storage::StoredEvent& e) {
      each(storage::EventToJson(e.event));
      return true;
    });
  }
  if (!scanned.ok()) {
    global.out->flush();
    return Fail(global, scanned);
  }
  if (global.output == OutputFormat::kText) PrintTable(*global.out, kTimelineHeaders, rows);
  return kExitOk;
}

void AddShow(CLI::App& run, GlobalOptions& global) {
  auto run_text = std::make_shared<std::string>();
  CLI::App* show = run.add_subcommand(
      "show", "A run's events as a timeline (with -o json: JSON lines, as 'cairn log dump')");
  show->add_option("run", *run_text, "Run id")->type_name("RUN")->required();
  SetAction(
      show, global, [&global, run_text] { return RunShow(global, *run_text); }, Reach::kRemoteToo);
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

// Remote mode: POSTs `body` to /v1/runs/{id}/ACTION (the server records the request as the
// token's owner), then follows the run as SteerRun drives it (reading it afresh: the
// answer's state is the one right after the request). `what` prefixes the
// server's refusal ("cannot signal").
int RemoteSteer(const GlobalOptions& global, const Steer& steer, const std::string& action,
                const Json& body, Expect expect, const std::string& what) {
  auto client = ConnectRemote(global);
  if (!client.ok()) return Fail(global, client.status());
  auto answer = (*client)->Post(RunPath(steer.run.str()) + "/" + action, body);
  if (!answer.ok()) return Fail(global, answer.status().WithContext(what));
  return FollowAndReport(global, **client, steer.run.str(), steer.timeout, expect);
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
  if (IsRemote(global)) {
    Json body{{"type", signal.type}, {"source", signal.source}};
    if (!signal.id.empty()) body["id"] = signal.id;
    if (!options.data.empty()) body["data"] = signal.data;
    return RemoteSteer(global, *steer, "signal", body, Expect::kProgress, "cannot signal");
  }
  return SteerRun(
      global, *steer, "cairn run signal", Expect::kProgress, [&](engine::Engine& engine) {
        return engine.SendSignal(steer->run, std::move(signal)).WithContext("cannot signal");
      });
}

int RunStop(const GlobalOptions& global, const SteerOptions& options, bool kill) {
  auto steer = ParseSteer(global, options);
  if (!steer.ok()) return Fail(global, steer.status());
  if (IsRemote(global)) {
    return RemoteSteer(global, *steer, kill ? "kill" : "cancel", Json{{"reason", options.reason}},
                       Expect::kStop, kill ? "cannot kill" : "cannot cancel");
  }
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
  // CLI11 checked --outcome against the same three names.
  resolution.outcome = serve::ParseResolutionOutcome(options.outcome)
                           .value_or(engine::EffectResolution::Outcome::kAbandon);
  if (!options.result.empty()) {
    if (options.outcome != "ok") return Fail(global, "--result goes with --outcome ok");
    auto result = ParseJsonArgument(global, options.result, "--result");
    if (!result.ok()) return Fail(global, result.status());
    resolution.result = std::move(result).value();
  }
  resolution.detail = options.reason;
  resolution.actor = steer->actor;
  if (IsRemote(global)) {
    Json body{{"outcome", options.outcome}, {"reason", options.reason}};
    if (!options.result.empty()) body["result"] = resolution.result;
    return RemoteSteer(global, *steer, "resolve", body, Expect::kProgress, "cannot resolve");
  }
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
  if (IsRemote(global)) {
    Json body{{"reason", options.reason}};
    if (!options.approval_id.empty()) body["approval_id"] = options.approval_id;
    return RemoteSteer(global, *steer, approve ? "approve" : "reject", body,
                       approve ? Expect::kProgress : Expect::kStop,
                       approve ? "cannot approve" : "cannot reject");
  }
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
  SetAction(
      signal, global, [&global, signal_options] { return RunSignal(global, *signal_options); },
      Reach::kRemoteToo);

  for (const bool kill : {false, true}) {
    auto options = std::make_shared<SteerOptions>();
    CLI::App* stop = run.add_subcommand(
        kill ? "kill" : "cancel",
        kill ? "Stop a run at once as killed (in-flight tool calls are abandoned)"
             : "Stop a run as cancelled");
    AddSteerOptions(stop, *options);
    stop->add_option("--reason", options->reason, "Why, recorded in the run")->type_name("TEXT");
    SetAction(
        stop, global, [&global, options, kill] { return RunStop(global, *options, kill); },
        Reach::kRemoteToo);
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
    SetAction(
        answer, global,
        [&global, options, approve] { return RunAnswer(global, *options, approve); },
        Reach::kRemoteToo);
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
  SetAction(
      resolve, global, [&global, resolve_options] { return RunResolve(global, *resolve_options); },
      Reach::kRemoteToo);
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
  if (IsRemote(global)) {
    return Fail(global, "run resume: " + global.address_source + " " + global.address +
                            ": a server resumes every run itself when it starts, and drives "
                            "them; there is nothing to resume from here ('" +
                            global.program + " run list' shows where the runs are)");
  }
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
  // With an address it refuses, naming why (rather than the generic refusal of kLocal).
  SetAction(
      resume, global, [&global, timeout] { return RunResume(global, *timeout); },
      Reach::kRemoteToo);
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
