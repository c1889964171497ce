// ToolCatalog::LoadFile / LoadText: the YAML tool catalog an operator writes.
//
//   tools:
//     crm.get_account:                      # the name workflows call (`call: crm.get_account`)
//       description: Read an account         # optional
//       effect: read                         # read | write            (default write)
//       risk: low                            # low | medium | high | critical (default critical)
//       idempotent: true                     # honours idempotency keys (default false)
//       executor: command                    # command | http | mcp (optional: implied by the
//                                            # one configuration key below)
//       command: ./tools/crm.py              # or {command, arguments?, environment?}
//       timeout: 10s                         # 500ms, 10s, 2m, 1h, 1m30s, or an integer of ms
//     billing.change_plan:
//       effect: write
//       risk: high
//       idempotent: true
//       http: {method: post, endpoint: "http://127.0.0.1:8080/plans", headers: {x-team: ops}}
//     docs.search:
//       effect: read
//       risk: low
//       mcp:
//         tool: search                       # the MCP server's tool name
//         transport: {stdio: {command: uvx, arguments: [docs-mcp]}}   # or {http: {endpoint,
//         headers?}}
//
// The executor's configuration sits under a key named after it and becomes ToolSpec::config:
//   command: {"command", "arguments"?: [string], "environment"?: {string: string}}
//   http:    {"method" (lower case), "endpoint", "headers"?: {string: string}}
//   mcp:     {"tool", "transport": {"stdio": {command, arguments?, environment?}} or
//                                  {"http": {endpoint, headers?}}}
// `cpp` tools are registered in code, never in a file.
//
// A command tool's `command` is a shell command line, run as `/bin/sh -c COMMAND sh
// ARGUMENTS...` like `run.shell` (so `arguments` are $1, $2, ...; the call's arguments come
// as JSON on stdin). When its first word names a program by a path (contains a '/'), that
// path is checked to be an executable file and, when relative, resolved against the
// catalog file's directory (LoadFile; LoadText keeps it relative to the working
// directory) and written absolute (shell-quoted if need be), so that a catalog means the
// same thing wherever cairn runs. An MCP stdio server's `command` is a program, executed
// directly with its `arguments`, resolved and checked the same way. Bare names ("python3")
// are looked up in PATH when the tool runs.
//
// Errors: every problem found (at most YamlProblems::kShownMax), one per line, as
//   "FILE:LINE:COL: tool 'NAME': what is wrong (expected ...)".
// Unknown keys are refused by name. The whole file is checked before anything is
// registered, and the tools are registered into a copy of the catalog that replaces it only
// when every one was accepted: on error the catalog is unchanged.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/yaml_config.h"
#include "engine/tools/catalog.h"

namespace cairn::engine {
namespace {

// Bounds of a catalog file (an operator's file: generous, but bounded).
constexpr size_t kCatalogBytesMax = 1 << 20;
constexpr size_t kCatalogToolsMax = 10'000;
constexpr size_t kArgumentsMax = 256;
constexpr size_t kMapEntriesMax = 256;  // environment, headers
constexpr uint64_t kToolTimeoutMsMax = 24ull * 3600 * 1000;

// Where the problems of one tool go, and how its relative paths resolve.
struct ToolContext : YamlContext {
  std::string name;  // the tool's name; empty at the top level

