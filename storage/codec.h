// Encoding events and run headers to and from their stored bytes (Cap'n Proto).
//
// Stored form: the standard (unpacked) Cap'n Proto serialization with a segment table,
// one message per value. Decoding never trusts its input: it reads it in place when it is
// word-aligned (otherwise from an aligned copy) under explicit traversal and nesting limits
// (limits::decode_*), rejects trailing bytes, and checks every field the rest of cairn
// relies on (run id syntax, 32-byte hashes, sizes). Corrupted or hostile bytes give
// kDataLoss; no exception escapes and nothing crashes.
//
// All functions are thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "storage/event.h"

namespace cairn::storage {

// Encodes `event`. Fails with kInvalidArgument (naming the field) if a field is out of
// bounds or the encoding would exceed limits::event_bytes_max. On success `*out` holds
// exactly the encoding (its previous content is replaced; its capacity is reused).
Status EncodeEvent(const Event& event, std::string* out);
Result<std::string> EncodeEvent(const Event& event);

// Decodes stored bytes. kDataLoss, with what was wrong, on any malformed input.
Result<Event> DecodeEvent(std::string_view bytes);
// The same into `*out`, overwriting it (for scans that reuse one Event). On error `*out`
// is unspecified but valid.
Status DecodeEvent(std::string_view bytes, Event* out);

Status EncodeRunHeader(const RunHeader& header, std::string* out);
Result<std::string> EncodeRunHeader(const RunHeader& header);
Result<RunHeader> DecodeRunHeader(std::string_view bytes);

}  // namespace cairn::storage
