#include "base/json.h"

#include <algorithm>
#include <vector>

#include "base/limits.h"

namespace cairn {

Result<Json> ParseJson(std::string_view text, std::string_view what, size_t bytes_max,
                       size_t depth_max) {
  if (depth_max == 0) depth_max = limits::json_depth_max;
  if (text.size() > bytes_max) {
    return Status::InvalidArgument(std::string(what) + ": " + std::to_string(text.size()) +
                                   " bytes is more than the limit of " +
                                   std::to_string(bytes_max));
  }
  bool too_deep = false;
  Json::parser_callback_t guard = [&too_deep, depth_max](int depth, Json::parse_event_t, Json&) {
    if (depth > static_cast<int>(depth_max)) too_deep = true;
    return !too_deep;
  };
  Json value = Json::parse(text.begin(), text.end(), guard, /*allow_exceptions=*/false);
  if (too_deep) {
    return Status::InvalidArgument(std::string(what) + ": JSON nests deeper than " +
                                   std::to_string(depth_max) + " levels");
  }
  if (value.is_discarded()) {
    // Re-parse with exceptions to get the position and the parser's expectation.
    try {
      Json ignored = Json::parse(text.begin(), text.end());
      static_cast<void>(ignored);
    } catch (const Json::exception& e) {
      std::string message = e.what();
      // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> drop the tag.
      if (auto pos = message.find("] "); pos != std::string::npos) message.erase(0, pos + 2);
      return Status::InvalidArgument(std::string(what) + ": invalid JSON: " + message);
    }
    return Status::InvalidArgument(std::string(what) + ": invalid JSON");
  }
  return value;
}

std::string DumpJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

size_t JsonDepth(const Json& value) {
  // Iterative, so that a hostile value cannot overflow the stack.
  size_t deepest = 0;
  std::vector<std::pair<const Json*, size_t>> stack{{&value, 1}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, depth);
    if (node->is_structured()) {
      for (const auto& child : *node) stack.emplace_back(&child, depth + 1);
    }
  }
  return deepest;
}

std::string_view JsonTypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::null: return "null";
    case Json::value_t::discarded: return "discarded";
    default: return "number";
  }
}

}  // namespace cairn
