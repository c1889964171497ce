// `cairn run`: start, inspect and steer runs of applied workflows.
//
//   cairn run start    WORKFLOW [--input JSON|@FILE|@-] [--id ID] [--wait [--timeout DUR]]
//   cairn run list     [--status S] [--workflow W] [--limit N] [--after RUN]
//   cairn run describe RUN
//   cairn run show     RUN                       the run's events as a timeline
//   cairn run signal   RUN --type T [--data JSON|@FILE] [--source S] [--event-id ID]
//   cairn run cancel   RUN [--reason R]
//   cairn run kill     RUN [--reason R]
//   cairn run resolve  RUN --outcome ok|failed|abandon [--result JSON|@FILE] [--reason R]
//   cairn run resume   [--timeout DUR]
//
// list, describe and show open the data directory read-only (no lock): they work beside
// a running owner. The others embed an engine that owns the directory for the command's
// duration: they record what they were asked durably, then (except `start` without
// --wait) drive the run on and print its new state. Exit codes are those of
// global_options.h; tools/README.md says which state gives which code.
//
// With an address (--address, $CAIRN_ADDRESS; tools/cairn/remote.h) every command but
// `resume` asks the server instead, follows the run there where the embedded mode would
// drive it, and prints the same output with the same exit code (tools/cairn/run_output.h);
// `resume` refuses: the server resumes its runs itself.
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds the `run` command group to `app`. `global` must outlive `app`'s parse().
void AddRunCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
