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
// Errors: every problem found (at most kProblemsMax), one per line, as
//   "FILE:LINE:COL: tool 'NAME': what is wrong (expected ...)".
// Unknown keys are refused by name. The whole file is checked before anything is
// registered, and the tools are registered into a copy of the catalog that replaces it only
// when every one was accepted: on error the catalog is unchanged.
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tools/catalog.h"

namespace cairn::engine {
namespace {

// Bounds of a catalog file (an operator's file: generous, but bounded).
constexpr size_t kCatalogBytesMax = 1 << 20;
constexpr size_t kCatalogToolsMax = 10'000;
constexpr size_t kArgumentsMax = 256;
constexpr size_t kMapEntriesMax = 256;  // environment, headers
constexpr uint64_t kToolTimeoutMsMax = 24ull * 3600 * 1000;
// Problems reported per load; the rest are counted.
constexpr size_t kProblemsMax = 20;

// Collects "FILE:LINE:COL: tool 'NAME': message" lines.
class Problems {
 public:
  explicit Problems(std::string_view source) : source_(source) {}

  void Add(const YAML::Mark& mark, std::string_view tool, std::string_view message) {
    ++count_;
    if (lines_.size() >= kProblemsMax) return;
    std::string line(source_);
    if (!mark.is_null()) {
      line += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    }
    line += ": ";
    if (!tool.empty()) line += "tool '" + std::string(tool) + "': ";
    line += message;
    lines_.push_back(std::move(line));
  }

  bool empty() const { return count_ == 0; }

  Status ToStatus() const {
    std::string message;
    for (const std::string& line : lines_) {
      if (!message.empty()) message += '\n';
      message += line;
    }
    if (count_ > lines_.size()) {
      message +=
          "\n" + source_ + ": and " + std::to_string(count_ - lines_.size()) + " more problems";
    }
    return Status::InvalidArgument(std::move(message));
  }

 private:
  std::string source_;
  std::vector<std::string> lines_;
  size_t count_ = 0;
};

// Where the problems of one tool go, and how its relative paths resolve.
struct ToolContext {
  Problems& problems;
  std::string_view tool;
  const std::filesystem::path* base_dir;  // null: keep relative paths as written

  void Add(const YAML::Node& node, std::string_view message) const {
    problems.Add(node.Mark(), tool, message);
  }
};

std::string DescribeNode(const YAML::Node& node) {
  if (node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "'" + node.Scalar() + "'";
}

std::optional<std::string> ScalarString(const ToolContext& ctx, const YAML::Node& node,
                                        std::string_view field) {
  if (!node.IsScalar()) {
    ctx.Add(node, std::string(field) + ": expected a string, found " + DescribeNode(node));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::string> NonEmptyString(const ToolContext& ctx, const YAML::Node& node,
                                          std::string_view field) {
  auto text = ScalarString(ctx, node, field);
  if (text && text->empty()) {
    ctx.Add(node, std::string(field) + ": must not be empty");
    return std::nullopt;
  }
  return text;
}

// One of `names`, exactly as written (the names are lower case).
std::optional<std::string> OneOf(const ToolContext& ctx, const YAML::Node& node,
                                 std::string_view field,
                                 std::initializer_list<std::string_view> names) {
  auto text = ScalarString(ctx, node, field);
  if (!text) return std::nullopt;
  std::string expected;
  for (std::string_view name : names) {
    if (*text == name) return text;
    expected += expected.empty() ? "" : ", ";
    expected += name;
  }
  ctx.Add(node, std::string(field) + ": unknown value '" + *text + "' (expected " + expected + ")");
  return std::nullopt;
}

// Calls `visit(key, key_node, value)` for each entry of a map, refusing keys that are not
// strings or repeat (yaml-cpp keeps duplicates; a catalog must not).
template <typename Visit>
void ForEachEntry(const ToolContext& ctx, const YAML::Node& map, std::string_view what,
                  Visit visit) {
  std::set<std::string, std::less<>> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // yaml-cpp's iterator hands out a proxy: copy the nodes (cheap handles) rather than
    // binding references into a temporary.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      ctx.Add(key, std::string(what) + ": keys must be strings, found " + DescribeNode(key));
      continue;
    }
    if (!seen.insert(key.Scalar()).second) {
      ctx.Add(key, std::string(what) + ": '" + key.Scalar() + "' appears twice");
      continue;
    }
    visit(key.Scalar(), key, value);
  }
}

// Refuses keys of `map` that are not in `known`, naming them.
void RefuseUnknownKeys(const ToolContext& ctx, const YAML::Node& map, std::string_view what,
                       std::initializer_list<std::string_view> known) {
  std::string expected;
  for (std::string_view name : known) {
    expected += expected.empty() ? "" : ", ";
    expected += name;
  }
  ForEachEntry(
      ctx, map, what, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node&) {
        if (std::find(known.begin(), known.end(), key) == known.end()) {
          ctx.Add(key_node,
                  std::string(what) + ": unknown key '" + key + "' (expected " + expected + ")");
        }
      });
}

std::optional<Json> StringList(const ToolContext& ctx, const YAML::Node& node,
                               std::string_view field) {
  if (!node.IsSequence()) {
    ctx.Add(node, std::string(field) + ": expected a list of strings, found " + DescribeNode(node));
    return std::nullopt;
  }
  if (node.size() > kArgumentsMax) {
    ctx.Add(node, std::string(field) + ": " + std::to_string(node.size()) +
                      " entries is more than the limit of " + std::to_string(kArgumentsMax));
    return std::nullopt;
  }
  Json list = Json::array();
  bool ok = true;
  for (const YAML::Node& item : node) {
    auto text = ScalarString(ctx, item, field);
    if (text)
      list.push_back(*text);
    else
      ok = false;
  }
  return ok ? std::optional<Json>(std::move(list)) : std::nullopt;
}

std::optional<Json> StringMap(const ToolContext& ctx, const YAML::Node& node,
                              std::string_view field) {
  if (!node.IsMap()) {
    ctx.Add(node, std::string(field) + ": expected a map of strings, found " + DescribeNode(node));
    return std::nullopt;
  }
  if (node.size() > kMapEntriesMax) {
    ctx.Add(node, std::string(field) + ": " + std::to_string(node.size()) +
                      " entries is more than the limit of " + std::to_string(kMapEntriesMax));
    return std::nullopt;
  }
  Json map = Json::object();
  bool ok = true;
  ForEachEntry(ctx, node, field,
               [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
                 auto text = ScalarString(ctx, value, std::string(field) + "." + key);
                 if (text)
                   map[key] = *text;
                 else
                   ok = false;
               });
  return ok ? std::optional<Json>(std::move(map)) : std::nullopt;
}

// "500ms", "10s", "2m", "1h", "1m30s", or an integer of milliseconds.
std::optional<uint64_t> ParseTimeoutMs(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() > 12) return std::nullopt;
    return std::stoull(std::string(text));
  }
  uint64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits = i;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
      ++digits;
    }
    if (digits == i || digits - i > 9) return std::nullopt;
    const uint64_t number = std::stoull(std::string(text.substr(i, digits - i)));
    size_t unit_end = digits;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    const std::string_view unit = text.substr(digits, unit_end - digits);
    uint64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else
      return std::nullopt;
    total += number * scale;
    i = unit_end;
  }
  return total;
}

