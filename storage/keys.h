// The byte layout of every key in the store. storage/FORMAT.md is the prose version;
// the two must agree.
//
// All integers in keys are big-endian so that byte order is numeric order. Run ids
// never contain 0x00 (see base/ids.h), so `run_id ‖ 0x00` is a prefix-free run prefix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "storage/event.h"

namespace cairn::storage::keys {

// Column family names, in the order the store opens them.
inline constexpr const char* kDefaultFamily = "default";
inline constexpr const char* kEventsFamily = "events";
inline constexpr const char* kRunsFamily = "runs";
inline constexpr const char* kActiveFamily = "active";
inline constexpr const char* kStatusIndexFamily = "status_index";
inline constexpr const char* kTimersFamily = "timers";
inline constexpr const char* kDedupeFamily = "dedupe";
inline constexpr const char* kDefinitionsFamily = "definitions";
inline constexpr const char* kBlobsFamily = "blobs";
inline constexpr const char* kWorkflowsFamily = "workflows";

// In the default family.
inline constexpr std::string_view kFormatVersionKey = "cairn.format_version";
inline constexpr std::string_view kFormatVersion = "1";

void AppendBigEndian64(std::string* out, uint64_t v);
uint64_t ReadBigEndian64(std::string_view in);  // in.size() >= 8

// events: run_id ‖ 0x00 ‖ seq(u64 BE)  →  encoded Event
std::string EventKey(const RunId& run, uint64_t seq);
std::string EventPrefix(const RunId& run);     // run_id ‖ 0x00: every key of the run starts so
std::string EventPrefixEnd(const RunId& run);  // run_id ‖ 0x01: exclusive upper bound
// Splits an events key. False if it is not shaped like one.
bool ParseEventKey(std::string_view key, std::string_view* run, uint64_t* seq);

// runs: run_id  →  encoded RunHeader
// active: run_id  →  1 byte: RunStatus of a non-terminal run
// status_index: status(u8) ‖ run_id  →  empty
std::string StatusIndexKey(RunStatus status, const RunId& run);

// timers: (due_ns as u64 with the sign bit flipped, BE) ‖ run_id ‖ 0x00 ‖ timer_id
//         →  1 byte: TimerPurpose
std::string TimerKey(int64_t due_at_ns, const RunId& run, std::string_view timer_id);
// Upper bound (exclusive) for timers due at or before `due_at_ns`.
std::string TimerKeyUpperBound(int64_t due_at_ns);
bool ParseTimerKey(std::string_view key, int64_t* due_at_ns, std::string_view* run,
                   std::string_view* timer_id);

// dedupe: start_key  →  run_id
// definitions: sha256(32 bytes)  →  definition bytes
// blobs: sha256(32 bytes)  →  blob bytes
// workflows: namespace ‖ 0x00 ‖ name ‖ 0x00 ‖ version  →  sha256(32) ‖ applied_at_ns(u64 BE)
std::string WorkflowKey(std::string_view ns, std::string_view name, std::string_view version);
bool ParseWorkflowKey(std::string_view key, std::string* ns, std::string* name,
                      std::string* version);

}  // namespace cairn::storage::keys
