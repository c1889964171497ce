#include "base/json.h"

#include <algorithm>
#include <charconv>
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
  // The common case, valid JSON, parses without a callback per token (several times
  // faster); the depth is checked afterwards with the callback's rule: it sees a value
  // under n containers at depth n, so text may nest JsonDepth(value) - 1 <= depth_max.
  // Invalid text is parsed again below, to report what the guarded parse reports.
  {
    Json value = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!value.is_discarded()) {
      if (JsonDepth(value) <= depth_max + 1) return value;
      return Status::InvalidArgument(std::string(what) + ": JSON nests deeper than " +
                                     std::to_string(depth_max) + " levels");
    }
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

namespace {

// nlohmann's own compact dump of one value (invalid UTF-8 replaced): the reference that
// the fast writer below must match byte for byte, and what it falls back to.
void DumpSlow(const Json& value, std::string& out) {
  nlohmann::detail::serializer<Json> serializer(nlohmann::detail::output_adapter<char>(out), ' ',
                                                Json::error_handler_t::replace);
  serializer.dump(value, /*pretty_print=*/false, /*ensure_ascii=*/false, 0);
}

// A string as nlohmann escapes it (ensure_ascii off): `"` and `\` escaped, \b \f \n \r
// \t by name, other bytes below 0x20 as \u00xx (lower-case hex), everything else as it
// is. Only ASCII is written here: a string with a byte >= 0x80 goes to nlohmann, which
// checks its UTF-8 (and replaces what is invalid).
bool DumpAsciiString(std::string_view text, std::string& out) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t plain = 0;  // start of the run of bytes not yet copied
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + plain, i - plain);
    plain = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\b':
        out.push_back('b');
        break;
      case '\f':
        out.push_back('f');
        break;
      case '\n':
        out.push_back('n');
        break;
      case '\r':
        out.push_back('r');
        break;
      case '\t':
        out.push_back('t');
        break;
      default:
        out.append("u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
        break;
    }
  }
  out.append(text.data() + plain, text.size() - plain);
  out.push_back('"');
  return true;
}

void DumpString(const std::string& text, std::string& out) {
  if (!DumpAsciiString(text, out)) DumpSlow(Json(text), out);
}

template <typename Integer>
void DumpInteger(Integer n, std::string& out) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, n);
  static_cast<void>(ec);  // 24 bytes hold any 64-bit integer
  out.append(buffer, end);
}

// The same bytes as nlohmann's compact dump (objects are std::maps: sorted keys), without
// its output adapter and per-byte UTF-8 decoding for ASCII text. Floating-point numbers,
// non-ASCII strings and binary values are written by nlohmann itself.
void DumpFast(const Json& value, std::string& out) {
  switch (value.type()) {
    case Json::value_t::object: {
      const auto& object = value.get_ref<const Json::object_t&>();
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : object) {
        if (!first) out.push_back(',');
        first = false;
        DumpString(key, out);
        out.push_back(':');
        DumpFast(member, out);
      }
      out.push_back('}');
      return;
    }
    case Json::value_t::array: {
      const auto& array = value.get_ref<const Json::array_t&>();
      out.push_back('[');
      for (size_t i = 0; i < array.size(); ++i) {
        if (i != 0) out.push_back(',');
        DumpFast(array[i], out);
      }
      out.push_back(']');
      return;
    }
    case Json::value_t::string:
      return DumpString(value.get_ref<const std::string&>(), out);
    case Json::value_t::boolean:
      out.append(value.get<bool>() ? "true" : "false");
      return;
    case Json::value_t::null:
      out.append("null");
      return;
    case Json::value_t::number_integer:
      return DumpInteger(value.get<Json::number_integer_t>(), out);
    case Json::value_t::number_unsigned:
      return DumpInteger(value.get<Json::number_unsigned_t>(), out);
    default:  // number_float, binary, discarded
      return DumpSlow(value, out);
  }
}

}  // namespace

std::string DumpJson(const Json& value) {
  std::string out;
  DumpFast(value, out);
  return out;
}

std::string DumpJsonReference(const Json& value) {
  std::string out;
  DumpSlow(value, out);
  return out;
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
