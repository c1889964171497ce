// JSON Schema validation for workflow and task input, output and export schemas.
//
// An Open Workflow definition may attach a JSON Schema (`schema: {format: json, document}`)
// to the input, output and export of the workflow and of each task. cairn checks each schema
// when the definition is loaded (CheckSchema, or CompiledSchema::Compile) and validates data
// against it while a run executes (CompiledSchema::Validate).
//
// cairn implements a subset of draft 2020-12 (and the draft-06/07 spellings of it). A schema
// that uses anything outside the subset is refused at load time, by name: a keyword that
// cairn does not implement is never silently ignored, because a validator that skips a
// constraint accepts data the author meant to reject.
//
// Supported:
//   boolean schemas         `true` accepts everything, `false` nothing.
//   any type                type (a name or an array of names; "integer" is any number with
//                           no fractional part, so 1.0 is an integer), enum, const.
//   numbers                 minimum, maximum, exclusiveMinimum, exclusiveMaximum (the numeric
//                           draft-06+ form; the draft-04 boolean form is refused), multipleOf.
//   strings                 minLength, maxLength (counted in Unicode code points), pattern.
//   arrays                  items (a schema; the draft-07 array form is refused, use
//                           prefixItems), prefixItems, minItems, maxItems, uniqueItems.
//   objects                 properties, required, additionalProperties (bool or schema),
//                           minProperties, maxProperties.
//   combinators             allOf, anyOf, oneOf, not.
//   references              $ref to "#", "#/$defs/..." or "#/definitions/..." (a JSON pointer
//                           to a subschema of the same document); $defs, definitions.
//   annotations (no effect) $schema (root only; draft-06, draft-07, 2019-09 or 2020-12),
//                           $id (root only), $comment, title, description, default,
//                           examples, deprecated, readOnly, writeOnly, and format: `format`
//                           is accepted and NOT checked (it is an annotation in 2020-12;
//                           "format": "email" does not make cairn reject a non-email).
//
// Semantics worth knowing:
//   - Numbers compare exactly (the integer 9007199254740993 is not equal to the double
//     9007199254740992.0); enum, const and uniqueItems compare numbers by value, so 1 and
//     1.0 are equal.
//   - multipleOf is exact for integers. For fractions it accepts a quotient within 8 ulp
//     (about 2e-15, relative) of an integer, so 0.3 is a multiple of 0.1 despite binary
//     rounding, and 0.31 is not.
//   - Strings that are not valid UTF-8 (never the case after ParseJson) count each bad byte
//     as one character.
//   - Messages cut long strings, enum/const listings and object keys in pointers to a
//     readable length (marked "...").
//   - pattern is an ECMAScript regular expression (std::regex), matched anywhere in the
//     string (not anchored) over Unicode code points, with these restrictions checked at
//     load time: at most schema_pattern_bytes_max bytes; no backreferences, lookbehind,
//     named groups, \p{...} classes or other unknown letter escapes; no quantifier right
//     after another ("a**"); no \u escapes of surrogates; at most schema_pattern_states_max
//     automaton states (roughly: repeat counts multiplied by the size of what they repeat).
//     \d, \w and \s are ASCII-only. Matching has no backtracking: its time is linear in
//     the string (code points x automaton states, charged to the step budget).
//   - $ref may sit beside other validation keywords only when $schema names 2019-09 or
//     2020-12 (where they all apply); draft-07 ignores them, so without such a $schema the
//     combination is refused instead of guessing. A $ref cycle that never descends into the
//     value (`a` refers to `b` refers to `a`) is refused; recursion through properties or
//     items is fine.
//
// Bounds: schemas and values nest at most limits::json_depth_max levels, and a schema has at
// most limits::definition_nodes_max subschemas. Validation stops after Options::steps_max
// steps (one subschema applied to one value is a step; so is each value node compared by
// enum, const or uniqueItems, each 256 bytes of a string measured, and each 4 code point x
// automaton state units of pattern matching) and after schema_eval_depth_max nested
// subschema applications, so a hostile schema or value (nested anyOf through $ref, huge
// arrays against big enums) costs bounded time and stack. The outcome is deterministic: the
// same schema and value always give the same Status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/json.h"
#include "base/status.h"

namespace cairn::engine {

// Bounds of the validator. (Candidates for base/limits.h.)
inline constexpr size_t schema_pattern_bytes_max = 1024;
inline constexpr size_t schema_pattern_states_max = 4096;
inline constexpr uint64_t schema_validation_steps_max = 20'000'000;  // ~1-4 s of CPU
inline constexpr size_t schema_eval_depth_max = 1024;
inline constexpr size_t schema_violations_max = 10;

// Checks that `schema` is a JSON Schema within cairn's supported subset (see above).
// Ok, or kInvalidArgument naming the JSON pointer inside the schema and the problem:
//   "/properties/age/minimum: expected a number, got string"
//   "/patternProperties: keyword not supported (supported: ...)"
//   "/$ref: \"https://example.com/s.json\" is not supported (only local refs ...)"
// Same as CompiledSchema::Compile(schema).status(). Thread-safe.
Status CheckSchema(const Json& schema);

// A checked schema, compiled once (references resolved, patterns compiled) and then used to
// validate any number of values.
//
// Immutable after Compile: copies share the compiled form, and Validate may be called from
// any number of threads at once. A default-constructed CompiledSchema is the schema `true`.
// Validate recurses: its stack use grows with the nesting of the schema and the value, up to
// about 1.5 KiB per level (ASan builds) for schema_eval_depth_max levels; run it on a thread
// with at least 2 MiB of stack (the default for std::thread on Linux is 8 MiB).
class CompiledSchema {
 public:
  struct Options {
    uint64_t steps_max = schema_validation_steps_max;
    size_t violations_max = schema_violations_max;  // reported per Validate call; at least 1
  };

  CompiledSchema();

  // Checks `schema` as CheckSchema does and compiles it. The schema is copied; the caller
  // keeps ownership of `schema`.
  static Result<CompiledSchema> Compile(const Json& schema, Options options);
  static Result<CompiledSchema> Compile(const Json& schema) { return Compile(schema, Options()); }

  // Ok if `value` is valid. Otherwise kInvalidArgument listing the first violations (at most
  // Options::violations_max, in document order, "; "-separated), each naming the JSON
  // pointer in the value ("(root)" for the value itself), the rule and the value seen:
  //   "/team/size: 0 is less than minimum 1; /team: missing required property \"name\""
  // Also kInvalidArgument, without a violation list, when validation hits a bound:
  //   "schema validation exceeded 20000000 steps (at /items/7)"
  //   "value nests deeper than 128 levels"
  Status Validate(const Json& value) const;

  // The schema as given to Compile (`true` when default-constructed).
  const Json& document() const;

  struct Impl;

 private:
  explicit CompiledSchema(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace cairn::engine
