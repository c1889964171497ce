// Events and run headers as JSON: the JSONL export format (`cairn log --json`, one event
// per line). This is a user-facing format: field names are stable snake_case and are
// only ever added, like the schema's.
//
// Event:
//   {
//     "run_id":    "01JD2K6Z8Q0000000000000000",
//     "seq":       3,
//     "time":      "2026-11-21T08:05:00.123456789Z",  // RFC 3339, UTC, always 9 digits
//     "time_ns":   1795248300123456789,               // nanoseconds since the Unix epoch
//     "prev_hash": "9f86d0...",                       // null for seq 0
//     "task_path": "/do/2/choosePlan",                // "" for run-level events
//     "kind":      "agent_decided",                   // KindName(): run_started, ...
//     "body":      { ... }                            // the kind's fields, see below
//   }
//
// Body fields are the schema's fields in snake_case, e.g. an agent_decided body:
//   {"agent", "model", "reason_code", "option", "rationale", "confidence", "steps_used",
//    "usage": {"prompt_tokens", "completion_tokens", "cost_micros", "cost_known", "calls"},
//    "options": [...], "request_blob", "response_blob", "duration_ms", "detail", "goal"}
// The kind "unknown" (written by a newer cairn) has the body {"which": <union member>}.
//
// Value rules, the same everywhere:
//   - digests are 64 lower-case hex characters; an all-zero digest (absent) is null;
//   - payloads: none -> null; inline JSON -> the JSON value itself, or
//     {"unparsed_json": "<text>"} if the text does not parse (or nests deeper than 256);
//     a blob reference -> {"blob": "<hex digest>"};
//   - enums are their Name(): "budget_exhausted", "require_approval", "timed_out", ...;
//   - error objects ({"type", "status", "title", "detail", "instance"}) and actors
//     ({"name", "role"}) are null when every field is empty;
//   - budget amounts are {"steps", "tokens", "cost_micros", "wall_ms", "tool_calls"};
//   - agent_decided "confidence" is null unless the agent reported one;
//   - times other than "time" stay integers in nanoseconds ("due_at_ns", ...), except a
//     run header's timers, which carry both (see below);
//   - a run header's "engine_state" (an internal snapshot) is summarized as
//     "engine_state_bytes": <size>.
//
// A run header is its schema's fields in snake_case; its outstanding "timers" are a list,
// [] when there are none, in scheduling order:
//   "timers": [{"timer_id":  "retry-3",
//               "due_at_ns": 1795248360000000000,
//               "due":       "2026-11-21T08:06:00.000000000Z",  // RFC 3339, as "time"
//               "purpose":   "retry_backoff"}]                  // Name(TimerPurpose)
//
// Strings are copied as stored. Text from a workflow is meant to be UTF-8 but is not
// checked, so dump with nlohmann::json::error_handler_t::replace.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "storage/event.h"

namespace cairn::storage {

nlohmann::json EventToJson(const Event& event);
nlohmann::json RunHeaderToJson(const RunHeader& header);
nlohmann::json PayloadToJson(const Payload& payload);

// "2026-11-21T08:05:00.123456789Z": RFC 3339, UTC, nine fractional digits, for any
// int64 (years 1677 to 2262); times before 1970 count back from the epoch.
std::string FormatTimeRfc3339(int64_t ns);

}  // namespace cairn::storage
