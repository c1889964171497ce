#include "tests/ctk/yaml_value.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace cairn::ctk {
namespace {

// The core schema's plain scalar forms (function-local: built on first use, not at
// static initialisation).
struct CoreSchema {
  std::regex decimal{"[-+]?[0-9]+"};
  std::regex octal{"0o[0-7]+"};
  std::regex hex{"0x[0-9a-fA-F]+"};
  std::regex floating{"[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?"};
  std::regex infinity_or_nan{"[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)"};
};

const CoreSchema& Core() {
  static const CoreSchema schema;
  return schema;
}

std::string Where(std::string_view what, const YAML::Mark& mark) {
  if (mark.is_null()) return std::string(what);
  return std::string(what) + ":" + std::to_string(mark.line + 1) + ":" +
         std::to_string(mark.column + 1);
}

Result<Json> Integer(const std::string& digits, int base, const std::string& text) {
  int64_t value = 0;
  const char* end = digits.data() + digits.size();
  auto [at, error] = std::from_chars(digits.data(), end, value, base);
  if (error == std::errc() && at == end) return Json(value);
  uint64_t unsigned_value = 0;
  auto [uat, uerror] = std::from_chars(digits.data(), end, unsigned_value, base);
  if (uerror == std::errc() && uat == end) return Json(unsigned_value);
  return Status::InvalidArgument("integer out of range: " + text);
}

// A plain (unquoted) scalar, typed by the YAML 1.2 core schema.
Result<Json> PlainScalar(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return Json(nullptr);
  }
  if (text == "true" || text == "True" || text == "TRUE") return Json(true);
  if (text == "false" || text == "False" || text == "FALSE") return Json(false);
  if (std::regex_match(text, Core().decimal)) {
    // from_chars takes no '+'.
    return Integer(text.front() == '+' ? text.substr(1) : text, 10, text);
  }
  if (std::regex_match(text, Core().octal)) return Integer(text.substr(2), 8, text);
  if (std::regex_match(text, Core().hex)) return Integer(text.substr(2), 16, text);
  if (std::regex_match(text, Core().floating)) return Json(std::strtod(text.c_str(), nullptr));
  if (std::regex_match(text, Core().infinity_or_nan)) {
    return Status::InvalidArgument(text + " has no JSON value");
  }
  return Json(text);
}

Result<Json> Convert(const YAML::Node& node, std::string_view what) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "?") {
        Result<Json> value = PlainScalar(node.Scalar());
        if (!value.ok())
          return Status::InvalidArgument(Where(what, node.Mark()) + ": " +
                                         value.status().message());
        return value;
      }
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return Json(node.Scalar());
      return Status::InvalidArgument(Where(what, node.Mark()) + ": unsupported tag " + tag);
    }
    case YAML::NodeType::Sequence: {
      Json array = Json::array();
      for (const YAML::Node& item : node) {
        Result<Json> value = Convert(item, what);
        if (!value.ok()) return value;
        array.push_back(std::move(*value));
      }
      return array;
    }
    case YAML::NodeType::Map: {
      Json object = Json::object();
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) {
          return Status::InvalidArgument(Where(what, entry.first.Mark()) +
                                         ": a mapping key that is not a scalar");
        }
        const std::string& key = entry.first.Scalar();
        if (object.contains(key)) {
          return Status::InvalidArgument(Where(what, entry.first.Mark()) + ": key '" + key +
                                         "' repeated");
        }
        Result<Json> value = Convert(entry.second, what);
        if (!value.ok()) return value;
        object[key] = std::move(*value);
      }
      return object;
    }
  }
  return Status::InvalidArgument(Where(what, node.Mark()) + ": unknown YAML node type");
}

}  // namespace

Result<Json> YamlToJson(std::string_view text, std::string_view what) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(Where(what, e.mark) + ": " + e.msg);
  }
  if (documents.empty()) return Json(nullptr);
  if (documents.size() > 1) {
    return Status::InvalidArgument(std::string(what) + ": " + std::to_string(documents.size()) +
                                   " YAML documents (expected one)");
  }
  try {
    return Convert(documents.front(), what);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(Where(what, e.mark) + ": " + e.msg);
  }
}

}  // namespace cairn::ctk
