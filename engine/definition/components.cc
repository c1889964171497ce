// Loader: the reusable components under `use`, and the timeouts, retry policies and errors
// that tasks give inline or by name.
//
// Named retry policies and errors may hold runtime expressions whose variables depend on
// where they are used (a catch's `as`, a loop's `each`), so their expressions are checked
// at every use with that place's variables; a component nobody uses is checked as if used
// by a top-level task (retry policies: by a catch with `as: error`).
#include <string>

#include "base/limits.h"
#include "engine/definition/duration.h"
#include "engine/definition/loader_impl.h"
#include "engine/expr/expression.h"

namespace cairn::engine::definition_impl {
namespace {

// `call:` names with a meaning of their own: a use.functions entry may not take them.
constexpr std::string_view kReservedCallNames[] = {"http",    "mcp", "asyncapi", "grpc",
                                                   "openapi", "a2a", "agent"};

}  // namespace

void Loader::LoadUse(const SourceNode& node, Definition* out) {
  const std::string path = "/use";
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return;
  CheckProperties(
      node, path, "use", {"functions", "retries", "timeouts", "errors"},
      {{"authentications",
        "use.authentications is not supported (authentication policies are not supported "
        "yet)"},
       {"secrets", "use.secrets is not supported (cairn has no secret store)"},
       {"extensions", "use.extensions is not supported"},
       {"catalogs",
        "use.catalogs is not supported (call tools registered in cairn's "
        "catalog by name instead)"}});
  if (const SourceNode* timeouts = node.Find("timeouts")) {
    std::map<std::string, NamedComponent> named;
    CollectNamed(*timeouts, Child(path, "timeouts"), &named);
    for (const auto& [name, component] : named) {
      const SourceNode& timeout = *component.node;
      timeouts_[name] = Expect(timeout, component.path, SourceNode::Kind::kMapping)
                            ? ParseTimeout(timeout, component.path)
                            : std::nullopt;
    }
  }
  if (const SourceNode* retries = node.Find("retries")) {
    CollectNamed(*retries, Child(path, "retries"), &retries_);
    for (const auto& [name, component] : retries_) {
      ParseRetry(*component.node, component.path, nullptr);
    }
  }
  if (const SourceNode* errors = node.Find("errors")) {
    CollectNamed(*errors, Child(path, "errors"), &errors_);
    for (const auto& [name, component] : errors_) {
      ParseErrorTemplate(*component.node, component.path, nullptr);
    }
  }
  if (const SourceNode* functions = node.Find("functions")) LoadFunctions(*functions, out);
}

// use.functions: names first (so a function's call can be told from a tool), then bodies.
void Loader::LoadFunctions(const SourceNode& functions, Definition* out) {
  const std::string path = "/use/functions";
  std::map<std::string, NamedComponent> named;
  CollectNamed(functions, path, &named);
  for (const auto& [name, component] : named) {
    bool reserved = false;
    for (std::string_view call_name : kReservedCallNames) reserved |= name == call_name;
    if (reserved) {
      std::string message = "a use.functions entry cannot be named '" + name;
      message += "' (`call: " + name + "` has a meaning of its own)";
      Error(*component.node, component.path, message);
      continue;
    }
    functions_.insert(name);
  }
  Scope top;
  for (const SourceNode::Entry& entry : functions.entries) {
    if (functions_.count(entry.key) == 0) continue;
    TaskSite site;
    site.name = entry.key;
    site.map = entry.value.get();
    site.path = Child(path, entry.key);
    site.pos = entry.key_pos;
    site.scope = &top;
    site.depth = 1;
    site.in_function = true;
    if (!Expect(*site.map, site.path, SourceNode::Kind::kMapping)) continue;
    std::optional<Task> task = ParseTask(site);
    if (!task) continue;
    if (task->KindName() != "call" && task->KindName() != "run") {
      Error(entry.key_pos, site.path,
            "a use.functions entry must be a call or run task, got a " +
                std::string(task->KindName()) + " task");
      continue;
    }
    out->functions.emplace(entry.key, std::move(*task));
  }
}

void Loader::CollectNamed(const SourceNode& map, std::string_view path,
                          std::map<std::string, NamedComponent>* into) {
  if (!Expect(map, path, SourceNode::Kind::kMapping)) return;
  for (const SourceNode::Entry& entry : map.entries) {
    std::string entry_path = Child(path, entry.key);
    if (entry.key.empty()) {
      Error(entry.key_pos, entry_path, "a name must not be empty");
      continue;
    }
    (*into)[entry.key] = NamedComponent{entry.value.get(), entry_path, false};
  }
}

std::string Loader::KnownNames(const std::map<std::string, NamedComponent>& named,
                               std::string_view section) const {
  if (named.empty()) return "(no " + std::string(section) + " are defined)";
  std::string out = "(expected one of the " + std::string(section) + ": ";
  bool first = true;
  for (const auto& [name, component] : named) {
    if (!first) out += ", ";
    out += name;
    first = false;
  }
  return out + ")";
}

std::optional<Duration> Loader::ParseTimeout(const SourceNode& node, std::string_view path) {
  if (node.IsString()) {
    const std::string& name = node.scalar.get_ref<const std::string&>();
    auto it = timeouts_.find(name);
    if (it != timeouts_.end()) return it->second;  // nullopt: its error is reported already
    std::map<std::string, NamedComponent> known;
    for (const auto& [known_name, duration] : timeouts_) known[known_name] = {};
    Error(node, path, "unknown timeout '" + name + "' " + KnownNames(known, "use.timeouts"));
    return std::nullopt;
  }
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  CheckProperties(node, path, "timeout", {"after"});
  if (!Require(node, path, "timeout", {"after"})) return std::nullopt;
  std::string after_path = Child(path, "after");
  auto duration = ParseDuration(*node.Find("after"), after_path, kDefinitionDurationMsMax);
  if (duration && duration->ms == 0) {
    Error(*node.Find("after"), after_path, "a timeout must be longer than zero");
    return std::nullopt;
  }
  return duration;
}

// `variables` null: check the structure only (a named policy before its uses).
std::optional<RetryPolicy> Loader::ParseRetry(const SourceNode& node, std::string_view path,
                                              const std::vector<std::string>* variables) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  size_t errors_before = error_count_;
  CheckProperties(node, path, "retry policy",
                  {"when", "exceptWhen", "delay", "backoff", "limit", "jitter"});
  RetryPolicy policy;
  for (std::string_view key : {"when", "exceptWhen"}) {
    const SourceNode* condition = node.Find(key);
    if (condition == nullptr) continue;
    std::string condition_path = Child(path, key);
    if (!String(*condition, condition_path)) continue;
    if (variables != nullptr) CheckImplicit(*condition, condition_path, *variables);
    (key == "when" ? policy.when : policy.except_when) = condition->scalar;
  }
  if (const SourceNode* delay = node.Find("delay")) {
    if (auto d = ParseDuration(*delay, Child(path, "delay"), limits::retry_delay_ms_max)) {
      policy.delay = *d;
    }
  }
  if (const SourceNode* backoff = node.Find("backoff")) {
    ParseBackoff(*backoff, Child(path, "backoff"), &policy);
  }
  if (const SourceNode* limit = node.Find("limit")) {
    ParseRetryLimit(*limit, Child(path, "limit"), &policy);
  }
  if (const SourceNode* jitter = node.Find("jitter")) {
    ParseJitter(*jitter, Child(path, "jitter"), &policy);
  }
  if (error_count_ != errors_before) return std::nullopt;
  return policy;
}

