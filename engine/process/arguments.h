// Reading the pieces that shell commands and MCP stdio transports share out of a call's
// JSON arguments: a command, its argument list, its environment. Every error is
// kInvalidArgument and names the field, the type or value seen and what was expected.
// Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "engine/process/child_process.h"

namespace cairn::engine::process {

// `object[field]` as a non-empty string without NUL bytes.
Result<std::string> CommandField(const Json& object, std::string_view field);

// `object[field]` (absent or null: empty) as a list of strings. Numbers and booleans are
// taken as their JSON text (YAML `- 8080`); NUL bytes are refused.
Result<std::vector<std::string>> StringListField(const Json& object, std::string_view field);

// `object[field]` (absent or null: empty) as environment variables: names non-empty
// without '=' or NUL, values strings (numbers and booleans as their JSON text).
Result<Environment> EnvironmentField(const Json& object, std::string_view field);

}  // namespace cairn::engine::process
