// Internals of LoadDefinition: the Loader walks the source tree once, checks it against
// the supported subset and builds the Definition. Not part of the contract; see
// definition.h and README.md for what is accepted and refused.
//
// A Loader is used for one document by one thread, then dropped. It keeps going after an
// error wherever the rest can still be checked meaningfully, and collects at most
// Diagnostics::kErrorsMax messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/definition/definition.h"
#include "engine/definition/yaml_source.h"

namespace cairn::engine::definition_impl {

// Collected error lines, "SOURCE:LINE:COL: PATH: message", reported in document order.
class Diagnostics {
 public:
  static constexpr size_t kErrorsMax = 20;

  explicit Diagnostics(std::string source_name) : source_name_(std::move(source_name)) {}

  // Identical lines (a named component checked at several uses) are kept once.
  void Add(SourcePos pos, std::string_view path, std::string_view message);
  bool empty() const { return lines_.empty(); }
  // kInvalidArgument listing the lines by position; Ok when there are none.
  Status ToStatus() const;

 private:
  struct Line {
    SourcePos pos;
    size_t order;
    std::string text;
  };
  std::string source_name_;
  std::vector<Line> lines_;
  std::set<std::string> seen_;
  bool truncated_ = false;
};

// Where an expression runs, which decides the variables bound there (dsl.md, "Runtime
// expression arguments"); see the table in definition.h.
enum class Place : uint8_t {
  kWorkflowInputFrom = 0,
  kWorkflowOutputAs,
  kTaskIf,
  kTaskInputFrom,
  kTaskBody,
  kTaskOutputAs,
  kTaskExportAs,
};

// Variables bound by enclosing tasks: a for loop's `each` and `at`, a catch's `as`.
struct Scope {
  std::vector<std::string> names;
};

// A `then` waiting for its task list to be complete: the task (and switch case, or -1)
// it belongs to, and its source node.
struct PendingFlow {
  size_t task_index = 0;
  int case_index = -1;
  const SourceNode* node = nullptr;
  std::string path;
};

// The task being parsed.
struct TaskSite {
  std::string_view name;
  const SourceNode* map = nullptr;  // the task's properties
  std::string path;                 // "/do/0/name"
  SourcePos pos;                    // of the name
  const Scope* scope = nullptr;
  size_t depth = 0;                           // task lists above this task's children
  size_t index = 0;                           // in its list
  std::vector<PendingFlow>* flows = nullptr;  // null: no siblings (use.functions)
  bool in_function = false;
};

using Properties = std::initializer_list<std::string_view>;
// Known properties that cairn refuses, each with its message.
using Refusals = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class Loader {
 public:
  Loader(std::string source_name, const LoadOptions& options)
      : diagnostics_(std::move(source_name)), options_(options) {}

  // Checks the document and fills `out` (everything but ids, the index and the hash).
  // Errors are in diagnostics().
  void LoadDocument(const SourceNode& root, Definition* out);
  const Diagnostics& diagnostics() const { return diagnostics_; }
  // Not ok when checking failed for a reason other than the document (the expression
  // checker's environment): the load fails with it instead of the diagnostics.
  const Status& fatal() const { return fatal_; }

 private:
  struct NamedComponent {
    const SourceNode* node = nullptr;
    std::string path;
    bool used = false;
  };

  // ---- loader.cc: the workflow and its document header
  void LoadHeader(const SourceNode& node, Definition* out);
  void LoadEvaluate(const SourceNode& node);
  void CheckUnusedComponents();

  // ---- values.cc: types, properties, expressions, templates, durations, schemas
  void Error(SourcePos pos, std::string_view path, std::string_view message);
  void Error(const SourceNode& at, std::string_view path, std::string_view message) {
    Error(at.pos, path, message);
  }
  bool Expect(const SourceNode& node, std::string_view path, SourceNode::Kind kind);
  std::optional<std::string> String(const SourceNode& node, std::string_view path);
  std::optional<bool> Bool(const SourceNode& node, std::string_view path);
  std::optional<std::string> Identifier(const SourceNode& node, std::string_view path);
  bool CheckProperties(const SourceNode& map, std::string_view path, std::string_view what,
                       Properties allowed, Refusals refused = {});
  bool Require(const SourceNode& map, std::string_view path, std::string_view what,
               Properties required);
  bool CheckDepth(const SourceNode& node, std::string_view path);
  std::vector<std::string> Variables(Place place, const Scope& scope) const;
  void CheckExpressionText(const SourceNode& at, std::string_view path, std::string_view text,
                           const std::vector<std::string>& variables);
  void CheckImplicit(const SourceNode& node, std::string_view path,
                     const std::vector<std::string>& variables);
  void CheckTemplate(const SourceNode& node, std::string_view path,
                     const std::vector<std::string>& variables);
  std::optional<Template> TemplateValue(const SourceNode& node, std::string_view path,
                                        const std::vector<std::string>& variables);
  std::optional<Json> LiteralValue(const SourceNode& node, std::string_view path);
  std::optional<Duration> ParseDuration(const SourceNode& node, std::string_view path,
                                        uint64_t ms_max);
  std::optional<SchemaSpec> ParseSchema(const SourceNode& node, std::string_view path);
  std::optional<DataFilter> ParseDataFilter(const SourceNode& node, std::string_view path,
                                            std::string_view what, std::string_view transform_key,
                                            Place place, const Scope& scope);

  // ---- components.cc: use.*, timeouts, retry policies, errors
  void LoadUse(const SourceNode& node, Definition* out);
  void LoadFunctions(const SourceNode& functions, Definition* out);
  void CollectNamed(const SourceNode& map, std::string_view path,
                    std::map<std::string, NamedComponent>* into);
  std::optional<Duration> ParseTimeout(const SourceNode& node, std::string_view path);
  std::optional<RetryPolicy> ParseRetry(const SourceNode& node, std::string_view path,
                                        const std::vector<std::string>* variables);
  void ParseBackoff(const SourceNode& node, std::string_view path, RetryPolicy* policy);
  void ParseRetryLimit(const SourceNode& node, std::string_view path, RetryPolicy* policy);
  void ParseJitter(const SourceNode& node, std::string_view path, RetryPolicy* policy);
  std::optional<RetryPolicy> RetryOrReference(const SourceNode& node, std::string_view path,
                                              const std::vector<std::string>& variables);
  std::optional<ErrorTemplate> ParseErrorTemplate(const SourceNode& node, std::string_view path,
                                                  const std::vector<std::string>* variables);
  std::optional<ErrorTemplate> ErrorOrReference(const SourceNode& node, std::string_view path,
                                                const std::vector<std::string>& variables);
  std::string KnownNames(const std::map<std::string, NamedComponent>& named,
                         std::string_view section) const;

  // ---- tasks.cc: task lists and tasks
  TaskList ParseTaskList(const SourceNode& node, std::string_view path, const Scope& scope,
                         size_t depth);
  std::optional<Task> ParseTask(const TaskSite& site);
  bool ParseTaskCommon(const TaskSite& site, Task* task);
  std::optional<std::string_view> TaskType(const TaskSite& site);
  std::optional<TaskBody> ParseBody(std::string_view type, const TaskSite& site);
  std::optional<TaskBody> ParseDo(const TaskSite& site);
  std::optional<TaskBody> ParseSet(const TaskSite& site);
  std::optional<TaskBody> ParseSwitch(const TaskSite& site);
  std::optional<TaskBody> ParseFor(const TaskSite& site);
  std::optional<TaskBody> ParseTry(const TaskSite& site);
  std::optional<Catch> ParseCatch(const SourceNode& node, std::string_view path,
                                  const TaskSite& site);
  std::optional<ErrorFilter> ParseErrorFilter(const SourceNode& node, std::string_view path);
  std::optional<TaskBody> ParseRaise(const TaskSite& site);
  std::optional<TaskBody> ParseWait(const TaskSite& site);

  // ---- calls.cc: call and run tasks
  std::optional<TaskBody> ParseCall(const TaskSite& site);
  void CheckHttpWith(const SourceNode& with, std::string_view path);
  void CheckEndpoint(const SourceNode& endpoint, std::string_view path);
  void CheckMcpWith(const SourceNode& with, std::string_view path);
  std::optional<AgentCall> ParseAgentWith(const SourceNode* with, std::string_view path,
                                          SourcePos call_pos, const Scope& scope);
  std::optional<TaskBody> ParseRun(const TaskSite& site);
  bool ParseShell(const SourceNode& shell, std::string_view path, const TaskSite& site,
                  RunShellBody* body);
  std::optional<TaskBody> ParseListen(const TaskSite& site);
  std::optional<EventFilter> ParseEventFilter(const SourceNode& node, std::string_view path,
                                              const std::vector<std::string>& variables);

  // ---- flow.cc: `then` directives and unconditional cycles
  std::optional<FlowDirective> ParseFlowDirective(const SourceNode& node, std::string_view path,
                                                  const TaskSite& site, int case_index);
  void ResolveFlows(TaskList* tasks, const std::vector<PendingFlow>& flows);
  void CheckCycles(const TaskList& tasks);

  Diagnostics diagnostics_;
  const LoadOptions& options_;
  std::map<std::string, NamedComponent> retries_;
  std::map<std::string, NamedComponent> errors_;
  std::map<std::string, std::optional<Duration>> timeouts_;  // nullopt: invalid
  std::set<std::string, std::less<>> functions_;             // use.functions names
  std::map<std::string, Status> expression_cache_;
  Status fatal_;
  size_t error_count_ = 0;  // every Error() call, duplicates included
  size_t tasks_ = 0;
  bool tasks_exceeded_ = false;
};

// "a/b" -> "/a~1b" appended to `path`.
std::string Child(std::string_view path, std::string_view key);
std::string Child(std::string_view path, size_t index);

}  // namespace cairn::engine::definition_impl
