// A workflow definition: an Open Workflow Specification 1.0.x document, loaded, validated
// and indexed for the interpreter.
//
// Loading parses YAML or JSON (YAML 1.2 is a superset of JSON; both go through yaml-cpp so
// every error has a line and a column), checks the document against cairn's supported
// subset of the DSL, compiles-checks every runtime expression, and builds the immutable
// tree below. Anything outside the subset is refused by name ("`fork` tasks are not
// supported"), never ignored. A definition is addressed by the SHA-256 of its canonical
// form: the document as JSON with sorted keys and no insignificant whitespace.
//
// Definitions are immutable after loading and safe to share between threads.
//
// What is supported, what is refused and why: engine/definition/README.md. In short:
//
// Runtime expressions. Every expression is compile-checked at load time with the variables
// the interpreter must bind at that place (dsl.md, "Runtime expression arguments"):
//   workflow input.from           $workflow $runtime
//   workflow output.as            $context $workflow $runtime
//   task if, task input.from      $context $task $workflow $runtime
//   everything else in a task     $context $input $task $workflow $runtime
//     (set, with, switch when, for in/while, listen filters, raise error, run.shell,
//      catch when/exceptWhen, retry when/exceptWhen, task output.as)
//   task export.as                the above and $output
// plus, inside a for task's `while` and `do`, the loop's `each` and `at` (default $item,
// $index), and inside a catch (when, exceptWhen, retry, do) its `as` (default $error);
// these accumulate through nesting. $secrets and $authorization are refused. Fields that
// are always expressions (input.from, output.as, export.as when strings; if; switch when;
// for in when a string; for while; catch and retry when/exceptWhen) are checked with or
// without `${ }`; elsewhere only strings in `${ }` form are expressions, others literals.
//
// Flow. `then` targets a task of the same list (resolved to its index). Task names are
// unique within a list. A `then` cycle in which no task can fail, branch or stop (every
// task on it is a `set` without expressions, a `wait`, a `switch` with only a default case,
// or a `do` of such tasks, with no `if`, `timeout`, `input`, `output` or `export`) is
// refused; other cycles are legal and bounded at run time by limits::run_steps_max.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/json.h"
#include "base/sha256.h"
#include "base/status.h"
#include "engine/schema/json_schema.h"