void Loader::ParseBackoff(const SourceNode& node, std::string_view path, RetryPolicy* policy) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return;
  CheckProperties(node, path, "backoff", {"constant", "linear", "exponential"});
  if (node.entries.size() != 1) {
    Error(node, path, "backoff needs exactly one of constant, linear, exponential");
  }
  for (const SourceNode::Entry& entry : node.entries) {
    if (!entry.value->IsNull() && !(entry.value->IsMapping() && entry.value->entries.empty())) {
      Error(*entry.value, Child(path, entry.key),
            "backoff." + entry.key + " takes no settings (expected {})");
    }
    if (entry.key == "linear") policy->backoff.kind = Backoff::Kind::kLinear;
    if (entry.key == "exponential") policy->backoff.kind = Backoff::Kind::kExponential;
  }
}

void Loader::ParseRetryLimit(const SourceNode& node, std::string_view path, RetryPolicy* policy) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return;
  CheckProperties(node, path, "retry limit", {"attempt", "duration"});
  if (const SourceNode* duration = node.Find("duration")) {
    policy->total_duration =
        ParseDuration(*duration, Child(path, "duration"), kDefinitionDurationMsMax);
  }
  const SourceNode* attempt = node.Find("attempt");
  if (attempt == nullptr) return;
  std::string attempt_path = Child(path, "attempt");
  if (!Expect(*attempt, attempt_path, SourceNode::Kind::kMapping)) return;
  CheckProperties(*attempt, attempt_path, "retry attempt limit", {"count", "duration"});
  if (const SourceNode* count = attempt->Find("count")) {
    const Json& value = count->scalar;
    if (count->kind != SourceNode::Kind::kScalar || !value.is_number_integer() ||
        (!value.is_number_unsigned() && value.get<int64_t>() < 0) ||
        value.get<uint64_t>() > limits::retry_attempts_max) {
      Error(*count, Child(attempt_path, "count"),
            "expected an integer from 0 to " + std::to_string(limits::retry_attempts_max) +
                ", got " +
                (count->kind == SourceNode::Kind::kScalar ? DumpJson(value)
                                                          : std::string(DescribeNode(*count))));
    } else {
      policy->attempt_count = value.get<uint32_t>();
    }
  }
  if (const SourceNode* duration = attempt->Find("duration")) {
    policy->attempt_duration =
        ParseDuration(*duration, Child(attempt_path, "duration"), kDefinitionDurationMsMax);
  }
}

