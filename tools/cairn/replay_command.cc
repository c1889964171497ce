#include "tools/cairn/replay_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/limits.h"
#include "engine/core/standalone_decider.h"
#include "policy/policy.h"
#include "replay/replay_runs.h"
#include "replay/replayer.h"

namespace cairn::cli {
namespace {

struct ReplayCommandOptions {
  std::vector<std::string> runs;
  bool all = false;
  std::string workflow;
  std::string definition_file;
  std::string policy_file;  // --policy: counterfactual policy
  std::string agent;        // --agent: counterfactual agent (of the agents file)
  size_t jobs = 0;          // --jobs: replaying threads; 0: DefaultReplayJobs(runs)
};

struct Tally {
  uint64_t runs = 0;
  uint64_t matched = 0;
  uint64_t diverged = 0;
  uint64_t errors = 0;
  uint64_t events = 0;
  // Counterfactual replay only.
  bool counterfactual = false;
  uint64_t points = 0;
  uint64_t runs_with_differences = 0;
  uint64_t differences = 0;
};

// "NS/NAME" or "NAME" against a run header.
bool WorkflowMatches(const std::string& filter, const storage::RunHeader& h) {
  if (filter.empty()) return true;
  const size_t slash = filter.find('/');
  if (slash == std::string::npos) return h.workflow_name == filter;
  return h.workflow_namespace == filter.substr(0, slash) &&
         h.workflow_name == filter.substr(slash + 1);
}

Result<std::shared_ptr<const engine::Definition>> LoadDefinitionFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("--definition " + path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return engine::LoadDefinition(text.str(), path);
}

// The runs to replay: the named ones, or every run (in id order) that passes the filters.
Result<std::vector<RunId>> SelectRuns(const storage::Store& store,
                                      const ReplayCommandOptions& options,
                                      const engine::Definition* definition) {
  std::vector<RunId> ids;
  if (!options.all) {
    for (const std::string& text : options.runs) {
      auto id = RunId::Parse(text);
      if (!id.ok()) return id.status().WithContext("run id '" + text + "'");
      ids.push_back(*id);
    }
    return ids;
  }
  std::string after;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<storage::RunSummary> page,
                           store.ListRuns(std::nullopt, after, limits::list_runs_max));
    if (page.empty()) break;
    for (const storage::RunSummary& s : page) {
      after = s.run_id.str();
      if (options.workflow.empty() && definition == nullptr) {
        ids.push_back(s.run_id);
        continue;
      }
      Result<storage::RunHeader> h = store.GetRun(s.run_id);
      if (!h.ok()) continue;  // replaying it would fail the same way; VerifyRun says why
      if (!WorkflowMatches(options.workflow, *h)) continue;
      if (definition != nullptr && (h->workflow_namespace != definition->namespace_ ||
                                    h->workflow_name != definition->name)) {
        continue;
      }
      ids.push_back(s.run_id);
    }
  }
  return ids;
}

void PrintDivergence(const GlobalOptions& global, const replay::Divergence& d) {
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"divergence", replay::DivergenceToJson(d)}}) << '\n';
    return;
  }
  *global.out << replay::DescribeDivergence(d) << '\n'
              << "  log:  " << JsonLine(d.recorded) << '\n'
              << "  code: " << JsonLine(d.produced) << '\n';
}

// A run's differences: a header and one line each (-o json: one {"difference": ...} each).
void PrintDifferences(const GlobalOptions& global, const replay::ReplayResult& r) {
  if (r.differences.empty()) return;
  if (global.output == OutputFormat::kJson) {
    for (const replay::Difference& d : r.differences) {
      *global.out << JsonLine({{"difference", replay::DifferenceToJson(d)}}) << '\n';
    }
    return;
  }
  *global.out << "run " << r.run_id.str() << " would have differed at " << r.differences.size()
              << " of " << r.points.total() << " point" << (r.points.total() == 1 ? "" : "s")
              << ":\n";
  for (const replay::Difference& d : r.differences) {
    *global.out << "  " << replay::DescribeDifference(d) << '\n';
  }
}

