// The tool catalog: the tools a workflow may call by name (`call: billing.change_plan`),
// declared by operators (a YAML file) or registered in C++.
//
// What a definition says about a tool is never trusted for safety: the catalog says
// whether a tool only reads or writes, its risk, and whether it honours idempotency keys
// (which decides whether an interrupted call may be retried on recovery). Inline calls
// (`call: http`, `call: mcp`, `run.shell`) are not in the catalog: they are writes at
// critical risk (see InlineToolSpec).
//
// Thread-safety: Register/Load before use; Find is safe concurrently with other Finds.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/sha256.h"
#include "base/status.h"
#include "engine/tools/tool.h"
#include "storage/event.h"

namespace cairn::engine {

// A C++ tool: runs on a blocking worker thread. Return the result, or an error Status
// (kInvalidArgument → a validation error the workflow sees, other codes → a runtime
// error). Must be thread-safe.
using CppTool = std::function<Result<Json>(const ToolRequest&)>;

struct ToolSpec {
  std::string name;  // [A-Za-z0-9_.:-]{1,128}
  std::string description;
  storage::EffectKind effect = storage::EffectKind::kWrite;
  storage::RiskLevel risk = storage::RiskLevel::kCritical;
  bool idempotent = false;
  // "cpp", "command" (JSON arguments on stdin, JSON result on stdout), "http", "mcp".
  std::string executor = "cpp";
  // Executor configuration:
  //   command: {command, arguments?, environment?}
  //   http:    {method, endpoint, headers?}   (the call's arguments become the body;
  //             for GET/DELETE they become the query)
  //   mcp:     {transport: {stdio: {...}}, tool: NAME}
  Json config = Json::object();
  // Call timeout (0: limits::tool_call_timeout_ms_default).
  uint64_t timeout_ms = 0;
};

// The spec an inline call is treated as: a write at critical risk; idempotent only for
// HTTP methods that are idempotent by definition (GET, HEAD, OPTIONS, PUT, DELETE).
ToolSpec InlineToolSpec(std::string_view kind, const Json& with);

class ToolCatalog {
 public:
  struct Entry {
    ToolSpec spec;
    CppTool callback;  // executor "cpp" only
  };

  // kInvalidArgument for a bad name/executor/config; kAlreadyExists for a duplicate.
  Status Register(ToolSpec spec, CppTool callback = nullptr);
  // Loads tools from a YAML catalog file (see engine/README.md); every error names the
  // file, line and tool. Nothing is registered on error.
  Status LoadFile(const std::string& path);
  Status LoadText(std::string_view yaml, std::string_view source_name);

  const Entry* Find(std::string_view name) const;
  bool Contains(std::string_view name) const { return Find(name) != nullptr; }
  // SHA-256 over the canonical JSON of every spec (not the callbacks), recorded in each
  // run's run_started so that audits know which catalog a run saw.
  Sha256 Hash() const;
  size_t size() const { return tools_.size(); }

 private:
  std::map<std::string, Entry, std::less<>> tools_;
};

// Canonical JSON of a spec (what Hash() covers), and back; nullopt if `json` is not one.
Json ToolSpecToJson(const ToolSpec& spec);
std::optional<ToolSpec> ToolSpecFromJson(const Json& json);

}  // namespace cairn::engine
