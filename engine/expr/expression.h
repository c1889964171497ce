// Runtime expressions: jq (libjq 1.6), as the Open Workflow DSL specifies them.
//
// An expression is evaluated against an input value (`.`) with named variables ($input,
// $output, $context, $task, $workflow, and task-specific ones such as a for loop's $item
// or a catch's $error). Expressions are deterministic: builtins that read the clock, the
// environment, files or stdin, or that print or exit (now, env, $ENV, input, inputs,
// input_filename, input_line_number, halt, halt_error, debug, stderr, localtime,
// strflocaltime, mktime's local-time cousins, import, include, get_search_list, ...) are
// refused when the expression is checked, with the name of the builtin. So replaying a
// run re-evaluates every expression to the same value.
//
// Thread-safety: an Evaluator is NOT thread-safe (libjq states are single-threaded); use
// one per thread, or lease one from an EvaluatorPool, which is thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace cairn::engine {

// True if `text` is a runtime expression in the DSL's `${ ... }` form (the whole string,
// after trimming surrounding whitespace).
bool IsRuntimeExpression(std::string_view text);
// The jq text inside `${ ... }` (trimmed); `text` itself if it is not in that form.
std::string_view StripRuntimeExpression(std::string_view text);

// Checks that `jq_text` compiles and uses no refused builtin, without evaluating it.
// `variables` are the names ("input", "context", ...) that will be bound when it runs.
// kInvalidArgument with jq's message, or "uses `now`, which reads the clock; ..." for a
// refused builtin.
Status CheckExpression(std::string_view jq_text, const std::vector<std::string>& variables);

struct Variable {
  std::string name;  // without the '$'
  const Json* value;  // not owned; must outlive the Evaluate call
};

class Evaluator {
 public:
  Evaluator();
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // Evaluates `jq_text` (no `${ }`) on `input` with `variables` bound. Returns the first
  // value the program produces, or null if it produces none. Errors (kInvalidArgument):
  // compile errors, refused builtins, a runtime error raised by the program (`error(...)`,
  // type errors), a result larger than limits::run_data_bytes_max. Compiled programs are
  // cached (bounded, least recently used) by text and variable names.
  Result<Json> Evaluate(std::string_view jq_text, const Json& input,
                        const std::vector<Variable>& variables);

  // Evaluates every string in `value` that is a runtime expression (`${ ... }`), recursing
  // into objects and arrays; other values are copied as they are. Keys are not evaluated.
  Result<Json> EvaluateTemplate(const Json& value, const Json& input,
                                const std::vector<Variable>& variables);

  // A string field that the DSL always treats as an expression (input.from, output.as,
  // switch `when`, `if`, for `in`, ...): `${ }` is optional. A non-string value (an object
  // given for input.from / output.as) is evaluated as a template.
  Result<Json> EvaluateImplicit(const Json& expression, const Json& input,
                                const std::vector<Variable>& variables);

  size_t cached_programs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A thread-safe pool of Evaluators: Lease() hands one out (creating it if none is free),
// and the lease returns it on destruction. The pool must outlive its leases.
class EvaluatorPool {
 public:
  class Lease {
   public:
    Lease(EvaluatorPool* pool, std::unique_ptr<Evaluator> evaluator);
    ~Lease();
    Lease(Lease&&) noexcept;
    Lease& operator=(Lease&&) = delete;
    Evaluator& operator*() { return *evaluator_; }
    Evaluator* operator->() { return evaluator_.get(); }

   private:
    EvaluatorPool* pool_;
    std::unique_ptr<Evaluator> evaluator_;
  };

  Lease Acquire();

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Evaluator>> free_;
};

}  // namespace cairn::engine
