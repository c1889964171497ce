// A run as people and the API see it: its header with what its history says about it
// (who started it and with what, how it stopped, the approval it waits on), read from the
// store. One form for `cairn run describe -o json` and `GET /v1/runs/{id}`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "base/json.h"
#include "base/status.h"
#include "engine/core/engine.h"
#include "storage/event.h"
#include "storage/store.h"

namespace cairn::serve {

struct RunView {
  storage::RunHeader header;
  storage::Actor started_by;
  Json input;
  std::optional<Json> output;  // completed
  storage::ErrorInfo error;    // stopped with an error
  std::string stop_detail;
  storage::Actor stopped_by;
  // Waiting on an event: the types its listen task accepts (from the definition).
  std::vector<std::string> awaited_types;
  // Waiting on an approval: its request (the run's last approval_requested event).
  std::optional<storage::ApprovalRequested> approval;
  Json approval_arguments;
};

// Reads the run; kNotFound for an unknown run, the store's errors otherwise.
Result<RunView> ReadRunView(const storage::Store& store, const RunId& run_id);

// One object: run_id, status, stop_reason, workflow {namespace, name, version, hash},
// started_by, created, updated, events, waiting_on, timers, awaited_types, approval,
// policy_hash, budget {limits, spent, reserved}, input, output, error, stop_detail,
// stopped_by. Field names are stable (documented in tools/README.md).
Json RunViewToJson(const RunView& view);

// A payload's JSON value, fetching blobs. Text that does not parse is shown as stored
// ({"unparsed_json": TEXT}).
Result<Json> PayloadValue(const storage::Store& store, const storage::Payload& payload);

Json ActorJson(const storage::Actor& actor);  // null when empty

// "all" | "workflow" | "run".
std::string_view KillScopeName(engine::KillSwitch::Scope scope);
// {scope, target (null for all), reason, engaged_by, engaged (RFC 3339 or null)}: one form
// for `cairn kill -o json` and /v1/kill-switches.
Json KillSwitchJson(const engine::KillSwitch& kill);
// "ok" | "failed" | "abandon" → the outcome of a resolution (`run resolve --outcome` and
// POST /v1/runs/{id}/resolve's "outcome"); nullopt for anything else.
std::optional<engine::EffectResolution::Outcome> ParseResolutionOutcome(std::string_view text);
// Whether a run header is of the referenced workflow (by hash, or namespace/name[:version]).
bool MatchesWorkflow(const engine::ParsedWorkflowRef& ref, const storage::RunHeader& header);
Json ErrorJson(const storage::ErrorInfo& error);  // null when empty

}  // namespace cairn::serve
