// `cairn replay`: re-runs the interpreter over recorded histories (replay/replayer.h) and
// reports the first event where the code no longer produces what the log holds.
//
//   cairn replay RUN...                 [--definition FILE] [--policy FILE] [--agent NAME]
//   cairn replay --all [--workflow W]   [--definition FILE] [--policy FILE] [--agent NAME]
//
// Reads the data directory without the owner lock and without writing (beside a running
// engine, or on a copy while its engine is stopped). No tool is called; no agent or
// network either, except the counterfactual agent of --agent (its model or program).
// --definition replays against a new version of the runs' workflow (with --all, only runs
// of that workflow are replayed); tools its new tasks call are looked up in --tools. Each
// divergence is one line (-o json: {"divergence": {run_id, seq, task_path, recorded, produced,
// note}}); the last line is the summary: runs replayed, matched, diverged, events/s (-o json:
// {"summary": {...}}). With --all on a terminal, progress goes to stderr.
//
// Counterfactual replay (replay/counterfactual.h): --policy FILE asks that policy every
// verdict question the runs asked theirs and compares budget caps and kill switches;
// --agent NAME asks that agent of the agents file at every recorded decision (its read
// tools are not called). Per run that would have differed: a header and one line per
// point (-o json: {"difference": {...}} each); the summary adds how many runs would have
// differed at how many of the points asked (-o json: points, runs_with_differences,
// differences).
//
// Exit codes (global_options.h): kExitOk when every run matched (differences alone are
// not a failure); kExitFailed when one diverged; kExitError when the command cannot run
// (bad usage, the data directory, a definition or policy file that does not load, an
// agent the agents file does not define, a run that is unknown or cannot be read back).
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds the `replay` command to `app`. `global` must outlive `app`'s parse().
void AddReplayCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