void PrintSummary(const GlobalOptions& global, const Tally& t, int64_t elapsed_ns) {
  const double seconds = static_cast<double>(std::max<int64_t>(elapsed_ns, 1)) / 1e9;
  const double rate = static_cast<double>(t.events) / seconds;
  if (global.output == OutputFormat::kJson) {
    nlohmann::json summary{
        {"runs", t.runs},         {"matched", t.matched},
        {"diverged", t.diverged}, {"errors", t.errors},
        {"events", t.events},     {"events_per_second", static_cast<uint64_t>(rate)}};
    if (t.counterfactual) {
      summary["points"] = t.points;
      summary["runs_with_differences"] = t.runs_with_differences;
      summary["differences"] = t.differences;
    }
    *global.out << JsonLine({{"summary", summary}}) << '\n';
    return;
  }
  *global.out << "replayed " << t.runs << " run" << (t.runs == 1 ? "" : "s") << ": " << t.matched
              << " matched, " << t.diverged << " diverged";
  if (t.errors != 0) *global.out << ", " << t.errors << " could not be replayed";
  if (t.counterfactual) {
    *global.out << "; " << t.runs_with_differences << " of " << t.runs << " run"
                << (t.runs == 1 ? "" : "s") << " would have differed at " << t.differences << " of "
                << t.points << " point" << (t.points == 1 ? "" : "s");
  }
  *global.out << "; " << t.events << " events, " << static_cast<uint64_t>(rate) << " events/s\n";
}

// --policy FILE: the counterfactual policy. Errors on one line, naming the file.
Result<std::shared_ptr<const policy::Policy>> LoadCounterfactualPolicy(const std::string& path) {
  auto loaded = policy::Policy::LoadFile(path);
  if (loaded.ok()) return loaded;
  std::string message = loaded.status().message();
  std::replace(message.begin(), message.end(), '\n', ';');
  return Status(loaded.status().code(), "--policy: " + message);
}

// --agent NAME: asks that agent of the agents file at every recorded decision, with the
// recorded request. Its own HTTP and programs run (the user asked for that agent); the
// read tools it calls do not: each call fails (kFailedPrecondition) with a message it sees.
Result<replay::DecisionHook> CounterfactualAgent(const GlobalOptions& global,
                                                 const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<agent::AgentRegistry> agents, LoadAgents(global));
  if (!agents) {
    return Status::NotFound("--agent " + name +
                            ": there is no agents file (--agents FILE, $CAIRN_AGENTS or " +
                            global.data_dir + "/agents.yaml)");
  }
  std::shared_ptr<agent::Agent> agent = agents->Find(name);
  if (!agent) {
    return Status::NotFound("--agent " + name + ": the agents file defines no agent named '" +
                            name + "'");
  }
  auto no_tools = [](const std::string& tool, const Json&, std::chrono::milliseconds) {
    return Result<Json>(Status::FailedPrecondition(
        "tools are not called in counterfactual replay (tool '" + tool + "')"));
  };
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<engine::StandaloneDecider> decider,
                         engine::StandaloneDecider::Create(*global.clock, no_tools));
  return replay::DecisionHook(
      [decider, agent](const RunId& run_id, const engine::Definition& definition,
                       const engine::DecisionCommand& command) -> Result<storage::AgentDecided> {
        return decider->Decide(*agent, run_id.str(), definition, command);
      });
}

// One run's result: tallied, its differences and divergence printed, progress shown.
void Count(GlobalOptions& global, const RunId& id, Result<replay::ReplayResult> r, size_t total,
           bool progress, Tally& tally) {
  ++tally.runs;
  if (!r.ok()) {
    ++tally.errors;
    // A run that cannot be read back is named and skipped; the others still replay.
    (void)Fail(global, "run " + id.str() + ": " + r.status().message());
    return;
  }
  tally.events += r->events;
  tally.points += r->points.total();
  tally.differences += r->differences.size();
  if (!r->differences.empty()) ++tally.runs_with_differences;
  if (progress && (r->divergence || !r->differences.empty())) {
    *global.err << '\r' << std::string(40, ' ') << '\r';
  }
  PrintDifferences(global, *r);
  if (r->divergence) {
    ++tally.diverged;
    PrintDivergence(global, *r->divergence);
  } else {
    ++tally.matched;
  }
  if (progress && (tally.runs % 64 == 0 || tally.runs == total)) {
    *global.err << "\rreplayed " << tally.runs << '/' << total << std::flush;
  }
}