  ToolContext(YamlProblems& problems, std::string_view tool, const std::filesystem::path* dir)
      : YamlContext{problems, tool.empty() ? "" : "tool '" + std::string(tool) + "'", dir},
        name(tool) {}
};

using yaml::ForEachEntry;
using yaml::NonEmptyString;
using yaml::OneOf;
using yaml::RefuseUnknownKeys;

std::optional<std::string> ScalarString(const ToolContext& ctx, const YAML::Node& node,
                                        std::string_view field) {
  return yaml::String(ctx, node, field);
}

std::optional<Json> StringList(const ToolContext& ctx, const YAML::Node& node,
                               std::string_view field) {
  auto list = yaml::StringList(ctx, node, field, kArgumentsMax);
  if (!list) return std::nullopt;
  return Json(*list);
}

std::optional<Json> StringMap(const ToolContext& ctx, const YAML::Node& node,
                              std::string_view field) {
  return yaml::StringMap(ctx, node, field, kMapEntriesMax);
}

void ParseTimeout(const ToolContext& ctx, const YAML::Node& node, ToolSpec& spec) {
  if (auto ms = yaml::DurationMs(ctx, node, "timeout", kToolTimeoutMsMax)) spec.timeout_ms = *ms;
}

std::optional<std::string> ResolveShellCommand(const ToolContext& ctx, const YAML::Node& node,
                                               const std::string& command) {
  return yaml::ResolveShellCommand(ctx, node, command, "command");
}

// The command of an MCP stdio server: a program, executed directly.
std::optional<std::string> ResolveExecCommand(const ToolContext& ctx, const YAML::Node& node,
                                              const std::string& command) {
  return yaml::ResolveProgram(ctx, node, command, "command");
}

// {command, arguments?, environment?}, or a string: the command alone.
// `shell_line`: the command is a shell command line (command tools), else a program
// (MCP stdio servers).
std::optional<Json> ParseProcess(const ToolContext& ctx, const YAML::Node& node,
                                 std::string_view what, bool shell_line) {
  auto resolve = [&](const YAML::Node& at, const std::string& command) {
    return shell_line ? ResolveShellCommand(ctx, at, command)
                      : ResolveExecCommand(ctx, at, command);
  };
  if (node.IsScalar()) {
    auto command = NonEmptyString(ctx, node, what);
    if (!command) return std::nullopt;
    auto resolved = resolve(node, *command);
    if (!resolved) return std::nullopt;
    return Json{{"command", *resolved}};
  }
  if (!node.IsMap()) {
    ctx.Add(node, std::string(what) +
                      ": expected a command or a map {command, arguments, "
                      "environment}, found " +
                      DescribeYamlNode(node));
    return std::nullopt;
  }
  RefuseUnknownKeys(ctx, node, what, {"command", "arguments", "environment"});
  Json config = Json::object();
  bool ok = true;
  if (!node["command"]) {
    ctx.Add(node, std::string(what) + ": missing 'command'");
    ok = false;
  } else if (auto command = NonEmptyString(ctx, node["command"], "command")) {
    auto resolved = resolve(node["command"], *command);
    if (resolved)
      config["command"] = *resolved;
    else
      ok = false;
  } else {
    ok = false;
  }
  if (node["arguments"]) {
    auto arguments = StringList(ctx, node["arguments"], "arguments");
    if (arguments)
      config["arguments"] = std::move(*arguments);
    else
      ok = false;
  }
  if (node["environment"]) {
    auto environment = StringMap(ctx, node["environment"], "environment");
    if (environment)
      config["environment"] = std::move(*environment);
    else
      ok = false;
  }
  return ok ? std::optional<Json>(std::move(config)) : std::nullopt;
}

std::optional<std::string> ParseEndpoint(const ToolContext& ctx, const YAML::Node& node) {
  auto endpoint = NonEmptyString(ctx, node, "endpoint");
  if (!endpoint) return std::nullopt;
  if (endpoint->rfind("http://", 0) != 0 && endpoint->rfind("https://", 0) != 0) {
    ctx.Add(node, "endpoint: '" + *endpoint + "' is not an http:// or https:// URL");
    return std::nullopt;
  }
  return endpoint;
}

// {method, endpoint, headers?} (also an MCP http transport: {endpoint, headers?}).
std::optional<Json> ParseHttp(const ToolContext& ctx, const YAML::Node& node, std::string_view what,
                              bool with_method) {
  if (!node.IsMap()) {
    ctx.Add(node, std::string(what) + ": expected a map, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  if (with_method) {
    RefuseUnknownKeys(ctx, node, what, {"method", "endpoint", "headers"});
  } else {
    RefuseUnknownKeys(ctx, node, what, {"endpoint", "headers"});
  }
  Json config = Json::object();
  bool ok = true;
  if (with_method) {
    if (!node["method"]) {
      ctx.Add(node, std::string(what) + ": missing 'method'");
      ok = false;
    } else if (auto method = ScalarString(ctx, node["method"], "method")) {
      std::string lower = *method;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      static constexpr std::string_view kMethods[] = {"get",    "post", "put",    "patch",
                                                      "delete", "head", "options"};
      if (std::find(std::begin(kMethods), std::end(kMethods), lower) == std::end(kMethods)) {
        ctx.Add(node["method"], "method: unknown HTTP method '" + *method +
                                    "' (expected get, post, put, patch, delete, head or options)");
        ok = false;
      } else {
        config["method"] = lower;
      }
    } else {
      ok = false;
    }
  }
  if (!node["endpoint"]) {
    ctx.Add(node, std::string(what) + ": missing 'endpoint'");
    ok = false;
  } else if (auto endpoint = ParseEndpoint(ctx, node["endpoint"])) {
    config["endpoint"] = *endpoint;
  } else {
    ok = false;
  }
  if (node["headers"]) {
    auto headers = StringMap(ctx, node["headers"], "headers");
    if (headers)
      config["headers"] = std::move(*headers);
    else
      ok = false;
  }
  return ok ? std::optional<Json>(std::move(config)) : std::nullopt;
}

// {tool, transport: {stdio: {...}} | {http: {...}}}
std::optional<Json> ParseMcp(const ToolContext& ctx, const YAML::Node& node) {
  if (!node.IsMap()) {
    ctx.Add(node, "mcp: expected a map {tool, transport}, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  RefuseUnknownKeys(ctx, node, "mcp", {"tool", "transport"});
  Json config = Json::object();
  bool ok = true;
  if (!node["tool"]) {
    ctx.Add(node, "mcp: missing 'tool' (the MCP server's tool name)");
    ok = false;
  } else if (auto tool = NonEmptyString(ctx, node["tool"], "tool")) {
    config["tool"] = *tool;
  } else {
    ok = false;
  }
  const YAML::Node transport = node["transport"];
  if (!transport) {
    ctx.Add(node, "mcp: missing 'transport' ({stdio: {command, ...}} or {http: {endpoint}})");
    return std::nullopt;
  }
  if (!transport.IsMap()) {
    ctx.Add(transport,
            "transport: expected a map with stdio or http, found " + DescribeYamlNode(transport));
    return std::nullopt;
  }
  RefuseUnknownKeys(ctx, transport, "transport", {"stdio", "http"});
  if (static_cast<bool>(transport["stdio"]) == static_cast<bool>(transport["http"])) {
    ctx.Add(transport, "transport: expected exactly one of stdio and http");
    return std::nullopt;
  }
  std::optional<Json> chosen =
      transport["stdio"] ? ParseProcess(ctx, transport["stdio"], "stdio", /*shell_line=*/false)
                         : ParseHttp(ctx, transport["http"], "http", false);
  if (!chosen) return std::nullopt;
  config["transport"] = Json{{transport["stdio"] ? "stdio" : "http", std::move(*chosen)}};
  return ok ? std::optional<Json>(std::move(config)) : std::nullopt;
}

// Picks the executor: the `executor` key, or the one configuration key present.
std::optional<std::string> ChooseExecutor(const ToolContext& ctx, const YAML::Node& key_node,
                                          const YAML::Node& tool) {
  std::vector<std::string> configured;
  for (const char* name : {"command", "http", "mcp"}) {
    if (tool[name]) configured.push_back(name);
  }
  if (tool["executor"]) {
    if (tool["executor"].IsScalar() && tool["executor"].Scalar() == "cpp") {
      ctx.Add(tool["executor"], "executor: cpp tools are registered in code, not in a catalog");
      return std::nullopt;
    }
    auto executor = OneOf(ctx, tool["executor"], "executor", {"command", "http", "mcp"});
    if (!executor) return std::nullopt;
    bool ok = true;
    for (const std::string& name : configured) {
      if (name != *executor) {
        ctx.Add(tool[name], "key '" + name + "' does not apply to executor " + *executor);
        ok = false;
      }
    }
    if (!tool[*executor]) {
      ctx.Add(key_node, "executor " + *executor + " needs a '" + *executor + "' key");
      ok = false;
    }
    return ok ? executor : std::nullopt;
  }
  if (configured.size() != 1) {
    ctx.Add(key_node, configured.empty()
                          ? "missing executor configuration (expected one of command, http, mcp)"
                          : "more than one executor configuration (expected one of command, "
                            "http, mcp)");
    return std::nullopt;
  }
  return configured.front();
}

void ParseEffectAndRisk(const ToolContext& ctx, const YAML::Node& tool, ToolSpec& spec) {
  if (tool["effect"]) {
    if (auto effect = OneOf(ctx, tool["effect"], "effect", {"read", "write"})) {
      spec.effect = storage::ParseEffectKind(*effect).value_or(storage::EffectKind::kWrite);
    }
  }
  if (tool["risk"]) {
    if (auto risk = OneOf(ctx, tool["risk"], "risk", {"low", "medium", "high", "critical"})) {
      spec.risk = storage::ParseRiskLevel(*risk).value_or(storage::RiskLevel::kCritical);
    }
  }
  if (tool["idempotent"]) {
    if (auto idempotent = yaml::Bool(ctx, tool["idempotent"], "idempotent")) {
      spec.idempotent = *idempotent;
    }
  }
}

// Parses one tool; nullopt when it has problems (already added).
std::optional<ToolSpec> ParseTool(const ToolContext& ctx, const YAML::Node& key_node,
                                  const YAML::Node& tool) {
  if (!tool.IsMap()) {
    ctx.Add(tool.IsNull() ? key_node : tool,
            "expected a map of tool settings, found " + DescribeYamlNode(tool));
    return std::nullopt;
  }
  RefuseUnknownKeys(ctx, tool, "tool",
                    {"description", "effect", "risk", "idempotent", "executor", "command", "http",
                     "mcp", "timeout"});

  ToolSpec spec;
  spec.name = ctx.name;
  if (tool["description"]) {
    if (auto description = ScalarString(ctx, tool["description"], "description")) {
      spec.description = *description;
    }
  }
  ParseEffectAndRisk(ctx, tool, spec);
  if (tool["timeout"]) ParseTimeout(ctx, tool["timeout"], spec);
  auto executor = ChooseExecutor(ctx, key_node, tool);
  if (!executor) return std::nullopt;
  spec.executor = *executor;
  std::optional<Json> config;
  if (*executor == "command") {
    config = ParseProcess(ctx, tool["command"], "command", /*shell_line=*/true);
  } else if (*executor == "http") {
    config = ParseHttp(ctx, tool["http"], "http", true);
  } else {
    config = ParseMcp(ctx, tool["mcp"]);
  }
  if (!config) return std::nullopt;
  spec.config = std::move(*config);
  return spec;
}

struct ParsedTool {
  ToolSpec spec;
  YAML::Mark mark;
};

// Parses the document into specs, adding every problem found.
std::vector<ParsedTool> ParseCatalog(YamlProblems& problems, const YAML::Node& root,
                                     const std::filesystem::path* base_dir) {
  std::vector<ParsedTool> parsed;
  const ToolContext top{problems, "", base_dir};
  if (root.IsNull()) return parsed;  // an empty file: no tools
  if (!root.IsMap()) {
    top.Add(root, "expected a map with the key 'tools', found " + DescribeYamlNode(root));
    return parsed;
  }
  RefuseUnknownKeys(top, root, "catalog", {"tools"});
  const YAML::Node tools = root["tools"];
  if (!tools || tools.IsNull()) return parsed;
  if (!tools.IsMap()) {
    top.Add(tools,
            "tools: expected a map of tool name to settings, found " + DescribeYamlNode(tools));
    return parsed;
  }
  if (tools.size() > kCatalogToolsMax) {
    top.Add(tools, "tools: " + std::to_string(tools.size()) + " tools is more than the limit of " +
                       std::to_string(kCatalogToolsMax));
    return parsed;
  }
  ForEachEntry(top, tools, "tools",
               [&](const std::string& name, const YAML::Node& key_node, const YAML::Node& tool) {
                 const ToolContext ctx{problems, name, base_dir};
                 auto spec = ParseTool(ctx, key_node, tool);
                 if (spec) parsed.push_back({std::move(*spec), key_node.Mark()});
               });
  return parsed;
}

// Registers `parsed` into a copy of `catalog` that replaces it only if every tool was
// accepted, so that a tool the catalog refuses (a duplicate, a reserved name) leaves it as
// it was.
Status RegisterAll(ToolCatalog& catalog, std::vector<ParsedTool> parsed, YamlProblems& problems) {
  ToolCatalog staged = catalog;
  for (ParsedTool& tool : parsed) {
    const YAML::Mark mark = tool.mark;
    Status registered = staged.Register(std::move(tool.spec));
    if (!registered.ok()) problems.Add(mark, "", registered.message());
  }
  if (!problems.empty()) return problems.ToStatus();
  catalog = std::move(staged);
  return Status::Ok();
}

Status LoadCatalogText(ToolCatalog& catalog, std::string_view yaml, std::string_view source_name,
                       const std::filesystem::path* base_dir) {
  YamlProblems problems(source_name);
  std::optional<YAML::Node> root = ParseYamlText(problems, yaml, "tool catalog", kCatalogBytesMax);
  if (!root) return problems.ToStatus();
  std::vector<ParsedTool> parsed;
  try {
    parsed = ParseCatalog(problems, *root, base_dir);
  } catch (const YAML::Exception& e) {
    // Not expected (every access is checked first); kept so that no exception escapes.
    problems.Add(e.mark, "", e.msg);
  }
  if (!problems.empty()) return problems.ToStatus();
  return RegisterAll(catalog, std::move(parsed), problems);
}

}  // namespace

Status ToolCatalog::LoadText(std::string_view yaml, std::string_view source_name) {
  return LoadCatalogText(*this, yaml, source_name, nullptr);
}

Status ToolCatalog::LoadFile(const std::string& path) {
  Result<std::string> text = ReadTextFile(path, "tool catalog", kCatalogBytesMax);
  if (!text.ok()) return text.status();
  std::error_code error;
  const std::filesystem::path base_dir =
      std::filesystem::absolute(std::filesystem::path(path), error).parent_path();
  return LoadCatalogText(*this, *text, path, &base_dir);
}

}  // namespace cairn::engine
