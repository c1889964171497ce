// Runtime expressions: jq (libjq 1.6), as the Open Workflow DSL specifies them.
//
// An expression is evaluated against an input value (`.`) with named variables ($input,
// $output, $context, $task, $workflow, and task-specific ones such as a for loop's $item
// or a catch's $error).
//
// Determinism. Expressions must give the same value when a run is replayed, so builtins
// that read the clock, the time zone, the environment, files or stdin, or that print or
// halt, are refused when the expression is checked (before jq compiles it), with the name
// of the builtin and why:
//   now, localtime, strflocaltime, env, $ENV, input, inputs, _input, input_filename,
//   input_line_number, halt, halt_error, debug, stderr, get_search_list, modulemeta,
//   get_jq_origin, get_prog_origin, import, include.
// Allowed because they are pure in jq 1.6: gmtime, mktime (timegm), todate, fromdate, $__loc__.
// strftime and strptime are allowed, but a format holding %Z or %s (strftime) or %s
// (strptime), which go through the host's time zone, is an error when it runs; other
// conversions follow LC_TIME, which cairn leaves at the C library's default "C".
// The check is a lexer-level scan: names inside string literals, field accesses (`.now`,
// `."now"`), object keys (`{now: 1}`, `{now}`) and the name after `def` are fine. It is
// conservative: a user function or closure parameter named like a refused builtin is
// refused where it is called, and so is `$ENV` even if the expression binds it. As defence
// in depth every refused builtin is also redefined as an error around the expression.
// Names starting with `__cairn` are reserved.
//
// Host independence: libjq 1.6 loads $HOME/.jq into every program it compiles (and its
// definitions override builtins). Compiling fails with kFailedPrecondition while that file
// exists.
//
// Numbers: jq 1.6 numbers are doubles. Integers beyond +-2^53 lose precision on the way in;
// an integral result within +-2^53 comes back as a JSON integer, any other as a double;
// NaN comes back as null (as jq prints it); an infinite number is an error.
//
// Runaway programs: libjq 1.6 cannot interrupt a running program, and it aborts the
// process when an allocation fails. An expression that loops forever (`until(false; .)`,
// `"abc" | gsub(""; "x")` in 1.6), that allocates without bound (`[range(1e10)]`,
// `[] | .[1e9] = 1`) or that nests very deep (freeing `reduce range(1e6) as $i (null; [.])`
// overflows jq's stack) cannot be stopped from here. Results are bounded only after jq
// produced them (limits::run_data_bytes_max, limits::json_depth_max). Whoever accepts
// expressions from untrusted authors must isolate evaluation (a process with limits).
//
// Thread-safety: an Evaluator is NOT thread-safe (libjq states are single-threaded); use
// one per thread, or lease one from an EvaluatorPool, which is thread-safe. The free
// functions are thread-safe (libjq reads HOME with getenv, and with the non-reentrant
// getpwuid when HOME is unset: run the engine with HOME set).
#pragma once

#include <cstdint>
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
// `variables` are the names ("input", "context", ...) that will be bound when it runs;
// any other `$name` is an error. kInvalidArgument quoting the expression, with jq's
// message ("... $x is not defined (line 1)"), "uses `now`, which reads the clock; ..." for
// a refused builtin, or what is wrong with the text (empty, larger than
// limits::expression_bytes_max, a NUL byte) or a variable name (not a jq name, a keyword,
// `ENV`, given twice); kFailedPrecondition if $HOME/.jq exists. Costs a jq compile (tens of
// milliseconds in libjq 1.6, which re-parses its builtin library each time).
Status CheckExpression(std::string_view jq_text, const std::vector<std::string>& variables);

struct Variable {
  std::string name;   // without the '$': a jq name, not a keyword, not `ENV`, not `__cairn...`
  const Json* value;  // not owned, not null; must outlive the Evaluate call
  // The caller vouches that ConvertibleToJq(*value) holds (it checked, and the value has
  // not changed since): the value is then not checked again when the expression does not
  // bind it (a bound value is converted, which checks it anyway), nor is an input that is
  // this very object. A false claim loses the error Evaluate gives for such a value.
  bool convertible = false;
};

