// Internal to policy/: reading a policy file's text into checked values.
#pragma once

#include <string_view>

#include "base/status.h"
#include "policy/policy_data.h"

namespace cairn::policy {

// Parses and checks the whole text (format: policy/README.md). kInvalidArgument listing
// every problem found, one per line, as "SOURCE:LINE:COL: SUBJECT: message"
// (base/yaml_config.h). Bounded: at most limits::policy_bytes_max bytes, and YAML aliases
// may not expand the document past a fixed number of nodes. Never throws.
Result<PolicyData> ParsePolicyText(std::string_view text, std::string_view source_name);

}  // namespace cairn::policy
