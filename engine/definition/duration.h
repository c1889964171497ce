// Durations as definitions write them: ISO 8601 text or the DSL's object form.
//
// Both resolve to whole milliseconds at load time (fractions below a millisecond are
// dropped). Years and months are refused: they have no fixed length. A duration given
// as a runtime expression is not supported (the loader refuses it before calling here).
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/limits.h"
#include "base/status.h"

namespace cairn::engine {

// The longest duration a definition may hold outside retry policies (waits, timeouts,
// retry time limits): 366 days. Retry delays and jitter are bounded by
// limits::retry_delay_ms_max instead.
inline constexpr uint64_t kDefinitionDurationMsMax = 366ull * 24 * 3600 * 1000;

// Parses "P[nW][nD][T[nH][nM][nS]]" (each n an unsigned decimal, optionally with a
// fraction: "PT1.5S", "P1DT12H", "PT0.250S"). Returns the milliseconds, or
// kInvalidArgument naming the text and what was wrong (also when it exceeds `ms_max`).
Result<uint64_t> ParseIsoDuration(std::string_view text, uint64_t ms_max);

// The object form {days, hours, minutes, seconds, milliseconds}: at least one property,
// each a non-negative integer. kInvalidArgument naming the bad property, or when the
// total exceeds `ms_max`.
Result<uint64_t> DurationFromObject(const Json& object, uint64_t ms_max);

// "366 days", "1h 30m", "250ms": a duration for messages.
std::string FormatDurationMs(uint64_t ms);

}  // namespace cairn::engine
