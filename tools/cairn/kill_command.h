// `cairn kill`: the operators' kill switches (engine.h KillSwitch). An engaged switch is
// durable: every run it covers stops (`killed`) at its next transition, no tool call or
// agent decision of such a run starts once the command has returned, and new runs it
// covers are refused, until it is released — by every engine that opens the data
// directory, this one and the next.
//
//   cairn kill --all               [--reason TEXT] [--timeout DUR]
//   cairn kill --workflow NS/NAME  [--reason TEXT] [--timeout DUR]
//   cairn kill RUN                 [--reason TEXT] [--timeout DUR]
//   cairn kill --release (--all | --workflow NS/NAME | RUN)
//   cairn kill --list
//
// Engaging opens the data directory as its owner (like `run signal`), records the switch,
// delivers the kill to the runs it covers that have not stopped and waits (--timeout,
// default 30s) for each to stop; it prints the switch and those runs (-o json: one object
// {kill_switch, runs: [{run_id, status, stop_reason}]}). Who engaged it is --as. --list
// reads the directory without the owner lock (beside a running engine).
//
// Exit codes (global_options.h): kExitOk; kExitFailed when a covered run had not stopped
// when --timeout ran out (the switch is engaged all the same: it stops at its next
// transition); kExitError when the command cannot run (bad target, unknown or stopped run,
// a switch that is not engaged for --release, the data directory).
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds the `kill` command to `app`. `global` must outlive `app`'s parse().
void AddKillCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