int Run(GlobalOptions& global, const ReplayCommandOptions& options) {
  if (options.all == !options.runs.empty()) {
    return Fail(global, "name the runs to replay, or --all (not both)");
  }
  if (!options.all && !options.workflow.empty()) {
    return Fail(global, "--workflow selects runs for --all; it cannot narrow named runs");
  }
  replay::ReplayOptions replay_options;
  if (!options.definition_file.empty()) {
    auto def = LoadDefinitionFile(options.definition_file);
    if (!def.ok()) return Fail(global, def.status());
    replay_options.definition = *def;
  }
  if (!options.policy_file.empty()) {
    auto policy = LoadCounterfactualPolicy(options.policy_file);
    if (!policy.ok()) return Fail(global, policy.status());
    replay_options.counterfactual_policy = *policy;
  }
  if (!options.agent.empty()) {
    auto hook = CounterfactualAgent(global, options.agent);
    if (!hook.ok()) return Fail(global, hook.status());
    replay_options.counterfactual_agent = std::move(hook).value();
  }
  auto tools = LoadToolCatalog(global);
  if (!tools.ok()) return Fail(global, tools.status());
  replay_options.catalog = &tools->catalog;
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  auto runs = SelectRuns(**store, options, replay_options.definition.get());
  if (!runs.ok()) return Fail(global, runs.status());

  const bool progress =
      options.all && ::isatty(STDERR_FILENO) == 1 && global.output == OutputFormat::kText;
  Tally tally;
  tally.counterfactual =
      replay_options.counterfactual_policy || replay_options.counterfactual_agent;
  const int64_t started = global.clock->MonotonicNanos();
  // Results come back in run order, whatever thread replayed them.
  const size_t jobs = options.jobs != 0 ? options.jobs : replay::DefaultReplayJobs(runs->size());
  replay::BatchReplayer replayer(**store, replay_options, jobs);
  replayer.Replay(*runs, [&](size_t index, Result<replay::ReplayResult> r) {
    Count(global, (*runs)[index], std::move(r), runs->size(), progress, tally);
  });
  if (progress) *global.err << '\n';
  PrintSummary(global, tally, global.clock->MonotonicNanos() - started);
  if (tally.errors != 0) return kExitError;
  return tally.diverged != 0 ? kExitFailed : kExitOk;
}

}  // namespace

void AddReplayCommand(CLI::App& app, GlobalOptions& global) {
  auto options = std::make_shared<ReplayCommandOptions>();
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Re-run recorded runs through the interpreter with everything nondeterministic taken "
      "from the log; report the first event the code no longer produces");
  replay->add_option("runs", options->runs, "Run ids to replay")->type_name("RUN...");
  replay->add_flag("--all", options->all, "Replay every run in the data directory");
  replay->add_option("--workflow", options->workflow, "With --all: only this workflow's runs")
      ->type_name("NS/NAME");
  replay
      ->add_option("--definition", options->definition_file,
                   "Replay against this definition (a new version of the runs' workflow)")
      ->type_name("FILE");
  replay
      ->add_option("--policy", options->policy_file,
                   "Counterfactual: re-evaluate every recorded verdict, budget cap and kill "
                   "switch under this policy and show where it would have decided otherwise")
      ->type_name("FILE");
  replay
      ->add_option("--agent", options->agent,
                   "Counterfactual: ask this agent (of the agents file) at every recorded "
                   "decision and show where it would have chosen otherwise")
      ->type_name("NAME");
  replay
      ->add_option("--jobs,-j", options->jobs,
                   "Replay this many runs at once, each on its own thread (default: one "
                   "per 4000 runs, at most the machine's hardware threads); output stays "
                   "in run order")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, size_t{256}));
  SetAction(replay, global, [&global, options] { return Run(global, *options); });
}

}  // namespace cairn::cli
