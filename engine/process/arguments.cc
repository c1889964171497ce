#include "engine/process/arguments.h"

namespace cairn::engine::process {
namespace {

bool HasNul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

// A scalar as the text a command sees; kInvalidArgument for objects, arrays and null.
Result<std::string> ScalarText(const Json& value, const std::string& where) {
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_number() || value.is_boolean()) {
    text = DumpJson(value);
  } else {
    return Status::InvalidArgument(where + ": expected a string, got " +
                                   std::string(JsonTypeName(value)));
  }
  if (HasNul(text)) return Status::InvalidArgument(where + ": contains a NUL byte");
  return text;
}

}  // namespace

Result<std::string> CommandField(const Json& object, std::string_view field) {
  std::string where(field);
  auto it = object.find(where);
  if (it == object.end() || it->is_null()) {
    return Status::InvalidArgument(where + ": required, and missing");
  }
  if (!it->is_string()) {
    return Status::InvalidArgument(where + ": expected a string, got " +
                                   std::string(JsonTypeName(*it)));
  }
  const std::string& text = it->get_ref<const std::string&>();
  if (text.empty()) return Status::InvalidArgument(where + ": must not be empty");
  if (HasNul(text)) return Status::InvalidArgument(where + ": contains a NUL byte");
  return text;
}

Result<std::vector<std::string>> StringListField(const Json& object, std::string_view field) {
  std::string where(field);
  std::vector<std::string> list;
  auto it = object.find(where);
  if (it == object.end() || it->is_null()) return list;
  if (!it->is_array()) {
    return Status::InvalidArgument(where + ": expected an array of strings, got " +
                                   std::string(JsonTypeName(*it)));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    CAIRN_ASSIGN_OR_RETURN(std::string text,
                           ScalarText((*it)[i], where + "[" + std::to_string(i) + "]"));
    list.push_back(std::move(text));
  }
  return list;
}

Result<Environment> EnvironmentField(const Json& object, std::string_view field) {
  std::string where(field);
  Environment environment;
  auto it = object.find(where);
  if (it == object.end() || it->is_null()) return environment;
  if (!it->is_object()) {
    return Status::InvalidArgument(where + ": expected an object of strings, got " +
                                   std::string(JsonTypeName(*it)));
  }
  for (const auto& [name, value] : it->items()) {
    if (name.empty() || name.find('=') != std::string::npos || HasNul(name)) {
      return Status::InvalidArgument(where + ": '" + name +
                                     "' is not a valid variable name (empty, or has '=' or NUL)");
    }
    CAIRN_ASSIGN_OR_RETURN(std::string text, ScalarText(value, where + "." + name));
    environment.insert_or_assign(name, std::move(text));
  }
  return environment;
}

}  // namespace cairn::engine::process
