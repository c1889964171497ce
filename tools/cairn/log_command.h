// `cairn log`: inspect the event log of a data directory.
//
//   cairn log list   [--status S] [--limit N] [--after RUN]   runs, one per row or JSON line
//   cairn log dump   RUN [--from SEQ] [--limit N]             a run's events as JSON lines
//   cairn log verify [RUN...]                                 the runs' hash chains
//   cairn log demo   [--runs N]                               writes example runs (demo_command.h)
//
// list, dump and verify open the directory read-only (no lock), so they work beside a
// running owner and on copies. Exit codes are those of global_options.h: verify returns
// kExitFailed when a chain is broken; any command returns kExitError when it cannot run.
#pragma once

#include <string>
#include <vector>

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Verifies the hash chains of the named runs (all runs when `runs` is empty), printing a
// line per broken run (-o json: a report per run) and a summary; with `check_headers`
// also each run header against its history (`cairn audit verify`). Exit kExitFailed when
// one fails, kExitError when it cannot run.
int VerifyCommand(const GlobalOptions& global, const std::vector<std::string>& runs,
                  bool check_headers);

// Adds the `log` command group to `app`. `global` must outlive `app`'s parse().
void AddLogCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