void ParseTimeout(const ToolContext& ctx, const YAML::Node& node, ToolSpec& spec) {
  auto text = ScalarString(ctx, node, "timeout");
  if (!text) return;
  auto ms = ParseTimeoutMs(*text);
  if (!ms) {
    ctx.Add(node, "timeout: '" + *text +
                      "' is not a duration (expected e.g. 500ms, 10s, 2m, 1h, 1m30s, or an "
                      "integer of milliseconds)");
  } else if (*ms == 0) {
    ctx.Add(node, "timeout: must be positive (leave it out for the default)");
  } else if (*ms > kToolTimeoutMsMax) {
    ctx.Add(node, "timeout: '" + *text + "' is longer than the limit of 24h");
  } else {
    spec.timeout_ms = *ms;
  }
}

// `path` resolved against the catalog's directory when relative, and checked to be an
// executable file; `shown` is how messages name it.
std::optional<std::string> ResolveProgram(const ToolContext& ctx, const YAML::Node& node,
                                          const std::string& program) {
  std::filesystem::path path(program);
  if (path.is_relative() && ctx.base_dir != nullptr) {
    path = (*ctx.base_dir / path).lexically_normal();
  }
  const std::string resolved = path.string();
  const std::string shown =
      resolved == program ? "'" + program + "'" : "'" + program + "' (" + resolved + ")";
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    ctx.Add(node, "command: " + shown + " is not a file");
    return std::nullopt;
  }
  if (::access(resolved.c_str(), X_OK) != 0) {
    ctx.Add(node, "command: " + shown + " is not executable: " + std::strerror(errno));
    return std::nullopt;
  }
  return resolved;
}

// `text` as one word for /bin/sh: as is when it holds only safe characters, else quoted.
std::string ShellWord(const std::string& text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || (c != 0 && std::strchr("/._-+:@%,=", c) != nullptr);
  });
  if (safe) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The command of a command tool: a shell command line, run as `/bin/sh -c COMMAND sh
// ARGUMENTS...` (like `run.shell`). Its first word, when it names a program by a path
// (contains a '/'), is resolved and checked; a bare name is looked up in PATH when the
// tool runs. A line that starts with a quote is kept as written.
std::optional<std::string> ResolveShellCommand(const ToolContext& ctx, const YAML::Node& node,
                                               const std::string& command) {
  const size_t start = command.find_first_not_of(" \t");
  if (start == std::string::npos || command[start] == '\'' || command[start] == '"') {
    return command;
  }
  const size_t end = std::min(command.find_first_of(" \t", start), command.size());
  const std::string program = command.substr(start, end - start);
  if (program.find('/') == std::string::npos) return command;
  auto resolved = ResolveProgram(ctx, node, program);
  if (!resolved) return std::nullopt;
  return ShellWord(*resolved) + command.substr(end);
}