namespace cairn::engine {

class Evaluator;  // engine/expr/expression.h

struct SourcePos {
  uint32_t line = 0;    // 1-based; 0 when unknown
  uint32_t column = 0;  // 1-based
};

// A duration, resolved at load time: ISO 8601 ("PT1M30S", "P1DT2H") or the DSL's object
// form ({days, hours, minutes, seconds, milliseconds}).
struct Duration {
  uint64_t ms = 0;
};

// A value from the document that may hold runtime expressions: evaluated by the
// interpreter with Evaluator::EvaluateTemplate (strings of the form `${ ... }` anywhere
// inside) or EvaluateImplicit (fields that are always expressions).
using Template = Json;

struct SchemaSpec {
  // A JSON Schema (the `document` of a `schema` object, format json), already checked to
  // use only the keywords cairn's validator knows (engine/schema/json_schema.h).
  Json document;
  // `document` compiled once at load, for validating data at run time.
  CompiledSchema compiled;
};

struct DataFilter {
  std::optional<SchemaSpec> schema;
  // input.from / output.as / export.as: an expression (string, `${}` optional) or an
  // object template. Absent means identity.
  std::optional<Template> transform;
};

// A `then`: "continue" (the default), "exit" (leave the current task list), "end" (end the
// workflow) or the name of a task in the same list.
struct FlowDirective {
  enum class Kind : uint8_t { kContinue = 0, kExit, kEnd, kGoto };
  Kind kind = Kind::kContinue;
  std::string target;  // kGoto: a task name in the same task list
  uint32_t target_index = 0;  // kGoto: the target's index in that list
};

// raise.error, inline or a use.errors entry (copied in at load time).
struct ErrorTemplate {
  // Each may be a literal or a runtime expression (`${ }` form); status is an integer
  // literal or an expression that evaluates to an integer.
  Template type;
  Template status;
  Template title;     // null when absent
  Template detail;    // null when absent
  Template instance;  // null when absent: the raising task's path is used
};

struct Backoff {
  enum class Kind : uint8_t { kConstant = 0, kLinear, kExponential };
  Kind kind = Kind::kConstant;
};

// catch.retry, inline or a use.retries entry (copied in at load time). Durations are
// bounded: delay and jitter by limits::retry_delay_ms_max, the others by
// kDefinitionDurationMsMax (engine/definition/duration.h); attempt_count by
// limits::retry_attempts_max.
struct RetryPolicy {
  std::optional<Template> when;         // retry only if this evaluates to true
  std::optional<Template> except_when;  // never retry if this evaluates to true
  Duration delay;                       // base delay (default 0)
  Backoff backoff;
  std::optional<uint32_t> attempt_count;        // limit.attempt.count
  std::optional<Duration> attempt_duration;     // limit.attempt.duration
  std::optional<Duration> total_duration;       // limit.duration
  std::optional<Duration> jitter_from;          // jitter.from
  std::optional<Duration> jitter_to;            // jitter.to
};

struct Task;
using TaskList = std::vector<Task>;

struct ErrorFilter {
  // catch.errors.with: each present property must equal the error's (type, status,
  // instance, title, detail). Literal values only.
  Json with = Json::object();
};

struct Catch {
  ErrorFilter errors;
  std::string as = "error";              // the variable holding the caught error
  std::optional<Template> when;          // catch only if true
  std::optional<Template> except_when;   // do not catch if true
  std::optional<RetryPolicy> retry;
  TaskList do_;                          // may be empty
};

struct SwitchCase {
  std::string name;
  std::optional<Template> when;  // absent: the default case
  FlowDirective then;
};

struct EventFilter {
  // listen.to.*.with: CloudEvent attributes the event must have (at least one). Literal
  // values must be equal; a `data` (or any attribute) given as a runtime expression (`${ }`
  // form only, since literals are allowed here) must evaluate to true with the event's
  // attribute as `.`.
  Json with = Json::object();
};

struct DoBody { TaskList tasks; };
struct SetBody { Template value; };  // object template, or a string expression
struct SwitchBody { std::vector<SwitchCase> cases; };
// `call: agent`: a bounded agent picks one option from an allowlist (agent/agent.h).
// goal, options and context are templates evaluated when the task runs; the bounds are
// literals, checked at load time.
struct AgentCall {
  Template goal;                 // a string (or an expression giving one)
  Template options;              // a list of strings, or an expression giving one
  Template context;              // any value; absent: the task's input
  std::vector<std::string> tools;  // read tools the agent may call (catalog names)
  uint32_t max_steps = 0;        // 0: limits::agent_steps_default
  uint64_t timeout_ms = 0;       // 0: limits::agent_timeout_ms_default
  uint64_t budget_tokens = 0;    // 0: no cap of the decision's own
  int64_t budget_cost_micros = 0;
  std::string agent;             // a configured agent's name; empty: the default agent
};

struct CallBody {
  enum class Kind : uint8_t { kHttp = 0, kMcp, kFunction, kTool, kAgent };
  Kind kind = Kind::kTool;
  std::string function;   // "http", "mcp", "agent", a use.functions name, or a catalog tool name
  Template with = Json::object();
  AgentCall agent;        // kAgent only
};
struct RunShellBody {
  Template command;      // a string template
  Template arguments;    // null when absent, else an array template of scalars
  Template environment;  // null when absent, else an object template of scalars
  Template stdin_value;  // null when absent
  bool await = true;
  enum class Return : uint8_t { kStdout = 0, kStderr, kCode, kAll, kNone };
  Return return_mode = Return::kStdout;
};
struct TryBody {
  TaskList tasks;
  Catch catch_;
};
struct RaiseBody { ErrorTemplate error; };
struct WaitBody { Duration duration; };
struct ListenBody {
  enum class Mode : uint8_t { kOne = 0, kAny, kAll };
  Mode mode = Mode::kOne;
  std::vector<EventFilter> filters;  // one: exactly 1; any: >= 0 (0 = any event); all: >= 1
  enum class Read : uint8_t { kData = 0, kEnvelope, kRaw };
  Read read = Read::kData;
};
struct ForBody {
  std::string each = "item";
  std::string at = "index";
  Template in;                           // expression yielding an array
  std::optional<Template> while_;        // evaluated before each iteration
  TaskList tasks;
};

using TaskBody = std::variant<DoBody, SetBody, SwitchBody, CallBody, RunShellBody, TryBody,
                              RaiseBody, WaitBody, ListenBody, ForBody>;

struct Task {
  std::string name;
  // The task's JSON pointer in the document, as the DSL reports error instances (names
  // escaped per RFC 6901): "/do/0/tryGetPet/try/0/getPet", a for body
  // "/do/1/loop/do/0/x", a catch body "/do/0/t/catch/do/0/x", a use.functions entry
  // "/use/functions/NAME".
  std::string path;
  SourcePos pos;
  // Position of this task in Definition::tasks: pre-order over do_ (a task before its
  // children; a try task's `try` list before its catch `do`), then the use.functions
  // entries in name order. Stable for a given definition hash.
  uint32_t id = 0;
  std::optional<Template> if_;
  DataFilter input;
  DataFilter output;
  DataFilter export_;
  std::optional<Duration> timeout;
  FlowDirective then;
  TaskBody body;

