// `cairn workflow`: workflow definitions (Open Workflow Specification documents).
//
//   cairn workflow validate FILE...   check definitions; needs no data directory
//   cairn workflow apply    FILE...   store them in the data directory (idempotent)
//   cairn workflow list               the applied versions (read-only, beside an owner)
//
// validate and apply check `call:` names against the tool catalog when there is one
// (--tools, $CAIRN_TOOLS or DIR/tools.yaml). Exit codes are those of global_options.h:
// kExitFailed when a definition is invalid (or its version already names other bytes),
// kExitError when the command cannot run (an unreadable file, a locked directory).
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

// Adds the `workflow` command group to `app`. `global` must outlive `app`'s parse().
void AddWorkflowCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
