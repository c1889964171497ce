// Loader: task lists, the properties every task has, and the control-flow task types
// (do, set, switch, for, try/catch, raise, wait). Calls, run and listen are in calls.cc.
#include <algorithm>
#include <string>

#include "base/limits.h"
#include "engine/definition/duration.h"
#include "engine/definition/loader_impl.h"
#include "engine/expr/expression.h"

namespace cairn::engine::definition_impl {
namespace {

constexpr std::string_view kTaskTypes[] = {"call",  "do",  "emit", "for",    "fork", "listen",
                                           "raise", "run", "set",  "switch", "try",  "wait"};
constexpr std::string_view kSupportedTypes =
    "call, do, for, listen, raise, run, set, switch, try, wait";

bool IsTaskType(std::string_view key) {
  return std::find(std::begin(kTaskTypes), std::end(kTaskTypes), key) != std::end(kTaskTypes);
}

bool IsCommonProperty(std::string_view key) {
  for (std::string_view common :
       {"if", "input", "output", "export", "timeout", "then", "metadata"}) {
    if (key == common) return true;
  }
  return false;
}

std::string Position(SourcePos pos) {
  return "line " + std::to_string(pos.line) + ", column " + std::to_string(pos.column);
}

Scope Extend(const Scope& scope, std::initializer_list<std::string> names) {
  Scope out = scope;
  for (const std::string& name : names) out.names.push_back(name);
  return out;
}

}  // namespace

TaskList Loader::ParseTaskList(const SourceNode& node, std::string_view path, const Scope& scope,
                               size_t depth) {
  TaskList tasks;
  if (depth > limits::definition_depth_max) {
    Error(
        node, path,
        "task lists nest deeper than " + std::to_string(limits::definition_depth_max) + " levels");
    return tasks;
  }
  if (!Expect(node, path, SourceNode::Kind::kSequence)) return tasks;
  size_t errors_before = error_count_;
  std::vector<PendingFlow> flows;
  std::map<std::string, SourcePos, std::less<>> names;
  for (size_t i = 0; i < node.items.size() && !tasks_exceeded_; ++i) {
    const SourceNode& item = *node.items[i];
    std::string item_path = Child(path, i);
    tasks.emplace_back();  // kept aligned with the document, even for a broken entry
    if (!item.IsMapping() || item.entries.size() != 1) {
      Error(item, item_path,
            "a task list entry must be a mapping with exactly one key, the task's name (got " +
                (item.IsMapping() ? std::to_string(item.entries.size()) + " keys"
                                  : std::string(DescribeNode(item))) +
                ")");
      continue;
    }
    const SourceNode::Entry& entry = item.entries.front();
    TaskSite site;
    site.name = entry.key;
    site.map = entry.value.get();
    site.path = Child(path, i) + "/" + EscapePointerToken(entry.key);
    site.pos = entry.key_pos;
    site.scope = &scope;
    site.depth = depth;
    site.index = i;
    site.flows = &flows;
    tasks.back().name = entry.key;
    if (entry.key.empty()) {
      Error(entry.key_pos, site.path, "a task name must not be empty");
      continue;
    }
    auto [first, inserted] = names.emplace(entry.key, entry.key_pos);
    if (!inserted) {
      Error(entry.key_pos, site.path,
            "duplicate task name '" + entry.key + "' in this list (first at " +
                Position(first->second) +
                "); names are unique within a task list so that `then` can name them");
    }
    if (!Expect(*site.map, site.path, SourceNode::Kind::kMapping)) continue;
    if (std::optional<Task> task = ParseTask(site)) tasks.back() = std::move(*task);
  }
  ResolveFlows(&tasks, flows);
  // A broken task is a placeholder: looking for cycles through it would mislead.
  if (error_count_ == errors_before) CheckCycles(tasks);
  return tasks;
}

std::optional<Task> Loader::ParseTask(const TaskSite& site) {
  if (++tasks_ > limits::definition_tasks_max) {
    if (!tasks_exceeded_) {
      Error(site.pos, site.path,
            "the definition has more than " + std::to_string(limits::definition_tasks_max) +
                " tasks");
    }
    tasks_exceeded_ = true;
    return std::nullopt;
  }
  std::optional<std::string_view> type = TaskType(site);
  if (!type) return std::nullopt;
  Task task;
  task.name = std::string(site.name);
  task.path = site.path;
  task.pos = site.pos;
  bool ok = ParseTaskCommon(site, &task);
  std::optional<TaskBody> body = ParseBody(*type, site);
  if (!body || !ok) return std::nullopt;
  task.body = std::move(*body);
  return task;
}

// The one task-type key of the task; reports none, several, or a refused one.
std::optional<std::string_view> Loader::TaskType(const TaskSite& site) {
  std::vector<std::string_view> types;
  bool is_for = site.map->Find("for") != nullptr;
  for (const SourceNode::Entry& entry : site.map->entries) {
    if (!IsTaskType(entry.key) || (is_for && entry.key == "do")) continue;
    types.push_back(entry.key);
  }
  std::string name = "task '" + std::string(site.name) + "'";
  if (types.empty()) {
    Error(site.pos, site.path,
          name + " has no task type (expected one of: " + std::string(kSupportedTypes) + ")");
    for (const SourceNode::Entry& entry : site.map->entries) {
      if (IsCommonProperty(entry.key)) continue;
      Error(entry.key_pos, Child(site.path, entry.key),
            "unknown property '" + entry.key + "' in " + name);
    }
    return std::nullopt;
  }
  if (types.size() > 1) {
    std::string list;
    for (std::string_view type : types) list += (list.empty() ? "" : ", ") + std::string(type);
    Error(site.pos, site.path,
          name + " has several task types: " + list + " (expected exactly one)");
    return std::nullopt;
  }
  if (types.front() == "fork" || types.front() == "emit") {
    const SourceNode::Entry* entry = site.map->FindEntry(types.front());
    Error(entry->key_pos, Child(site.path, entry->key),
          "`" + std::string(types.front()) +
              "` tasks are not supported (supported: " + std::string(kSupportedTypes) + ")");
    return std::nullopt;
  }
  return types.front();
}

bool Loader::ParseTaskCommon(const TaskSite& site, Task* task) {
  const SourceNode& map = *site.map;
  const Scope& scope = *site.scope;
  size_t errors_before = error_count_;
  if (const SourceNode* condition = map.Find("if")) {
    std::string path = Child(site.path, "if");
    if (String(*condition, path)) {
      CheckImplicit(*condition, path, Variables(Place::kTaskIf, scope));
      task->if_ = condition->scalar;
    }
  }
  struct FilterSpec {
    const char* key;
    const char* what;
    const char* transform;
    Place place;
    DataFilter* into;
  };
  for (const FilterSpec& spec :
       {FilterSpec{"input", "task input", "from", Place::kTaskInputFrom, &task->input},
        FilterSpec{"output", "task output", "as", Place::kTaskOutputAs, &task->output},
        FilterSpec{"export", "export", "as", Place::kTaskExportAs, &task->export_}}) {
    const SourceNode* node = map.Find(spec.key);
    if (node == nullptr) continue;
    auto filter = ParseDataFilter(*node, Child(site.path, spec.key), spec.what, spec.transform,
                                  spec.place, scope);
    if (filter) *spec.into = std::move(*filter);
  }
  if (const SourceNode* timeout = map.Find("timeout")) {
    task->timeout = ParseTimeout(*timeout, Child(site.path, "timeout"));
  }
  if (const SourceNode* then = map.Find("then")) {
    if (auto directive = ParseFlowDirective(*then, Child(site.path, "then"), site, -1)) {
      task->then = *directive;
    }
  }
  if (const SourceNode* metadata = map.Find("metadata")) {
    std::string path = Child(site.path, "metadata");
    if (Expect(*metadata, path, SourceNode::Kind::kMapping)) CheckDepth(*metadata, path);
  }
  return error_count_ == errors_before;
}

std::optional<TaskBody> Loader::ParseBody(std::string_view type, const TaskSite& site) {
  static constexpr std::string_view kCommon[] = {"if",      "input", "output",  "export",
                                                 "timeout", "then",  "metadata"};
  auto allowed = [&](std::initializer_list<std::string_view> own) {
    std::vector<std::string_view> all(std::begin(kCommon), std::end(kCommon));
    all.insert(all.end(), own.begin(), own.end());
    return all;
  };
  std::vector<std::string_view> keys;
  if (type == "call") keys = allowed({"call", "with"});
  if (type == "do") keys = allowed({"do"});
  if (type == "for") keys = allowed({"for", "while", "do"});
  if (type == "listen") keys = allowed({"listen"});
  if (type == "raise") keys = allowed({"raise"});
  if (type == "run") keys = allowed({"run"});
  if (type == "set") keys = allowed({"set"});
  if (type == "switch") keys = allowed({"switch"});
  if (type == "try") keys = allowed({"try", "catch"});
  if (type == "wait") keys = allowed({"wait"});
  std::string what = std::string(type) + " task";
  bool ok = true;
  for (const SourceNode::Entry& entry : site.map->entries) {
    if (std::find(keys.begin(), keys.end(), entry.key) != keys.end()) continue;
    ok = false;
    std::string path = Child(site.path, entry.key);
    if (type == "listen" && entry.key == "foreach") {
      Error(entry.key_pos, path, "listen `foreach` is not supported");
      continue;
    }
    std::vector<std::string_view> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    std::string list;
    for (std::string_view key : sorted) list += (list.empty() ? "" : ", ") + std::string(key);
    std::string message = "unknown property '" + entry.key + "' in " + what;
    message += " (expected one of: " + list + ")";
    Error(entry.key_pos, path, message);
  }
  std::optional<TaskBody> body;
  if (type == "call") body = ParseCall(site);
  if (type == "do") body = ParseDo(site);
  if (type == "for") body = ParseFor(site);
  if (type == "listen") body = ParseListen(site);
  if (type == "raise") body = ParseRaise(site);
  if (type == "run") body = ParseRun(site);
  if (type == "set") body = ParseSet(site);
  if (type == "switch") body = ParseSwitch(site);
  if (type == "try") body = ParseTry(site);
  if (type == "wait") body = ParseWait(site);
  if (!ok) return std::nullopt;
  return body;
}

std::optional<TaskBody> Loader::ParseDo(const TaskSite& site) {
  const SourceNode& list = *site.map->Find("do");
  return DoBody{ParseTaskList(list, Child(site.path, "do"), *site.scope, site.depth + 1)};
}

std::optional<TaskBody> Loader::ParseSet(const TaskSite& site) {
  const SourceNode& value = *site.map->Find("set");
  std::string path = Child(site.path, "set");
  std::vector<std::string> variables = Variables(Place::kTaskBody, *site.scope);
  if (value.IsMapping()) {
    if (value.entries.empty()) {
      Error(value, path, "`set` needs at least one property");
      return std::nullopt;
    }
  } else if (!value.IsString() ||
             !IsRuntimeExpression(value.scalar.get_ref<const std::string&>())) {
    Error(value, path,
          "expected a mapping or a runtime expression `${ ... }`, got " +
              std::string(DescribeNode(value)));
    return std::nullopt;
  }
  auto json = TemplateValue(value, path, variables);
  if (!json) return std::nullopt;
  return SetBody{std::move(*json)};
}

std::optional<TaskBody> Loader::ParseSwitch(const TaskSite& site) {
  const SourceNode& cases = *site.map->Find("switch");
  std::string path = Child(site.path, "switch");
  if (!Expect(cases, path, SourceNode::Kind::kSequence)) return std::nullopt;
  if (cases.items.empty()) {
    Error(cases, path, "a switch needs at least one case");
    return std::nullopt;
  }
  std::vector<std::string> variables = Variables(Place::kTaskBody, *site.scope);
  SwitchBody body;
  std::optional<size_t> default_case;
  for (size_t i = 0; i < cases.items.size(); ++i) {
    const SourceNode& item = *cases.items[i];
    std::string item_path = Child(path, i);
    body.cases.emplace_back();
    if (!item.IsMapping() || item.entries.size() != 1) {
      Error(item, item_path, "a switch case must be a mapping with exactly one key, its name");
      continue;
    }
    const SourceNode::Entry& entry = item.entries.front();
    SwitchCase& switch_case = body.cases.back();
    switch_case.name = entry.key;
    std::string case_path = Child(item_path, entry.key);
    const SourceNode& spec = *entry.value;
    if (!Expect(spec, case_path, SourceNode::Kind::kMapping)) continue;
    CheckProperties(spec, case_path, "switch case", {"when", "then"});
    if (!Require(spec, case_path, "switch case '" + entry.key + "'", {"then"})) continue;
    if (const SourceNode* when = spec.Find("when")) {
      std::string when_path = Child(case_path, "when");
      if (String(*when, when_path)) {
        CheckImplicit(*when, when_path, variables);
        switch_case.when = when->scalar;
      }
    } else if (default_case) {
      Error(entry.key_pos, case_path,
            "a switch has at most one default case (without `when`); '" +
                body.cases[*default_case].name + "' is one already");
    } else {
      default_case = i;
    }
    if (auto then = ParseFlowDirective(*spec.Find("then"), Child(case_path, "then"), site,
                                       static_cast<int>(i))) {
      switch_case.then = *then;
    }
  }
  return body;
}

std::optional<TaskBody> Loader::ParseFor(const TaskSite& site) {
  const SourceNode& spec = *site.map->Find("for");
  std::string path = Child(site.path, "for");
  if (!Expect(spec, path, SourceNode::Kind::kMapping)) return std::nullopt;
  CheckProperties(spec, path, "for", {"each", "in", "at"});
  if (!Require(spec, path, "for", {"in"}) || !Require(*site.map, site.path, "for task", {"do"})) {
    return std::nullopt;
  }
  ForBody body;
  if (const SourceNode* each = spec.Find("each")) {
    if (auto name = Identifier(*each, Child(path, "each"))) body.each = *name;
  }
  if (const SourceNode* at = spec.Find("at")) {
    if (auto name = Identifier(*at, Child(path, "at"))) body.at = *name;
  }
  if (body.each == body.at) {
    Error(spec, path, "for.each and for.at are both '" + body.each + "'");
  }
  const SourceNode& in = *spec.Find("in");
  std::string in_path = Child(path, "in");
  std::vector<std::string> variables = Variables(Place::kTaskBody, *site.scope);
  if (in.IsString()) {
    CheckImplicit(in, in_path, variables);
    body.in = in.scalar;
  } else if (in.IsSequence()) {
    if (auto json = TemplateValue(in, in_path, variables)) body.in = std::move(*json);
  } else {
    Error(in, in_path,
          "expected a runtime expression or a sequence, got " + std::string(DescribeNode(in)));
  }
  Scope inner = Extend(*site.scope, {body.each, body.at});
  if (const SourceNode* condition = site.map->Find("while")) {
    std::string while_path = Child(site.path, "while");
    if (String(*condition, while_path)) {
      CheckImplicit(*condition, while_path, Variables(Place::kTaskBody, inner));
      body.while_ = condition->scalar;
    }
  }
  body.tasks = ParseTaskList(*site.map->Find("do"), Child(site.path, "do"), inner, site.depth + 1);
  return body;
}

std::optional<TaskBody> Loader::ParseTry(const TaskSite& site) {
  if (!Require(*site.map, site.path, "try task", {"catch"})) return std::nullopt;
  TryBody body;
  body.tasks =
      ParseTaskList(*site.map->Find("try"), Child(site.path, "try"), *site.scope, site.depth + 1);
  auto handler = ParseCatch(*site.map->Find("catch"), Child(site.path, "catch"), site);
  if (!handler) return std::nullopt;
  body.catch_ = std::move(*handler);
  return body;
}

std::optional<Catch> Loader::ParseCatch(const SourceNode& node, std::string_view path,
                                        const TaskSite& site) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  CheckProperties(
      node, path, "catch", {"errors", "as", "when", "exceptWhen", "retry", "do"},
      {{"then", "catch.then is not supported yet (route with the try task's own `then`)"}});
  Catch handler;
  if (const SourceNode* errors = node.Find("errors")) {
    std::string errors_path = Child(path, "errors");
    if (Expect(*errors, errors_path, SourceNode::Kind::kMapping)) {
      CheckProperties(*errors, errors_path, "catch.errors", {"with"});
      if (const SourceNode* with = errors->Find("with")) {
        if (auto filter = ParseErrorFilter(*with, Child(errors_path, "with"))) {
          handler.errors = std::move(*filter);
        }
      }
    }
  }
  if (const SourceNode* as = node.Find("as")) {
    if (auto name = Identifier(*as, Child(path, "as"))) handler.as = *name;
  }
  Scope inner = Extend(*site.scope, {handler.as});
  std::vector<std::string> variables = Variables(Place::kTaskBody, inner);
  for (std::string_view key : {"when", "exceptWhen"}) {
    const SourceNode* condition = node.Find(key);
    if (condition == nullptr) continue;
    std::string condition_path = Child(path, key);
    if (!String(*condition, condition_path)) continue;
    CheckImplicit(*condition, condition_path, variables);
    (key == "when" ? handler.when : handler.except_when) = condition->scalar;
  }
  if (const SourceNode* retry = node.Find("retry")) {
    handler.retry = RetryOrReference(*retry, Child(path, "retry"), variables);
  }
  if (const SourceNode* tasks = node.Find("do")) {
    handler.do_ = ParseTaskList(*tasks, Child(path, "do"), inner, site.depth + 1);
  }
  return handler;
}

