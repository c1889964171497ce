// Routes an effect to the executor that performs it, shaping the request for catalog
// tools (a `command` tool gets its arguments on stdin, an `http` tool as the body, an
// `mcp` tool as a tools/call) and answering "executor not available" for kinds this
// engine has no executor for.
//
// Thread-safe after construction; Add executors before the first Call.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <map>
#include <memory>
#include <string>

#include "base/ids.h"
#include "engine/core/interpreter.h"
#include "engine/tools/tool.h"

namespace cairn::engine {

class ToolRouter {
 public:
  // `io` answers calls for which there is no executor.
  explicit ToolRouter(boost::asio::any_io_executor io) : io_(std::move(io)) {}

  // `name`: the ToolSpec::executor it serves ("cpp", "shell", "command", "http", "mcp").
  // One executor may serve several names (pass the same pointer; the router owns each once).
  void Add(const std::string& name, std::shared_ptr<ToolExecutor> executor);

  // Starts the call; `done` exactly once, on an executor thread.
  void Call(const RunId& run_id, const EffectCommand& command, ToolCallback done);

  // The executor serving `name`, or null. Valid until the router is destroyed.
  ToolExecutor* Find(const std::string& name) const;

  // Shuts down every executor (see ToolExecutor::Shutdown).
  void Shutdown();

 private:
  boost::asio::any_io_executor io_;
  std::map<std::string, std::shared_ptr<ToolExecutor>> executors_;
};

// A `command` tool's answer from the shell executor's {code, stdout, stderr}: a non-zero
// exit or stdout that is not JSON is a failure naming the tool (exposed for tests).
ToolResponse CommandToolResponse(const std::string& tool, ToolResponse response);

// The request an executor gets for `command` (exposed for tests).
ToolRequest BuildToolRequest(const RunId& run_id, const EffectCommand& command);

}  // namespace cairn::engine
