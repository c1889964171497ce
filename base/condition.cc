#include "base/condition.h"

#include <algorithm>
#include <array>

namespace cairn {
namespace {

constexpr std::array<std::string_view, 9> kOpNames = {"eq",  "ne", "gt",     "gte",   "lt",
                                                      "lte", "in", "not_in", "exists"};

// The value at `pointer`, or null when absent or the pointer is malformed.
const Json* At(const Json& value, const std::string& pointer) {
  if (pointer.empty()) return &value;
  try {
    const Json::json_pointer ptr(pointer);
    if (!value.contains(ptr)) return nullptr;
    return &value.at(ptr);
  } catch (const Json::exception&) {
    return nullptr;
  }
}

}  // namespace

std::string_view ConditionOpName(Condition::Op op) { return kOpNames.at(static_cast<size_t>(op)); }

std::optional<Condition::Op> ConditionOpFromName(std::string_view name) {
  for (size_t i = 0; i < kOpNames.size(); ++i) {
    if (kOpNames[i] == name) return static_cast<Condition::Op>(i);
  }
  return std::nullopt;
}

bool Condition::Holds(const Json& value) const {
  const Json* found = At(value, path);
  switch (op) {
    case Op::kExists:
      return (found != nullptr) == (operand.is_boolean() && operand.get<bool>());
    case Op::kEq:
      return found != nullptr && *found == operand;
    case Op::kNe:
      return found == nullptr || *found != operand;
    case Op::kIn:
      return found != nullptr && operand.is_array() &&
             std::find(operand.begin(), operand.end(), *found) != operand.end();
    case Op::kNotIn:
      return found == nullptr || !operand.is_array() ||
             std::find(operand.begin(), operand.end(), *found) == operand.end();
    case Op::kGt:
    case Op::kGte:
    case Op::kLt:
    case Op::kLte: {
      if (found == nullptr || !found->is_number() || !operand.is_number()) return false;
      // nlohmann compares integers and floats by value.
      if (op == Op::kGt) return *found > operand;
      if (op == Op::kGte) return *found >= operand;
      if (op == Op::kLt) return *found < operand;
      return *found <= operand;
    }
  }
  return false;
}

std::string Condition::ToString() const {
  return (path.empty() ? std::string("(value)") : path) + " " + std::string(ConditionOpName(op)) +
         " " + DumpJson(operand);
}

Status ValidateCondition(const Condition& condition) {
  if (!condition.path.empty()) {
    try {
      const Json::json_pointer ptr(condition.path);
      (void)ptr;
    } catch (const Json::exception&) {
      return Status::InvalidArgument("path: '" + condition.path +
                                     "' is not a JSON pointer (expected e.g. /arguments/amount)");
    }
  }
  const std::string op(ConditionOpName(condition.op));
  switch (condition.op) {
    case Condition::Op::kGt:
    case Condition::Op::kGte:
    case Condition::Op::kLt:
    case Condition::Op::kLte:
      if (!condition.operand.is_number()) {
        return Status::InvalidArgument(op + ": expected a number, found " +
                                       std::string(JsonTypeName(condition.operand)));
      }
      break;
    case Condition::Op::kIn:
    case Condition::Op::kNotIn:
      if (!condition.operand.is_array()) {
        return Status::InvalidArgument(op + ": expected a list, found " +
                                       std::string(JsonTypeName(condition.operand)));
      }
      break;
    case Condition::Op::kExists:
      if (!condition.operand.is_boolean()) {
        return Status::InvalidArgument(op + ": expected true or false, found " +
                                       std::string(JsonTypeName(condition.operand)));
      }
      break;
    case Condition::Op::kEq:
    case Condition::Op::kNe:
      break;
  }
  return Status::Ok();
}

bool AllHold(const std::vector<Condition>& conditions, const Json& value) {
  return std::all_of(conditions.begin(), conditions.end(),
                     [&](const Condition& c) { return c.Holds(value); });
}

}  // namespace cairn
