#include "tools/cairn/kill_command.h"

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/limits.h"
#include "storage/event.h"
#include "storage/event_json.h"
#include "tools/cairn/remote.h"
#include "tools/cairn/run_output.h"
#include "tools/serve/run_view.h"

namespace cairn::cli {
namespace {

using std::chrono::milliseconds;

struct KillOptions {
  bool all = false;
  std::string workflow;
  std::string run;
  std::string reason;
  std::string timeout = "30s";
  bool release = false;
  bool list = false;
};

// Which switch the flags name: exactly one of --all, --workflow, RUN.
Result<engine::KillSwitch> Target(const KillOptions& options) {
  const int named =
      (options.all ? 1 : 0) + (options.workflow.empty() ? 0 : 1) + (options.run.empty() ? 0 : 1);
  if (named != 1) {
    return Status::InvalidArgument(
        "name exactly one kill switch: --all, --workflow NS/NAME or a run id" +
        std::string(named == 0 ? " (or --list to see the engaged ones)" : ""));
  }
  engine::KillSwitch kill;
  if (options.all) {
    kill.scope = engine::KillSwitch::Scope::kAll;
  } else if (!options.workflow.empty()) {
    kill.scope = engine::KillSwitch::Scope::kWorkflow;
    kill.target = options.workflow;
    const size_t slash = kill.target.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == kill.target.size() ||
        kill.target.find('/', slash + 1) != std::string::npos) {
      return Status::InvalidArgument("--workflow '" + kill.target +
                                     "': expected NAMESPACE/NAME, as 'cairn workflow list' shows "
                                     "it (without a version: a switch covers every version)");
    }
  } else {
    auto run = RunId::Parse(options.run);
    if (!run.ok()) return run.status().WithContext("run id '" + options.run + "'");
    kill.scope = engine::KillSwitch::Scope::kRun;
    kill.target = run->str();
  }
  kill.reason = options.reason;
  return kill;
}

// A switch on one run that has already stopped would cover nothing: refuse it, naming why.
Status CheckRunTarget(const storage::Store& store, const engine::KillSwitch& kill) {
  if (kill.scope != engine::KillSwitch::Scope::kRun) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(storage::RunHeader h, store.GetRun(RunId::FromTrusted(kill.target)));
  if (storage::IsTerminal(h.status)) {
    return Status::FailedPrecondition("run " + kill.target + " has already stopped (" +
                                      std::string(storage::Name(h.stop_reason)) +
                                      "); there is nothing to kill");
  }
  return Status::Ok();
}

// The engaged switches, as KillSwitchJson forms, from the data directory or the server.
Result<std::vector<Json>> ReadSwitches(const GlobalOptions& global) {
  std::vector<Json> out;
  if (IsRemote(global)) {
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<serve::Client> client, ConnectRemote(global));
    CAIRN_ASSIGN_OR_RETURN(Json listed, client->Get("/v1/kill-switches"));
    for (Json& kill : listed["kill_switches"]) out.push_back(std::move(kill));
    return out;
  }
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store, OpenStoreReadOnly(global));
  CAIRN_ASSIGN_OR_RETURN(std::vector<engine::KillSwitch> kills, engine::ReadKillSwitches(*store));
  for (const engine::KillSwitch& kill : kills) out.push_back(serve::KillSwitchJson(kill));
  return out;
}

int List(const GlobalOptions& global) {
  auto kills = ReadSwitches(global);
  if (!kills.ok()) return Fail(global, kills.status());
  if (global.output == OutputFormat::kJson) {
    for (const Json& kill : *kills) *global.out << JsonLine(kill) << '\n';
    return kExitOk;
  }
  if (kills->empty()) {
    *global.out << "no kill switch is engaged\n";
    return kExitOk;
  }
  auto cell = [](const Json& kill, const char* key) {
    const std::string text = JsonText(kill, key);
    return text.empty() ? std::string("-") : text;
  };
  std::vector<std::vector<std::string>> rows;
  for (const Json& kill : *kills) {
    rows.push_back({JsonText(kill, "scope"), cell(kill, "target"), cell(kill, "engaged"),
                    cell(kill, "engaged_by"), cell(kill, "reason")});
  }
  PrintTable(*global.out, {"SCOPE", "TARGET", "ENGAGED", "BY", "REASON"}, rows);
  return kExitOk;
}

