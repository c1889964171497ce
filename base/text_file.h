// Reading a whole text file that an operator names (a definition, a catalog, a policy, an
// agents file, a CLI argument file), bounded in size.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cairn {

// The file's bytes. `what` names it in errors ("cannot read policy p.yaml: it is a
// directory"). kNotFound when it does not exist; kInvalidArgument when it is a directory,
// unreadable, or larger than `bytes_max` (reading stops there).
Result<std::string> ReadTextFile(const std::string& path, std::string_view what, size_t bytes_max);

}  // namespace cairn
