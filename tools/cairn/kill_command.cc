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

int List(const GlobalOptions& global) {
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  auto kills = engine::ReadKillSwitches(**store);
  if (!kills.ok()) return Fail(global, kills.status());
  if (global.output == OutputFormat::kJson) {
    for (const engine::KillSwitch& kill : *kills)
      *global.out << JsonLine(serve::KillSwitchJson(kill)) << '\n';
    return kExitOk;
  }
  if (kills->empty()) {
    *global.out << "no kill switch is engaged\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const engine::KillSwitch& kill : *kills) {
    rows.push_back({std::string(serve::KillScopeName(kill.scope)),
                    kill.scope == engine::KillSwitch::Scope::kAll ? "-" : kill.target,
                    kill.engaged_at_ns == 0 ? "-" : storage::FormatTimeRfc3339(kill.engaged_at_ns),
                    kill.actor.name.empty() ? "-" : kill.actor.name,
                    kill.reason.empty() ? "-" : kill.reason});
  }
  PrintTable(*global.out, {"SCOPE", "TARGET", "ENGAGED", "BY", "REASON"}, rows);
  return kExitOk;
}

int Release(const GlobalOptions& global, const KillOptions& options) {
  auto kill = Target(options);
  if (!kill.ok()) return Fail(global, kill.status());
  return WithEngine(
      global, EngineUse::kDriveTouched, "cairn kill --release", [&](engine::Engine& engine) {
        Status released = engine.ReleaseKillSwitch(kill->scope, kill->target);
        if (!released.ok()) return Fail(global, released.WithContext("cannot release"));
        if (global.output == OutputFormat::kJson) {
          *global.out << JsonLine({{"released", serve::KillSwitchJson(*kill)}}) << '\n';
        } else {
          *global.out << "released " << engine::DescribeKillSwitch(*kill) << '\n';
        }
        return kExitOk;
      });
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
    bool all_stopped = true;
    nlohmann::json runs = nlohmann::json::array();
    std::vector<std::vector<std::string>> rows;
    for (const RunId& run : *covered) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      auto waited = engine.Wait(run, std::max(left, milliseconds(1)));
      auto header = engine.store().GetRun(run);
      if (!header.ok()) return Fail(global, header.status());
      const bool stopped = storage::IsTerminal(header->status);
      all_stopped = all_stopped && stopped;
      runs.push_back({{"run_id", run.str()},
                      {"status", storage::Name(header->status)},
                      {"stop_reason", storage::Name(header->stop_reason)},
                      {"workflow", WorkflowLabel(*header)}});
      rows.push_back({run.str(), StatusLabel(*header), WorkflowLabel(*header)});
      (void)waited;  // the header says where the run got to
    }
    if (global.output == OutputFormat::kJson) {
      *global.out << JsonLine(
                         {{"kill_switch", serve::KillSwitchJson(engaged_switch)}, {"runs", runs}})
                  << '\n';
    } else {
      *global.out << "engaged " << engine::DescribeKillSwitch(engaged_switch) << '\n';
      if (!rows.empty()) PrintTable(*global.out, {"RUN", "STATUS", "WORKFLOW"}, rows);
      *global.out << covered->size() << (covered->size() == 1 ? " run" : " runs")
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
  SetAction(kill, global, [&global, options] {
    if (options->list) {
      if (options->release || options->all || !options->workflow.empty() || !options->run.empty()) {
        return Fail(global, "--list takes no switch to name");
      }
      return List(global);
    }
    return options->release ? Release(global, *options) : Engage(global, *options);
  });
}

}  // namespace cairn::cli