std::optional<ErrorFilter> Loader::ParseErrorFilter(const SourceNode& node, std::string_view path) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  bool ok = CheckProperties(node, path, "catch.errors.with",
                            {"type", "status", "instance", "title", "detail"});
  if (node.entries.empty()) {
    Error(node, path, "catch.errors.with needs at least one property");
    return std::nullopt;
  }
  for (const SourceNode::Entry& entry : node.entries) {
    std::string entry_path = Child(path, entry.key);
    const SourceNode& value = *entry.value;
    if (entry.key == "status") {
      if (value.kind != SourceNode::Kind::kScalar || !value.scalar.is_number_integer()) {
        Error(value, entry_path, "expected an integer, got " + std::string(DescribeNode(value)));
        ok = false;
      }
      continue;
    }
    auto text = String(value, entry_path);
    if (!text) {
      ok = false;
    } else if (IsRuntimeExpression(*text)) {
      Error(value, entry_path,
            "catch.errors.with takes literal values, not runtime expressions (use "
            "catch.when)");
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return ErrorFilter{ToJson(node)};
}

std::optional<TaskBody> Loader::ParseRaise(const TaskSite& site) {
  const SourceNode& spec = *site.map->Find("raise");
  std::string path = Child(site.path, "raise");
  if (!Expect(spec, path, SourceNode::Kind::kMapping)) return std::nullopt;
  CheckProperties(spec, path, "raise", {"error"});
  if (!Require(spec, path, "raise", {"error"})) return std::nullopt;
  auto error = ErrorOrReference(*spec.Find("error"), Child(path, "error"),
                                Variables(Place::kTaskBody, *site.scope));
  if (!error) return std::nullopt;
  return RaiseBody{std::move(*error)};
}

std::optional<TaskBody> Loader::ParseWait(const TaskSite& site) {
  auto duration =
      ParseDuration(*site.map->Find("wait"), Child(site.path, "wait"), kDefinitionDurationMsMax);
  if (!duration) return std::nullopt;
  return WaitBody{*duration};
}

}  // namespace cairn::engine::definition_impl