// "the kill switch of workflow ns/name (engaged by ops): incident 7", from a KillSwitchJson.
std::string DescribeSwitch(const Json& kill) {
  engine::KillSwitch described;
  const std::string scope = JsonText(kill, "scope");
  described.scope = scope == "workflow" ? engine::KillSwitch::Scope::kWorkflow
                    : scope == "run"    ? engine::KillSwitch::Scope::kRun
                                        : engine::KillSwitch::Scope::kAll;
  described.target = JsonText(kill, "target");
  described.reason = JsonText(kill, "reason");
  described.actor.name = JsonText(kill, "engaged_by");
  return engine::DescribeKillSwitch(described);
}

void PrintReleased(const GlobalOptions& global, const engine::KillSwitch& kill) {
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"released", serve::KillSwitchJson(kill)}}) << '\n';
  } else {
    *global.out << "released " << engine::DescribeKillSwitch(kill) << '\n';
  }
}

std::string SwitchQuery(const engine::KillSwitch& kill) {
  std::string query = "/v1/kill-switches?scope=" + std::string(serve::KillScopeName(kill.scope));
  if (kill.scope != engine::KillSwitch::Scope::kAll) {
    query += "&target=" + serve::UrlEncode(kill.target);
  }
  return query;
}

int Release(const GlobalOptions& global, const KillOptions& options) {
  auto kill = Target(options);
  if (!kill.ok()) return Fail(global, kill.status());
  if (IsRemote(global)) {
    auto client = ConnectRemote(global);
    if (!client.ok()) return Fail(global, client.status());
    auto released = (*client)->Call("DELETE", SwitchQuery(*kill));
    if (!released.ok()) return Fail(global, released.status().WithContext("cannot release"));
    PrintReleased(global, *kill);
    return kExitOk;
  }
  return WithEngine(global, EngineUse::kDriveTouched, "cairn kill --release",
                    [&](engine::Engine& engine) {
                      Status released = engine.ReleaseKillSwitch(kill->scope, kill->target);
                      if (!released.ok())
                        return Fail(global, released.WithContext("cannot release"));
                      PrintReleased(global, *kill);
                      return kExitOk;
                    });
}

// What engaging printed: the switch and each covered run as it was at the end of the wait
// (views as GET /v1/runs/{id} shows them). Exit 1 when one had not stopped.
int PrintEngaged(const GlobalOptions& global, const KillOptions& options, const Json& kill,
                 const std::vector<Json>& views) {
  bool all_stopped = true;
  Json runs = Json::array();
  std::vector<std::vector<std::string>> rows;
  for (const Json& view : views) {
    auto status = storage::ParseRunStatus(JsonText(view, "status"));
    all_stopped = all_stopped && status.ok() && storage::IsTerminal(*status);
    const std::string reason = JsonText(view, "stop_reason");
    runs.push_back({{"run_id", JsonText(view, "run_id")},
                    {"status", JsonText(view, "status")},
                    {"stop_reason", reason.empty() ? "none" : reason},
                    {"workflow", ViewWorkflowLabel(view)}});
    rows.push_back({JsonText(view, "run_id"), StatusLabelOf(view), ViewWorkflowLabel(view)});
  }
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"kill_switch", kill}, {"runs", runs}}) << '\n';
  } else {
    *global.out << "engaged " << DescribeSwitch(kill) << '\n';
    if (!rows.empty()) PrintTable(*global.out, {"RUN", "STATUS", "WORKFLOW"}, rows);
    *global.out << views.size() << (views.size() == 1 ? " run" : " runs")
                << " covered; new runs it covers are refused until '" << global.program
                << " kill --release'\n";
  }
  if (!all_stopped) {
    global.out->flush();
    *global.err << "some covered runs had not stopped after " << options.timeout
                << "; each stops at its next transition\n";
    return kExitFailed;
  }
  return kExitOk;
}

// A switch on one run that has already stopped would cover nothing: refuse it, naming why
// (`view`: the run as GET /v1/runs/{id} shows it).
Status CheckRunView(const Json& view) {
  auto status = storage::ParseRunStatus(JsonText(view, "status"));
  if (status.ok() && storage::IsTerminal(*status)) {
    return Status::FailedPrecondition("run " + JsonText(view, "run_id") + " has already stopped (" +
                                      JsonText(view, "stop_reason") +
                                      "); there is nothing to kill");
  }
  return Status::Ok();
}

