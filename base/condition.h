// Conditions over JSON values, as operators write them in policy rules and scripted-agent
// rules:
//
//   when:
//     - {path: /arguments/monthly_price, gt: 500}
//     - {path: /context/plan, in: [business, enterprise]}
//     - {path: /context/flagged, exists: true}
//
// A condition reads the value at `path` (an RFC 6901 JSON pointer) and compares it with
// one operator: eq, ne (any JSON, compared exactly), gt, gte, lt, lte (numbers only: a
// value that is not a number fails the condition), in, not_in (a list of JSON values),
// exists (true/false). A list of conditions holds when every one holds. Deterministic,
// no I/O: the same value always gives the same answer, so replay re-evaluates them.
#pragma once

#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace cairn {

struct Condition {
  enum class Op : uint8_t { kEq = 0, kNe, kGt, kGte, kLt, kLte, kIn, kNotIn, kExists };
  std::string path;  // JSON pointer; "" is the whole value
  Op op = Op::kEq;
  Json operand;  // kIn/kNotIn: an array; kExists: a boolean; numbers for kGt..kLte

  // True when `value` satisfies the condition.
  bool Holds(const Json& value) const;
  // "/arguments/monthly_price gt 500"
  std::string ToString() const;
};

// The operator's name as written ("gte"); and back (nullopt if unknown).
std::string_view ConditionOpName(Condition::Op op);
std::optional<Condition::Op> ConditionOpFromName(std::string_view name);

// Checks the pieces of a condition: a valid pointer and an operand of the right type.
// kInvalidArgument saying what is wrong ("gt: expected a number, found a string").
Status ValidateCondition(const Condition& condition);

bool AllHold(const std::vector<Condition>& conditions, const Json& value);

}  // namespace cairn
