// Loader: the task types that reach outside the run: call, run.shell and listen.
//
// The `with` of `call: http` and `call: mcp` is checked for the properties the DSL
// defines (names, required ones, simple types); the executors own the rest. A tool's
// `with` is its arguments: any mapping.
#include <algorithm>
#include <string>

#include "base/limits.h"
#include "engine/definition/duration.h"
#include "engine/definition/loader_impl.h"
#include "engine/expr/expression.h"

namespace cairn::engine::definition_impl {
namespace {

constexpr std::string_view kCallExpectation =
    "expected http, mcp, agent, a use.functions name or a registered tool";

bool IsExpressionString(const SourceNode& node) {
  return node.IsString() && IsRuntimeExpression(node.scalar.get_ref<const std::string&>());
}

}  // namespace

std::optional<TaskBody> Loader::ParseCall(const TaskSite& site) {
  const SourceNode& call = *site.map->Find("call");
  std::string path = Child(site.path, "call");
  auto name = String(call, path);
  if (!name) return std::nullopt;
  CallBody body;
  body.function = *name;
  if (name->empty() || IsRuntimeExpression(*name)) {
    Error(call, path,
          (name->empty() ? "empty function name"
                         : "the function to call cannot be a runtime "
                           "expression") +
              std::string(" (") + std::string(kCallExpectation) + ")");
    return std::nullopt;
  }
  if (*name == "asyncapi" || *name == "grpc" || *name == "openapi" || *name == "a2a") {
    Error(call, path,
          "`call: " + *name + "` is not supported yet (" + std::string(kCallExpectation) + ")");
    return std::nullopt;
  }
  if (*name == "agent") {
    body.kind = CallBody::Kind::kAgent;
    auto agent =
        ParseAgentWith(site.map->Find("with"), Child(site.path, "with"), call.pos, *site.scope);
    if (!agent) return std::nullopt;
    body.agent = std::move(*agent);
    return body;
  }
  if (*name == "http") {
    body.kind = CallBody::Kind::kHttp;
  } else if (*name == "mcp") {
    body.kind = CallBody::Kind::kMcp;
  } else if (functions_.count(*name) != 0) {
    if (site.in_function) {
      Error(call, path,
            "a use.functions entry cannot call another function ('" + *name +
                "'): call http, mcp or a registered tool, or run a shell command");
      return std::nullopt;
    }
    body.kind = CallBody::Kind::kFunction;
  } else if (name->find('@') != std::string::npos) {
    Error(call, path,
          "`call: " + *name + "` names a catalog function; catalogs are not supported (" +
              std::string(kCallExpectation) + ")");
    return std::nullopt;
  } else {
    body.kind = CallBody::Kind::kTool;
    if (options_.tool_exists && !options_.tool_exists(*name)) {
      Error(call, path, "unknown function '" + *name + "' (" + std::string(kCallExpectation) + ")");
      return std::nullopt;
    }
  }
  const SourceNode* with = site.map->Find("with");
  std::string with_path = Child(site.path, "with");
  if (with == nullptr) {
    if (body.kind == CallBody::Kind::kHttp || body.kind == CallBody::Kind::kMcp) {
      Error(site.pos, site.path, "`call: " + *name + "` needs `with`");
      return std::nullopt;
    }
    return body;
  }
  if (!Expect(*with, with_path, SourceNode::Kind::kMapping)) return std::nullopt;
  if (body.kind == CallBody::Kind::kHttp) CheckHttpWith(*with, with_path);
  if (body.kind == CallBody::Kind::kMcp) CheckMcpWith(*with, with_path);
  auto json = TemplateValue(*with, with_path, Variables(Place::kTaskBody, *site.scope));
  if (!json) return std::nullopt;
  body.with = std::move(*json);
  return body;
}

std::optional<AgentCall> Loader::ParseAgentWith(const SourceNode* with, std::string_view path,
                                                SourcePos call_pos, const Scope& scope) {
  if (with == nullptr) {
    Error(call_pos, path, "`call: agent` needs `with` (at least goal and options)");
    return std::nullopt;
  }
  if (!Expect(*with, path, SourceNode::Kind::kMapping)) return std::nullopt;
  const std::string what = "an agent call's `with`";
  bool ok = CheckProperties(
      *with, path, what,
      {"goal", "options", "context", "tools", "max_steps", "timeout", "budget", "agent"});
  ok = Require(*with, path, what, {"goal", "options"}) && ok;
  const std::vector<std::string> variables = Variables(Place::kTaskBody, scope);
  AgentCall agent;
  if (const SourceNode* goal = with->Find("goal")) {
    const std::string at = Child(path, "goal");
    if (!goal->IsString()) {
      Error(*goal, at,
            "expected a string (or a runtime expression), got " + std::string(DescribeNode(*goal)));
      ok = false;
    } else if (auto value = TemplateValue(*goal, at, variables)) {
      agent.goal = std::move(*value);
    } else {
      ok = false;
    }
  }
  if (const SourceNode* options = with->Find("options")) {
    const std::string at = Child(path, "options");
    if (options->IsSequence()) {
      if (options->items.empty() || options->items.size() > limits::agent_options_max) {
        Error(*options, at,
              "expected 1 to " + std::to_string(limits::agent_options_max) + " options, got " +
                  std::to_string(options->items.size()));
        ok = false;
      }
      for (size_t i = 0; i < options->items.size(); ++i) {
        if (!options->items[i]->IsString()) {
          Error(*options->items[i], Child(at, std::to_string(i)),
                "an option must be a string, got " + std::string(DescribeNode(*options->items[i])));
          ok = false;
        }
      }
    } else if (!IsExpressionString(*options)) {
      Error(*options, at,
            "expected a list of strings or a runtime expression giving one, got " +
                std::string(DescribeNode(*options)));
      ok = false;
    }
    if (auto value = TemplateValue(*options, at, variables)) {
      agent.options = std::move(*value);
    } else {
      ok = false;
    }
  }
  if (const SourceNode* context = with->Find("context")) {
    if (auto value = TemplateValue(*context, Child(path, "context"), variables)) {
      agent.context = std::move(*value);
    } else {
      ok = false;
    }
  }
  if (const SourceNode* tools = with->Find("tools")) {
    const std::string at = Child(path, "tools");
    if (!tools->IsSequence() || tools->items.size() > limits::agent_tools_max) {
      Error(*tools, at,
            "expected a list of at most " + std::to_string(limits::agent_tools_max) +
                " read tool names, got " + std::string(DescribeNode(*tools)));
      ok = false;
    } else {
      for (size_t i = 0; i < tools->items.size(); ++i) {
        const std::string item_at = Child(at, std::to_string(i));
        auto tool = String(*tools->items[i], item_at);
        if (!tool) {
          ok = false;
          continue;
        }
        if (options_.tool_exists && !options_.tool_exists(*tool)) {
          Error(*tools->items[i], item_at,
                "unknown tool '" + *tool + "' (expected a read tool registered in the catalog)");
          ok = false;
        } else if (std::find(agent.tools.begin(), agent.tools.end(), *tool) != agent.tools.end()) {
          Error(*tools->items[i], item_at, "tool '" + *tool + "' is listed twice");
          ok = false;
        } else {
          agent.tools.push_back(*tool);
        }
      }
    }
  }
  auto whole = [&](const SourceNode& node, const std::string& at, uint64_t min,
                   uint64_t max) -> std::optional<uint64_t> {
    // YAML integers arrive signed: a negative one is out of range like any other.
    const bool integer = node.kind == SourceNode::Kind::kScalar && node.scalar.is_number_integer();
    const bool in_range = integer &&
                          (node.scalar.is_number_unsigned() || node.scalar.get<int64_t>() >= 0) &&
                          node.scalar.get<uint64_t>() >= min && node.scalar.get<uint64_t>() <= max;
    if (!in_range) {
      Error(node, at,
            "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                ", got " + std::string(DescribeNode(node)));
      return std::nullopt;
    }
    return node.scalar.get<uint64_t>();
  };

  if (const SourceNode* steps = with->Find("max_steps")) {
    auto value = whole(*steps, Child(path, "max_steps"), 1, limits::agent_steps_max);
    if (value) {
      agent.max_steps = static_cast<uint32_t>(*value);
    } else {
      ok = false;
    }
  }
  if (const SourceNode* timeout = with->Find("timeout")) {
    auto value = ParseDuration(*timeout, Child(path, "timeout"), limits::agent_timeout_ms_max);
    if (value && value->ms > 0) {
      agent.timeout_ms = value->ms;
    } else {
      if (value) Error(*timeout, Child(path, "timeout"), "the timeout must be positive");
      ok = false;
    }
  }
  if (const SourceNode* budget = with->Find("budget")) {
    const std::string at = Child(path, "budget");
    if (!Expect(*budget, at, SourceNode::Kind::kMapping)) {
      ok = false;
    } else {
      ok = CheckProperties(*budget, at, "an agent call's budget", {"tokens", "cost"}) && ok;
      if (const SourceNode* tokens = budget->Find("tokens")) {
        auto value = whole(*tokens, Child(at, "tokens"), 1, uint64_t{1} << 40);
        if (value) {
          agent.budget_tokens = *value;
        } else {
          ok = false;
        }
      }
      if (const SourceNode* cost = budget->Find("cost")) {
        const bool number = cost->kind == SourceNode::Kind::kScalar && cost->scalar.is_number();
        const double amount = number ? cost->scalar.get<double>() : -1;
        if (!number || !(amount > 0) || amount > 1e9) {
          Error(*cost, Child(at, "cost"),
                "expected a positive amount of money (e.g. 0.25), got " +
                    std::string(DescribeNode(*cost)));
          ok = false;
        } else {
          agent.budget_cost_micros = static_cast<int64_t>(amount * 1e6 + 0.5);
        }
      }
    }
  }
  if (const SourceNode* name = with->Find("agent")) {
    if (auto value = String(*name, Child(path, "agent"))) {
      agent.agent = *value;
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return agent;
}

void Loader::CheckHttpWith(const SourceNode& with, std::string_view path) {
  CheckProperties(with, path, "an http call's `with`",
                  {"method", "endpoint", "headers", "body", "query", "output", "redirect"});
  Require(with, path, "an http call's `with`", {"method", "endpoint"});
  if (const SourceNode* method = with.Find("method")) String(*method, Child(path, "method"));
  if (const SourceNode* endpoint = with.Find("endpoint")) {
    CheckEndpoint(*endpoint, Child(path, "endpoint"));
  }
  for (std::string_view key : {"headers", "query"}) {
    const SourceNode* map = with.Find(key);
    if (map != nullptr && !map->IsMapping() && !IsExpressionString(*map)) {
      Error(*map, Child(path, key),
            "expected a mapping or a runtime expression, got " + std::string(DescribeNode(*map)));
    }
  }
  if (const SourceNode* output = with.Find("output")) {
    auto mode = String(*output, Child(path, "output"));
    if (mode && *mode != "raw" && *mode != "content" && *mode != "response") {
      Error(*output, Child(path, "output"),
            "unknown http output '" + *mode + "' (expected raw, content or response)");
    }
  }
  if (const SourceNode* redirect = with.Find("redirect")) Bool(*redirect, Child(path, "redirect"));
}

void Loader::CheckEndpoint(const SourceNode& endpoint, std::string_view path) {
  if (endpoint.IsString()) {
    if (endpoint.scalar.get_ref<const std::string&>().empty()) {
      Error(endpoint, path, "an endpoint must not be empty");
    }
    return;
  }
  if (!endpoint.IsMapping()) {
    Error(endpoint, path,
          "expected a URI or {uri, authentication}, got " + std::string(DescribeNode(endpoint)));
    return;
  }
  CheckProperties(endpoint, path, "endpoint", {"uri", "authentication"});
  if (!Require(endpoint, path, "endpoint", {"uri"})) return;
  String(*endpoint.Find("uri"), Child(path, "uri"));
  const SourceNode* authentication = endpoint.Find("authentication");
  if (authentication == nullptr) return;
  std::string auth_path = Child(path, "authentication");
  if (!Expect(*authentication, auth_path, SourceNode::Kind::kMapping)) return;
  for (const SourceNode::Entry& entry : authentication->entries) {
    std::string entry_path = Child(auth_path, entry.key);
    if (entry.key == "use") {
      Error(entry.key_pos, entry_path,
            "authentication by name (use) is not supported (use.authentications is not "
            "supported)");
    } else if (entry.value->IsMapping() && entry.value->Find("use") != nullptr) {
      Error(entry.key_pos, entry_path,
            "secret-based authentication (" + entry.key +
                ".use) is not supported (cairn has no secret store)");
    }
  }
}

void Loader::CheckMcpWith(const SourceNode& with, std::string_view path) {
  CheckProperties(with, path, "an mcp call's `with`",
                  {"protocolVersion", "method", "parameters", "timeout", "transport", "client"});
  Require(with, path, "an mcp call's `with`", {"method", "transport"});
  if (const SourceNode* method = with.Find("method")) String(*method, Child(path, "method"));
  if (const SourceNode* version = with.Find("protocolVersion")) {
    String(*version, Child(path, "protocolVersion"));
  }
  if (const SourceNode* timeout = with.Find("timeout")) {
    ParseDuration(*timeout, Child(path, "timeout"), kDefinitionDurationMsMax);
  }
  const SourceNode* transport = with.Find("transport");
  if (transport == nullptr) return;
  std::string transport_path = Child(path, "transport");
  if (!Expect(*transport, transport_path, SourceNode::Kind::kMapping)) return;
  CheckProperties(*transport, transport_path, "mcp transport", {"http", "stdio", "options"});
  int kinds = (transport->Find("http") != nullptr) + (transport->Find("stdio") != nullptr);
  if (kinds != 1) {
    Error(*transport, transport_path, "an mcp transport needs exactly one of http, stdio");
  }
}

std::optional<TaskBody> Loader::ParseRun(const TaskSite& site) {
  const SourceNode& run = *site.map->Find("run");
  std::string path = Child(site.path, "run");
  if (!Expect(run, path, SourceNode::Kind::kMapping)) return std::nullopt;
  bool ok =
      CheckProperties(run, path, "run", {"shell", "await", "return"},
                      {{"container", "`run.container` is not supported (supported: run.shell)"},
                       {"script", "`run.script` is not supported (supported: run.shell)"},
                       {"workflow", "`run.workflow` is not supported yet (supported: run.shell)"}});
  const SourceNode* shell = run.Find("shell");
  if (shell == nullptr) {
    if (ok) Error(run, path, "run is missing its 'shell' property");
    return std::nullopt;
  }
  RunShellBody body;
  if (const SourceNode* await = run.Find("await")) {
    if (auto flag = Bool(*await, Child(path, "await"))) body.await = *flag;
  }
  if (const SourceNode* mode = run.Find("return")) {
    static constexpr std::pair<std::string_view, RunShellBody::Return> kModes[] = {
        {"stdout", RunShellBody::Return::kStdout},
        {"stderr", RunShellBody::Return::kStderr},
        {"code", RunShellBody::Return::kCode},
        {"all", RunShellBody::Return::kAll},
        {"none", RunShellBody::Return::kNone}};
    if (auto text = String(*mode, Child(path, "return"))) {
      auto found = std::find_if(std::begin(kModes), std::end(kModes),
                                [&](const auto& m) { return m.first == *text; });
      if (found == std::end(kModes)) {
        Error(*mode, Child(path, "return"),
              "unknown return '" + *text + "' (expected stdout, stderr, code, all or none)");
      } else {
        body.return_mode = found->second;
      }
    }
  }
  if (!ParseShell(*shell, Child(path, "shell"), site, &body) || !ok) return std::nullopt;
  return body;
}

bool Loader::ParseShell(const SourceNode& shell, std::string_view shell_path, const TaskSite& site,
                        RunShellBody* body) {
  if (!Expect(shell, shell_path, SourceNode::Kind::kMapping)) return false;
  CheckProperties(shell, shell_path, "run.shell", {"command", "arguments", "environment", "stdin"});
  if (!Require(shell, shell_path, "run.shell", {"command"})) return false;
  std::vector<std::string> variables = Variables(Place::kTaskBody, *site.scope);
  size_t errors_before = error_count_;
  const SourceNode& command = *shell.Find("command");
  if (String(command, Child(shell_path, "command"))) {
    body->command =
        TemplateValue(command, Child(shell_path, "command"), variables).value_or(Json());
  }
  if (const SourceNode* stdin_node = shell.Find("stdin")) {
    if (String(*stdin_node, Child(shell_path, "stdin"))) {
      body->stdin_value =
          TemplateValue(*stdin_node, Child(shell_path, "stdin"), variables).value_or(Json());
    }
  }
  // arguments: a sequence of scalars; environment: a mapping of scalars (templates).
  auto check_scalar = [&](const SourceNode& value, const std::string& value_path) {
    if (value.kind != SourceNode::Kind::kScalar || value.IsNull()) {
      Error(value, value_path,
            "expected a string, number or boolean, got " + std::string(DescribeNode(value)));
    }
  };
  if (const SourceNode* arguments = shell.Find("arguments")) {
    std::string arguments_path = Child(shell_path, "arguments");
    if (Expect(*arguments, arguments_path, SourceNode::Kind::kSequence)) {
      for (size_t i = 0; i < arguments->items.size(); ++i) {
        check_scalar(*arguments->items[i], Child(arguments_path, i));
      }
      if (auto json = TemplateValue(*arguments, arguments_path, variables)) body->arguments = *json;
    }
  }
  if (const SourceNode* environment = shell.Find("environment")) {
    std::string environment_path = Child(shell_path, "environment");
    if (Expect(*environment, environment_path, SourceNode::Kind::kMapping)) {
      for (const SourceNode::Entry& entry : environment->entries) {
        check_scalar(*entry.value, Child(environment_path, entry.key));
      }
      if (auto json = TemplateValue(*environment, environment_path, variables)) {
        body->environment = *json;
      }
    }
  }
  return error_count_ == errors_before;
}

std::optional<TaskBody> Loader::ParseListen(const TaskSite& site) {
  const SourceNode& listen = *site.map->Find("listen");
  std::string path = Child(site.path, "listen");
  if (!Expect(listen, path, SourceNode::Kind::kMapping)) return std::nullopt;
  CheckProperties(listen, path, "listen", {"to", "read"});
  if (!Require(listen, path, "listen", {"to"})) return std::nullopt;
  ListenBody body;
  if (const SourceNode* read = listen.Find("read")) {
    if (auto text = String(*read, Child(path, "read"))) {
      if (*text == "data") {
        body.read = ListenBody::Read::kData;
      } else if (*text == "envelope") {
        body.read = ListenBody::Read::kEnvelope;
      } else if (*text == "raw") {
        body.read = ListenBody::Read::kRaw;
      } else {
        Error(*read, Child(path, "read"),
              "unknown read mode '" + *text + "' (expected data, envelope or raw)");
      }
    }
  }
  const SourceNode& to = *listen.Find("to");
  std::string to_path = Child(path, "to");
  if (!Expect(to, to_path, SourceNode::Kind::kMapping)) return std::nullopt;
  bool ok = CheckProperties(to, to_path, "listen.to", {"one", "any", "all"},
                            {{"until", "listen.to.until is not supported"}});
  int strategies =
      (to.Find("one") != nullptr) + (to.Find("any") != nullptr) + (to.Find("all") != nullptr);
  if (strategies != 1) {
    Error(to, to_path, "listen.to needs exactly one of one, any, all");
    return std::nullopt;
  }
  std::vector<std::string> variables = Variables(Place::kTaskBody, *site.scope);
  if (const SourceNode* one = to.Find("one")) {
    body.mode = ListenBody::Mode::kOne;
    if (auto filter = ParseEventFilter(*one, Child(to_path, "one"), variables)) {
      body.filters.push_back(std::move(*filter));
    }
  } else {
    bool all = to.Find("all") != nullptr;
    body.mode = all ? ListenBody::Mode::kAll : ListenBody::Mode::kAny;
    const SourceNode& list = *to.Find(all ? "all" : "any");
    std::string list_path = Child(to_path, all ? "all" : "any");
    if (!Expect(list, list_path, SourceNode::Kind::kSequence)) return std::nullopt;
    if (all && list.items.empty()) {
      Error(list, list_path, "listen.to.all needs at least one event filter");
    }
    for (size_t i = 0; i < list.items.size(); ++i) {
      if (auto filter = ParseEventFilter(*list.items[i], Child(list_path, i), variables)) {
        body.filters.push_back(std::move(*filter));
      }
    }
  }
  if (!ok) return std::nullopt;
  return body;
}

std::optional<EventFilter> Loader::ParseEventFilter(const SourceNode& node, std::string_view path,
                                                    const std::vector<std::string>& variables) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  CheckProperties(node, path, "event filter", {"with"},
                  {{"correlate", "event correlation (correlate) is not supported"}});
  if (!Require(node, path, "event filter", {"with"})) return std::nullopt;
  const SourceNode& with = *node.Find("with");
  std::string with_path = Child(path, "with");
  if (!Expect(with, with_path, SourceNode::Kind::kMapping)) return std::nullopt;
  if (with.entries.empty()) {
    Error(with, with_path, "an event filter needs at least one attribute");
    return std::nullopt;
  }
  auto json = TemplateValue(with, with_path, variables);
  if (!json) return std::nullopt;
  return EventFilter{std::move(*json)};
}

}  // namespace cairn::engine::definition_impl
