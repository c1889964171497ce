// JSON values as cairn's engine sees them (workflow data, tool arguments and results).
//
// `Json` is nlohmann::json: objects keep their keys sorted, so Dump() of equal values gives
// equal bytes (what is hashed and persisted never depends on insertion order).
// Parsing is bounded (size and nesting) and never throws; dumping never throws (invalid
// UTF-8 in strings is replaced with U+FFFD).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace cairn {

using Json = nlohmann::json;

// Parses JSON text. kInvalidArgument naming `what` (e.g. "--input", "tool output"), the
// byte offset and what the parser expected; also when the text is larger than
// `bytes_max` or nests deeper than limits::json_depth_max.
Result<Json> ParseJson(std::string_view text, std::string_view what,
                       size_t bytes_max = 16 << 20, size_t depth_max = 0 /* json_depth_max */);

// Compact, canonical (sorted keys) JSON text: the bytes of nlohmann's
// `dump(-1, ' ', false, replace)`, written faster for ASCII text.
std::string DumpJson(const Json& value);
// nlohmann's dump itself, the reference DumpJson is tested against.
std::string DumpJsonReference(const Json& value);

// Nesting depth of `value` (scalars are 1).
size_t JsonDepth(const Json& value);

// "object", "array", "string", "number", "boolean", "null" — for error messages.
std::string_view JsonTypeName(const Json& value);

}  // namespace cairn
