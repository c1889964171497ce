// Builds the executors an engine routes effects to (shell commands, HTTP, MCP), so that
// engine.cc does not depend on each executor's construction details.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include "engine/core/engine.h"
#include "engine/core/tool_router.h"

namespace cairn::engine {

// Adds the "shell", "command", "http" and "mcp" executors to `router`. Errors: a bad
// EngineOptions::extra_ca_pem (kInvalidArgument), TLS set-up (kInternal).
Status AddExecutors(ToolRouter& router, boost::asio::any_io_executor io,
                    const EngineOptions& options);

}  // namespace cairn::engine