void Loader::ParseJitter(const SourceNode& node, std::string_view path, RetryPolicy* policy) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return;
  CheckProperties(node, path, "jitter", {"from", "to"});
  if (!Require(node, path, "jitter", {"from", "to"})) return;
  policy->jitter_from =
      ParseDuration(*node.Find("from"), Child(path, "from"), limits::retry_delay_ms_max);
  policy->jitter_to =
      ParseDuration(*node.Find("to"), Child(path, "to"), limits::retry_delay_ms_max);
  if (policy->jitter_from && policy->jitter_to && policy->jitter_from->ms > policy->jitter_to->ms) {
    Error(node, path, "jitter.from is longer than jitter.to");
  }
}

std::optional<RetryPolicy> Loader::RetryOrReference(const SourceNode& node, std::string_view path,
                                                    const std::vector<std::string>& variables) {
  if (!node.IsString()) return ParseRetry(node, path, &variables);
  const std::string& name = node.scalar.get_ref<const std::string&>();
  auto it = retries_.find(name);
  if (it == retries_.end()) {
    Error(node, path, "unknown retry policy '" + name + "' " + KnownNames(retries_, "use.retries"));
    return std::nullopt;
  }
  it->second.used = true;
  return ParseRetry(*it->second.node, it->second.path, &variables);
}

// `variables` null: check the structure only (a named error before its uses).
std::optional<ErrorTemplate> Loader::ParseErrorTemplate(const SourceNode& node,
                                                        std::string_view path,
                                                        const std::vector<std::string>* variables) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  size_t errors_before = error_count_;
  CheckProperties(node, path, "error", {"type", "status", "instance", "title", "detail"});
  Require(node, path, "error", {"type", "status"});
  ErrorTemplate error;
  for (const SourceNode::Entry& entry : node.entries) {
    std::string entry_path = Child(path, entry.key);
    const SourceNode& value = *entry.value;
    bool expression =
        value.IsString() && IsRuntimeExpression(value.scalar.get_ref<const std::string&>());
    if (entry.key == "status") {
      if (!expression &&
          !(value.kind == SourceNode::Kind::kScalar && value.scalar.is_number_integer())) {
        Error(
            value, entry_path,
            "expected an integer or a runtime expression, got " + std::string(DescribeNode(value)));
        continue;
      }
      error.status = value.scalar;
    } else if (entry.key == "type" || entry.key == "instance" || entry.key == "title" ||
               entry.key == "detail") {
      auto text = String(value, entry_path);
      if (!text) continue;
      if (text->empty()) {
        Error(value, entry_path, "error " + entry.key + " must not be empty");
        continue;
      }
      Template& field = entry.key == "type"       ? error.type
                        : entry.key == "instance" ? error.instance
                        : entry.key == "title"    ? error.title
                                                  : error.detail;
      field = value.scalar;
    } else {
      continue;
    }
    if (expression && variables != nullptr) CheckTemplate(value, entry_path, *variables);
  }
  if (error_count_ != errors_before) return std::nullopt;
  return error;
}

std::optional<ErrorTemplate> Loader::ErrorOrReference(const SourceNode& node, std::string_view path,
                                                      const std::vector<std::string>& variables) {
  if (!node.IsString()) return ParseErrorTemplate(node, path, &variables);
  const std::string& name = node.scalar.get_ref<const std::string&>();
  auto it = errors_.find(name);
  if (it == errors_.end()) {
    Error(node, path, "unknown error '" + name + "' " + KnownNames(errors_, "use.errors"));
    return std::nullopt;
  }
  it->second.used = true;
  return ParseErrorTemplate(*it->second.node, it->second.path, &variables);
}

void Loader::CheckUnusedComponents() {
  Scope catch_scope{{"error"}};
  std::vector<std::string> retry_variables = Variables(Place::kTaskBody, catch_scope);
  for (const auto& [name, component] : retries_) {
    if (!component.used) ParseRetry(*component.node, component.path, &retry_variables);
  }
  std::vector<std::string> error_variables = Variables(Place::kTaskBody, Scope{});
  for (const auto& [name, component] : errors_) {
    if (!component.used) {
      ParseErrorTemplate(*component.node, component.path, &error_variables);
    }
  }
}

}  // namespace cairn::engine::definition_impl