int RemoteEngage(const GlobalOptions& global, const KillOptions& options,
                 const engine::KillSwitch& kill, milliseconds timeout) {
  auto client = ConnectRemote(global);
  if (!client.ok()) return Fail(global, client.status());
  if (kill.scope == engine::KillSwitch::Scope::kRun) {
    auto view = (*client)->Get(RunPath(kill.target));
    Status target = view.ok() ? CheckRunView(*view) : view.status();
    if (!target.ok()) return Fail(global, target.WithContext("cannot kill"));
  }
  Json body{{"scope", serve::KillScopeName(kill.scope)}, {"reason", kill.reason}};
  if (kill.scope != engine::KillSwitch::Scope::kAll) body["target"] = kill.target;
  auto engaged = (*client)->Post("/v1/kill-switches", body);
  if (!engaged.ok()) {
    return Fail(global, engaged.status().WithContext("cannot engage the kill switch"));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<Json> views;
  for (const Json& run : (*engaged)["runs"]) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    auto followed = FollowRun(**client, run.get<std::string>(), std::max(left, milliseconds(1)),
                              FollowUntil::kStopped);
    if (!followed.ok()) return Fail(global, followed.status());
    views.push_back(std::move(followed->view));  // its status says where it got to
  }
  return PrintEngaged(global, options, (*engaged)["kill_switch"], views);
}

int Engage(const GlobalOptions& global, const KillOptions& options) {
  auto kill = Target(options);
  if (!kill.ok()) return Fail(global, kill.status());
  auto timeout = ParseDurationFlag(options.timeout, "--timeout");
  if (!timeout.ok()) return Fail(global, timeout.status());
  if (kill->reason.size() > limits::approval_reason_bytes_max) {
    return Fail(global, "--reason is longer than " +
                            std::to_string(limits::approval_reason_bytes_max) + " bytes");
  }
  if (IsRemote(global)) return RemoteEngage(global, options, *kill, *timeout);
  kill->actor = storage::Actor{global.actor.empty() ? "cli" : global.actor, "operator"};
  return WithEngine(global, EngineUse::kDriveTouched, "cairn kill", [&](engine::Engine& engine) {
    Status target = CheckRunTarget(engine.store(), *kill);
    if (!target.ok()) return Fail(global, target.WithContext("cannot kill"));
    // The runs to watch stop: those the switch covered when it was engaged (the engine
    // refuses new ones from then on).
    auto covered = engine.EngageKillSwitch(*kill);
    if (!covered.ok()) {
      return Fail(global, covered.status().WithContext("cannot engage the kill switch"));
    }
    const auto engaged_switch = [&] {
      for (const engine::KillSwitch& k : engine.KillSwitches()) {
        if (k.scope == kill->scope && k.target == kill->target) return k;
      }
      return *kill;
    }();
    const auto deadline = std::chrono::steady_clock::now() + *timeout;
    std::vector<Json> views;
    for (const RunId& run : *covered) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      (void)engine.Wait(run, std::max(left, milliseconds(1)));  // the view says where it got to
      auto view = serve::ReadRunView(engine.store(), run);
      if (!view.ok()) return Fail(global, view.status());
      views.push_back(serve::RunViewToJson(*view));
    }
    return PrintEngaged(global, options, serve::KillSwitchJson(engaged_switch), views);
  });
}

}  // namespace

void AddKillCommand(CLI::App& app, GlobalOptions& global) {
  auto options = std::make_shared<KillOptions>();
  CLI::App* kill = app.add_subcommand(
      "kill",
      "Engage a durable kill switch (every run, a workflow's runs, or one run): covered runs "
      "stop at their next transition and new ones are refused; --release, --list");
  kill->add_option("run", options->run, "Run id: a switch for this run only")->type_name("RUN");
  kill->add_flag("--all", options->all, "The global switch: every run");
  kill->add_option("--workflow", options->workflow, "Every run of this workflow (any version)")
      ->type_name("NS/NAME");
  kill->add_option("--reason", options->reason, "Why, recorded in the switch and the runs")
      ->type_name("TEXT");
  kill->add_option("--timeout", options->timeout, "Wait at most DUR for the covered runs to stop")
      ->type_name("DUR")
      ->capture_default_str();
  kill->add_flag("--release", options->release, "Release the named switch instead");
  kill->add_flag("--list", options->list, "List the engaged switches");
  SetAction(
      kill, global,
      [&global, options] {
        if (options->list) {
          if (options->release || options->all || !options->workflow.empty() ||
              !options->run.empty()) {
            return Fail(global, "--list takes no switch to name");
          }
          return List(global);
        }
        return options->release ? Release(global, *options) : Engage(global, *options);
      },
      Reach::kRemoteToo);
}

}  // namespace cairn::cli
