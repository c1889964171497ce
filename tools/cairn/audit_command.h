// The offline audit commands (DESIGN.md §9). All open the data directory read-only (no
// lock): they work beside a running engine and on copies.
//
//   cairn trace RUN                      a readable timeline: each transition's time, task,
//                                        what happened (route, decision, verdict, approval,
//                                        commit, stop, ...), who or what decided, and why
//   cairn audit verify [RUN...|--all]    every hash chain and run header
//   cairn export RUN...|--all [--workflow NS/NAME] [--format jsonl] [--bytes]
//                                        one JSON object per event (tools/README.md lists
//                                        the fields), with the event's chain hash
//
// trace -o json prints one object per timeline entry {seq, time, task_path, what, by,
// summary, why, kind}; export always prints JSON lines. Exit codes (global_options.h):
// kExitOk; kExitFailed when audit verify finds a broken chain or header; kExitError when
// a command cannot run (unknown run, bad flags, the data directory).
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds `trace`, `audit` and `export` to `app`. `global` must outlive `app`'s parse().
void AddAuditCommands(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
