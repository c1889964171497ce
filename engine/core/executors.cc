#include "engine/core/executors.h"

namespace cairn::engine {

void AddExecutors(ToolRouter& router, boost::asio::any_io_executor io,
                  const EngineOptions& options) {
  // Filled in as the process (shell, MCP) and HTTP executors land.
  (void)router;
  (void)io;
  (void)options;
}

}  // namespace cairn::engine
