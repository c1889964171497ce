// Loader: `then` directives, resolved within their task list, and the refusal of
// unconditional `then` cycles.
//
// A cycle is refused when every task on it is *inert*: it can neither fail, branch nor
// stop, so once entered the run would loop until the engine's step bound. A task is inert
// when it has no `if`, `timeout`, `input`, `output` or `export`, and its body is
//   - `set` with no runtime expression in its value,
//   - `wait`,
//   - `switch` whose only case is a default one (no `when`): it always takes that case's
//     `then`, or
//   - `do` whose tasks are all inert and none of them says `then: end`.
// Every other task (call, run, listen, raise, try, for, a switch with a `when`, and any
// task with an expression or a schema, which may fail) is a way out, and cycles through it
// are legal: they are bounded at run time (limits::run_steps_max).
#include <string>

#include "engine/definition/loader_impl.h"
#include "engine/expr/expression.h"

namespace cairn::engine::definition_impl {
namespace {

constexpr size_t kNamesShown = 12;

bool HasExpression(const Json& value) {
  if (value.is_string()) return IsRuntimeExpression(value.get_ref<const std::string&>());
  if (value.is_array() || value.is_object()) {
    for (const Json& item : value) {
      if (HasExpression(item)) return true;
    }
  }
  return false;
}

bool HasDataFilter(const DataFilter& filter) {
  return filter.schema.has_value() || filter.transform.has_value();
}

bool IsInert(const Task& task) {
  if (task.if_ || task.timeout || HasDataFilter(task.input) || HasDataFilter(task.output) ||
      HasDataFilter(task.export_)) {
    return false;
  }
  if (const auto* set = std::get_if<SetBody>(&task.body)) return !HasExpression(set->value);
  if (std::holds_alternative<WaitBody>(task.body)) return true;
  if (const auto* choice = std::get_if<SwitchBody>(&task.body)) {
    return choice->cases.size() == 1 && !choice->cases.front().when;
  }
  if (const auto* block = std::get_if<DoBody>(&task.body)) {
    for (const Task& inner : block->tasks) {
      if (!IsInert(inner) || inner.then.kind == FlowDirective::Kind::kEnd) return false;
    }
    return true;
  }
  return false;
}

// Where an inert task goes next.
const FlowDirective& NextDirective(const Task& task) {
  if (const auto* choice = std::get_if<SwitchBody>(&task.body)) return choice->cases.front().then;
  return task.then;
}

std::string NameList(const TaskList& tasks) {
  std::string out;
  for (size_t i = 0; i < tasks.size() && i < kNamesShown; ++i) {
    out += (i == 0 ? "" : ", ") + tasks[i].name;
  }
  if (tasks.size() > kNamesShown) out += ", ...";
  return out;
}

}  // namespace

std::optional<FlowDirective> Loader::ParseFlowDirective(const SourceNode& node,
                                                        std::string_view path, const TaskSite& site,
                                                        int case_index) {
  auto text = String(node, path);
  if (!text) return std::nullopt;
  FlowDirective directive;
  if (*text == "continue") return directive;
  if (*text == "exit") {
    directive.kind = FlowDirective::Kind::kExit;
    return directive;
  }
  if (*text == "end") {
    directive.kind = FlowDirective::Kind::kEnd;
    return directive;
  }
  if (text->empty()) {
    Error(node, path, "empty flow directive (expected continue, exit, end or a task name)");
    return std::nullopt;
  }
  if (site.flows == nullptr) {
    Error(node, path,
          "`then: " + *text +
              "` cannot go to a task: a use.functions entry has no sibling tasks (expected "
              "continue, exit or end)");
    return std::nullopt;
  }
  directive.kind = FlowDirective::Kind::kGoto;
  directive.target = *text;
  site.flows->push_back(PendingFlow{site.index, case_index, &node, std::string(path)});
  return directive;
}

void Loader::ResolveFlows(TaskList* tasks, const std::vector<PendingFlow>& flows) {
  std::map<std::string_view, size_t> index;
  for (size_t i = 0; i < tasks->size(); ++i) index.emplace((*tasks)[i].name, i);
  for (const PendingFlow& flow : flows) {
    Task& task = (*tasks)[flow.task_index];
    FlowDirective* directive = &task.then;
    if (flow.case_index >= 0) {
      auto* body = std::get_if<SwitchBody>(&task.body);
      // The task failed to parse after its cases did: nothing to resolve into.
      if (body == nullptr) continue;
      directive = &body->cases[static_cast<size_t>(flow.case_index)].then;
    }
    const std::string& target = flow.node->scalar.get_ref<const std::string&>();
    auto found = index.find(target);
    if (found == index.end() || target.empty()) {
      Error(*flow.node, flow.path,
            "unknown task '" + target +
                "' in `then` (expected continue, exit, end or a task of the same list: " +
                NameList(*tasks) + ")");
      continue;
    }
    directive->kind = FlowDirective::Kind::kGoto;
    directive->target = target;
    directive->target_index = static_cast<uint32_t>(found->second);
  }
}

void Loader::CheckCycles(const TaskList& tasks) {
  const size_t n = tasks.size();
  constexpr size_t kOut = static_cast<size_t>(-1);
  std::vector<size_t> next(n, kOut);
  for (size_t i = 0; i < n; ++i) {
    if (!IsInert(tasks[i])) continue;  // a way out: not part of an inescapable cycle
    const FlowDirective& directive = NextDirective(tasks[i]);
    switch (directive.kind) {
      case FlowDirective::Kind::kContinue:
        next[i] = i + 1 < n ? i + 1 : kOut;
        break;
      case FlowDirective::Kind::kGoto:
        next[i] = directive.target_index;
        break;
      case FlowDirective::Kind::kExit:
      case FlowDirective::Kind::kEnd:
        break;
    }
  }
  enum Color : uint8_t { kUnseen = 0, kOnWalk, kDone };
  std::vector<Color> color(n, kUnseen);
  for (size_t start = 0; start < n; ++start) {
    std::vector<size_t> walk;
    size_t at = start;
    while (at != kOut && color[at] == kUnseen) {
      color[at] = kOnWalk;
      walk.push_back(at);
      at = next[at];
    }
    if (at != kOut && color[at] == kOnWalk) {
      size_t first = 0;
      while (walk[first] != at) ++first;
      size_t earliest = at;
      std::string cycle;
      for (size_t k = first; k < walk.size(); ++k) {
        cycle += tasks[walk[k]].name + " -> ";
        earliest = std::min(earliest, walk[k]);
      }
      cycle += tasks[at].name;
      const Task& report = tasks[earliest];
      Error(report.pos, report.path,
            "tasks " + cycle +
                " loop forever: none of them can fail, branch or leave the loop (give one "
                "an `if`, route through a `switch`, or change a `then`)");
    }
    for (size_t k : walk) color[k] = kDone;
  }
}

}  // namespace cairn::engine::definition_impl
