// The CTK's doc strings (workflow inputs, expected outputs and errors) as JSON values.
//
// A doc string is one YAML 1.2 document (JSON is a subset). Plain scalars are typed as the
// YAML 1.2 core schema says, the way cairn's definition loader types them: `null`, `~` and
// empty are null; `true`/`false` (three spellings each) booleans; decimal, 0o and 0x
// integers and decimal floats numbers; everything else, and every quoted or block scalar,
// a string. Mapping keys must be scalars and unique. yaml-cpp's exceptions stay inside.
//
// Pure function; thread-safe.
#pragma once

#include <string_view>

#include "base/json.h"
#include "base/status.h"

namespace cairn::ctk {

// The value of `text`. kInvalidArgument "WHAT:LINE:COL: what is wrong" (`what` names the
// text, e.g. "call.feature"; LINE and COL are yaml-cpp's, in `text`) on malformed YAML, several
// documents, `.inf`/`.nan`, an out-of-range integer, a non-scalar or repeated mapping key. An empty
// text is null.
Result<Json> YamlToJson(std::string_view text, std::string_view what);

}  // namespace cairn::ctk
