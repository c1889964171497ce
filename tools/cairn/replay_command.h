// `cairn replay`: re-runs the interpreter over recorded histories (replay/replayer.h) and
// reports the first event where the code no longer produces what the log holds.
//
//   cairn replay RUN...                 [--definition FILE]
//   cairn replay --all [--workflow W]   [--definition FILE]
//
// Reads the data directory without the owner lock and without writing (beside a running
// engine, or on a copy while its engine is stopped). No tool, agent or network is
// called. --definition replays against a new version of the runs' workflow (with --all,
// only runs of that workflow are replayed); tools its new tasks call are looked up in
// --tools. Each divergence is one line (-o json: {"divergence": {run_id, seq, task_path,
// recorded, produced, note}}); the last line is the summary: runs replayed, matched,
// diverged, events/s (-o json: {"summary": {...}}). With --all on a terminal, progress
// goes to stderr.
//
// Exit codes (global_options.h): kExitOk when every run matched; kExitFailed when one
// diverged; kExitError when the command cannot run (bad usage, the data directory, a
// definition file that does not load, a run that is unknown or cannot be read back).
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds the `replay` command to `app`. `global` must outlive `app`'s parse().
void AddReplayCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
