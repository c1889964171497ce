// Random but valid events, run headers and JSON for tests and benchmarks.
//
// Every generator draws only from the Random it is given, so a seed reproduces the same
// values on every platform. Values are valid for the codec (run ids parse, payloads are
// consistent, sizes are within limits for modest `approx_payload_bytes`), and each field
// is set to a non-default value often enough that round-trip tests exercise every field.
// Text is valid UTF-8 and may contain multi-byte characters and NUL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/ids.h"
#include "base/random.h"
#include "base/sha256.h"
#include "storage/event.h"

namespace cairn::testing {

// Number of interpretable body kinds: EventBody's alternatives without UnknownBody.
inline constexpr size_t kEventBodyKinds = std::variant_size_v<storage::EventBody> - 1;

// A body of a random kind (never UnknownBody). Payloads carry JSON of roughly
// `approx_payload_bytes` when inline.
storage::EventBody RandomEventBody(Random& rng, size_t approx_payload_bytes = 64);

// A random body a store accepts anywhere between a run's first and last event: never
// run_started, run_stopped, timer_fired or timer_cancelled (the store takes those only
// for outstanding timers), and a timer_scheduled gets an id no other timer of the run
// has. For random workloads (fault and kill tests).
storage::EventBody RandomMiddleEventBody(Random& rng, size_t approx_payload_bytes = 64);

// A body of kind `index` (EventBody alternative `index`, < kEventBodyKinds) with random
// values, each field non-default with high probability.
storage::EventBody RandomEventBodyOfKind(Random& rng, size_t index,
                                         size_t approx_payload_bytes = 64);

// A body of kind `index % kEventBodyKinds` in which EVERY field is non-default: enums
// are not their first value, flags are true, payloads are present, lists non-empty.
// Deterministic in `index`.
storage::EventBody SampleBody(size_t index);

// An event with a random run id, seq, time, prev hash, task path and body.
storage::Event RandomEvent(Random& rng, size_t approx_payload_bytes = 64);

// An event of run `run_id` at `seq`, chained to `prev_hash`, with a random body.
storage::Event RandomEvent(Random& rng, const RunId& run_id, EventSeq seq, const Sha256& prev_hash,
                           int64_t time_ns, size_t approx_payload_bytes = 64);

// A valid run id: sometimes generated (26 characters), sometimes 1..run_id_bytes_max
// characters of the whole allowed alphabet.
RunId RandomRunId(Random& rng);

// A run header with random values in every field.
storage::RunHeader RandomRunHeader(Random& rng);

// Valid JSON text (an object with strings, numbers, booleans, null, arrays and nested
// objects) of about `bytes` bytes (at least 2).
std::string MakeJson(Random& rng, size_t bytes);

}  // namespace cairn::testing