// Whether `value`, sitting `depth` levels down in an input or variable value (1: the value
// itself), can be given to jq: nested at most limits::json_depth_max levels in all, no
// string or key of 2 GiB or more, no binary value. Evaluate refuses a call whose input or
// any variable fails this, whether the expression reads that variable or not; an
// expression reads only the variables whose names occur in its text (the others are
// checked, never converted). Pure, thread-safe.
bool ConvertibleToJq(const Json& value, size_t depth = 1);

// Compiles and runs expressions, keeping up to 256 compiled programs (least recently used
// first out; a few KiB each; texts that bind the same names share one). Every text is
// compiled (so it is checked exactly as CheckExpression does), but field paths (`.a.b`,
// `$v.a`) and merges of them (`$input + {k: .}`) are then answered from the Json values,
// with jq's results: whatever those rules cannot decide exactly (an error, a non-ASCII
// string) runs in jq.
// It also keeps the jq form of the last input and variable values it converted (up to 8
// values of at least 32 values and keys each, 64 Ki in all, least recently used first
// out), with a copy of each Json, and reuses one for a value that converts to the same jq
// value: values are compared, never recognised by address, so a value changed in place is
// converted again. So the cache holds copies of run data after a call returns (bounded as
// above). Created and used on one thread at a time.
class Evaluator {
 public:
  Evaluator();
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // Evaluates `jq_text` (no `${ }`) on `input` with `variables` bound. Returns the first
  // value the program produces, or null if it produces none (jq 1.6 cannot tell
  // `error(null)` from no output). Errors (kInvalidArgument, quoting the expression):
  // everything CheckExpression reports, a runtime error raised by the program (the message
  // given to `error(...)`, as JSON text if it is not a string; type errors), an input or
  // variable value nested deeper than limits::json_depth_max, a result larger than
  // limits::run_data_bytes_max as compact JSON, nested deeper than limits::json_depth_max,
  // or holding an infinite number. kFailedPrecondition if $HOME/.jq exists. Compiled
  // programs are cached by text and variable names (in order): the names and their count
  // may change from call to call, each combination is one program.
  Result<Json> Evaluate(std::string_view jq_text, const Json& input,
                        const std::vector<Variable>& variables);

  // Evaluates every string in `value` that is a runtime expression (`${ ... }`), recursing
  // into objects and arrays; other values are copied as they are. Keys are not evaluated.
  // An error names where the string sits ("at /args/0: jq expression ..."); the template
  // and the result are bounded like Evaluate's input and result.
  Result<Json> EvaluateTemplate(const Json& value, const Json& input,
                                const std::vector<Variable>& variables);

  // A string field that the DSL always treats as an expression (input.from, output.as,
  // switch `when`, `if`, for `in`, ...): `${ }` is optional. A non-string value (an object
  // given for input.from / output.as) is evaluated as a template.
  Result<Json> EvaluateImplicit(const Json& expression, const Json& input,
                                const std::vector<Variable>& variables);

  // Checks `jq_text` as CheckExpression does (the same errors), and keeps the compiled
  // program: an evaluation of the same text that binds the same of its names (whatever
  // else it lists, in whatever order) reuses the compile. A definition loaded through the
  // Evaluator that runs it (LoadOptions::evaluator) so compiles each expression once.
  Status Check(std::string_view jq_text, const std::vector<std::string>& variables);

  // Programs held now, one per (text, variable names) (at most 256).
  size_t cached_programs() const;
  // Distinct compiles they hold (texts that bind the same names share one; a path or merge
  // program compiles only when a value needs jq).
  size_t compiled_programs() const;
  // Conversions of input and variable values to jq kept for later evaluations, the values
  // and keys they hold, and how many conversions they spared.
  size_t cached_conversions() const;
  size_t cached_conversion_nodes() const;
  uint64_t conversion_cache_hits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A thread-safe pool of Evaluators: Acquire() hands one out (creating it if none is free),
// and the lease returns it on destruction, cache included. The pool keeps as many
// Evaluators as were ever leased at once. The pool must outlive its leases.
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