  // "do", "set", "switch", "call", "run", "try", "raise", "wait", "listen", "for".
  std::string_view KindName() const;
};

struct Definition {
  std::string dsl;
  std::string namespace_;
  std::string name;
  std::string version;
  std::string title;
  std::string summary;
  DataFilter input;   // workflow input: schema + from
  DataFilter output;  // workflow output: schema + as
  std::optional<Duration> timeout;
  // use.functions, by name: each is a single task (a call or run task) whose input is the
  // calling task's evaluated `with`.
  std::map<std::string, Task> functions;
  TaskList do_;
  // Every task, by Task::id.
  std::vector<const Task*> tasks;

  std::string source_name;  // the file it was loaded from, for messages
  // The whole document (metadata included) as compact JSON with sorted keys: YAML scalars
  // typed by the YAML 1.2 core schema, aliases expanded. Equal for a YAML document and
  // its JSON equivalent, whatever the key order, comments or quoting style.
  std::string canonical;    // canonical JSON bytes (what is hashed and stored)
  Sha256 hash;              // SHA-256 of `canonical`
};

struct LoadOptions {
  // Says whether a tool is registered in the engine's catalog, so that `call: NAME`
  // naming neither a use.functions entry nor a registered tool fails at load time.
  // Null: every name is accepted (checked when the task runs).
  std::function<bool(std::string_view)> tool_exists;
  // Checks the expressions through this Evaluator (Evaluator::Check: the same checks and
  // messages as CheckExpression), which keeps their compiled programs for evaluating them:
  // whoever loads a definition to run it at once compiles each expression once, not twice
  // (a jq compile costs milliseconds). Not owned; used on the calling thread only. Null:
  // CheckExpression.
  Evaluator* evaluator = nullptr;
};

// Parses and validates a definition. `text` is YAML or JSON; `source_name` (a file name)
// prefixes every error message. On error: kInvalidArgument whose message lists every
// problem found (at most 20, then a line saying more were not shown), one per line, in
// document order, as
//   "FILE:LINE:COL: TASK_PATH: what is wrong (expected ...)"
// e.g. "order.yaml:12:9: /do/2/charge/call: unknown function 'bill' (expected http, mcp,
// a use.functions name or a registered tool)". kFailedPrecondition (not about the
// document) when expressions cannot be checked on this host (CheckExpression's $HOME/.jq).
// Bounds: limits::definition_bytes_max of text, definition_nodes_max nodes with aliases
// expanded, definition_depth_max nested task lists, definition_tasks_max tasks,
// json_depth_max for values, expression_bytes_max per expression. Thread-safe (calls
// options.tool_exists and options.evaluator from the calling thread).
Result<std::shared_ptr<const Definition>> LoadDefinition(std::string_view text,
                                                         std::string_view source_name,
                                                         const LoadOptions& options = {});

// Re-loads a definition from its canonical bytes (as stored by hash); same checks, and
// source_name "sha256:<first 16 hex digits>". The result's canonical is byte-equal to
// `canonical` (so its hash is Sha256::Of(canonical)): bytes that load but are not in
// canonical form are refused with kInvalidArgument. Thread-safe, like LoadDefinition.
Result<std::shared_ptr<const Definition>> LoadCanonicalDefinition(std::string_view canonical,
                                                                  const LoadOptions& options = {});

}  // namespace cairn::engine