// The command of an MCP stdio server: a program, executed directly.
std::optional<std::string> ResolveExecCommand(const ToolContext& ctx, const YAML::Node& node,
                                              const std::string& command) {
  if (command.find('/') == std::string::npos) return command;  // looked up in PATH
  return ResolveProgram(ctx, node, command);
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
                      DescribeNode(node));
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
    ctx.Add(node, std::string(what) + ": expected a map, found " + DescribeNode(node));
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
    ctx.Add(node, "mcp: expected a map {tool, transport}, found " + DescribeNode(node));
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
            "transport: expected a map with stdio or http, found " + DescribeNode(transport));
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
      spec.effect = *effect == "read" ? storage::EffectKind::kRead : storage::EffectKind::kWrite;
    }
  }
  if (tool["risk"]) {
    if (auto risk = OneOf(ctx, tool["risk"], "risk", {"low", "medium", "high", "critical"})) {
      spec.risk = *risk == "low"      ? storage::RiskLevel::kLow
                  : *risk == "medium" ? storage::RiskLevel::kMedium
                  : *risk == "high"   ? storage::RiskLevel::kHigh
                                      : storage::RiskLevel::kCritical;
    }
  }
  if (tool["idempotent"]) {
    // YAML 1.2 booleans only: "yes"/"on" are strings there, and guessing is unsafe here.
    auto text = ScalarString(ctx, tool["idempotent"], "idempotent");
    if (text == "true" || text == "True" || text == "TRUE") {
      spec.idempotent = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
      spec.idempotent = false;
    } else if (text) {
      ctx.Add(tool["idempotent"], "idempotent: expected true or false, found '" + *text + "'");
    }
  }
}

// Parses one tool; nullopt when it has problems (already added).
std::optional<ToolSpec> ParseTool(const ToolContext& ctx, const YAML::Node& key_node,
                                  const YAML::Node& tool) {
  if (!tool.IsMap()) {
    ctx.Add(tool.IsNull() ? key_node : tool,
            "expected a map of tool settings, found " + DescribeNode(tool));
    return std::nullopt;
  }
  RefuseUnknownKeys(ctx, tool, "tool",
                    {"description", "effect", "risk", "idempotent", "executor", "command", "http",
                     "mcp", "timeout"});

  ToolSpec spec;
  spec.name = std::string(ctx.tool);
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
std::vector<ParsedTool> ParseCatalog(Problems& problems, const YAML::Node& root,
                                     const std::filesystem::path* base_dir) {
  std::vector<ParsedTool> parsed;
  const ToolContext top{problems, "", base_dir};
  if (root.IsNull()) return parsed;  // an empty file: no tools
  if (!root.IsMap()) {
    top.Add(root, "expected a map with the key 'tools', found " + DescribeNode(root));
    return parsed;
  }
  RefuseUnknownKeys(top, root, "catalog", {"tools"});
  const YAML::Node tools = root["tools"];
  if (!tools || tools.IsNull()) return parsed;
  if (!tools.IsMap()) {
    top.Add(tools, "tools: expected a map of tool name to settings, found " + DescribeNode(tools));
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
Status RegisterAll(ToolCatalog& catalog, std::vector<ParsedTool> parsed, Problems& problems) {
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
  Problems problems(source_name);
  if (yaml.size() > kCatalogBytesMax) {
    return Status::InvalidArgument(
        std::string(source_name) + ": tool catalog of " + std::to_string(yaml.size()) +
        " bytes is more than the limit of " + std::to_string(kCatalogBytesMax));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    problems.Add(e.mark, "", "invalid YAML: " + e.msg);
    return problems.ToStatus();
  }
  std::vector<ParsedTool> parsed;
  try {
    parsed = ParseCatalog(problems, root, base_dir);
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
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return Status::InvalidArgument("tool catalog " + path + " is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    return Status(saved == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                  "cannot read tool catalog " + path + ": " + std::strerror(saved));
  }
  std::string text;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kCatalogBytesMax) {
      return Status::InvalidArgument("tool catalog " + path + " is larger than the limit of " +
                                     std::to_string(kCatalogBytesMax) + " bytes");
    }
  }
  if (in.bad()) return Status::InvalidArgument("cannot read tool catalog " + path);
  const std::filesystem::path base_dir =
      std::filesystem::absolute(std::filesystem::path(path), error).parent_path();
  return LoadCatalogText(*this, text, path, &base_dir);
}

}  // namespace cairn::engine
