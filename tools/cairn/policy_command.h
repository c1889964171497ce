// `cairn policy`: check policy files and ask them questions, before an operator applies
// one (format: policy/README.md). Neither command needs a data directory.
//
//   cairn policy validate FILE...
//   cairn policy explain  FILE --workflow NS/NAME --tool NAME [--effect read|write]
//                         [--risk low|medium|high|critical] [--arguments JSON|@FILE|@-]
//                         [--for-agent] [--run ID] [--task-path PATH]
//
// validate prints "FILE: ok — N rules, policy sha256:HEX" per valid file (-o json: one
// object per file {file, ok, name, rules, hash, problems}); an invalid file's problems go
// to stderr, one "cairn: FILE:LINE:COL: ..." line each. explain prints the verdict the
// policy gives that tool use (decision, rule, reason code, detail, approval settings) and
// the workflow's budget caps; --effect defaults to write and --risk to critical, which is
// how the engine judges a tool the catalog does not describe.
//
// Exit codes (global_options.h): kExitOk; kExitFailed when a policy file is invalid;
// kExitError when the command cannot run (an unreadable file, bad flags or arguments).
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds the `policy` command group to `app`. `global` must outlive `app`'s parse().
void AddPolicyCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
