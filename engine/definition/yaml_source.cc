#include "engine/definition/yaml_source.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <istream>
#include <limits>
#include <optional>
#include <streambuf>
#include <unordered_map>
#include <utility>
#include <variant>

namespace cairn::engine::definition_impl {
namespace {

constexpr std::string_view kCoreTagPrefix = "tag:yaml.org,2002:";
// What a node costs beyond its text, for SourceLimits::expanded_bytes_max.
constexpr uint64_t kNodeBytes = 8;

// Thrown by the builder to stop yaml-cpp's parser; caught in ParseSource.
struct BuildError {
  YAML::Mark mark;
  std::string path;
  std::string message;
  bool maybe_syntax = false;  // a syntax error later in the text may be the real cause
};

// Follows the events of the first document only to find a syntax error, with the
// builder's bounds (yaml-cpp can emit empty documents forever on some broken input).
class SyntaxOnly : public YAML::EventHandler {
 public:
  explicit SyntaxOnly(const SourceLimits& limits) : limits_(limits) {}
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (documents_++ > 0) Stop(mark);
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Count(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Count(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Enter(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Enter(mark);
  }
  void OnMapEnd() override { --depth_; }

 private:
  [[noreturn]] static void Stop(const YAML::Mark& mark) { throw BuildError{mark, "", "stop"}; }
  void Count(const YAML::Mark& mark) {
    if (++events_ > limits_.nodes_max) Stop(mark);
  }
  void Enter(const YAML::Mark& mark) {
    Count(mark);
    if (++depth_ > limits_.depth_max) Stop(mark);
  }
  const SourceLimits& limits_;
  size_t depth_ = 0;
  uint64_t events_ = 0;
  int documents_ = 0;
};

// A read-only streambuf over caller-owned bytes, so the text is not copied.
class ViewBuffer : public std::streambuf {
 public:
  explicit ViewBuffer(std::string_view text) {
    char* begin = const_cast<char*>(text.data());  // never written: no put area
    setg(begin, begin, begin + text.size());
  }
};

SourcePos ToPos(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {static_cast<uint32_t>(mark.line) + 1, static_cast<uint32_t>(mark.column) + 1};
}

// The length of the well-formed UTF-8 sequence at text[i] (no overlong forms, surrogates
// or code points above U+10FFFF), or 0.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  auto byte = [&](size_t at) { return static_cast<unsigned char>(text[at]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  if (length == 0 || lead > 0xF4 || lead == 0xC0 || lead == 0xC1 || i + length > text.size()) {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  unsigned char second = byte(i + 1);
  if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second >= 0xA0) ||
      (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second >= 0x90)) {
    return 0;
  }
  return length;
}

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

bool IsDigits(std::string_view s, bool (*is_digit)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}
bool IsDecimalDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOctalDigit(char c) { return c >= '0' && c <= '7'; }
bool IsHexDigit(char c) {
  return IsDecimalDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// YAML 1.2 core schema float: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsCoreFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0;
  while (i < s.size() && IsDecimalDigit(s[i])) ++i, ++int_digits;
  size_t frac_digits = 0;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && IsDecimalDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (int_digits == 0 && !dot) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (!IsDigits(s.substr(i), IsDecimalDigit)) return false;
    i = s.size();
  }
  return i == s.size();
}

bool IsCoreSpecialFloat(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return s == ".inf" || s == ".Inf" || s == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN";
}

// Parses a decimal integer; falls back to a float when it does not fit 64 bits (as a
// JSON parser would).
std::optional<Json> DecimalInteger(std::string_view s) {
  std::string_view digits = s;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (!IsDigits(digits, IsDecimalDigit)) return std::nullopt;
  if (negative) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec == std::errc() && end == s.data() + s.size()) return Json(value);
  } else {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec == std::errc() && end == digits.data() + digits.size()) {
      if (value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Json(static_cast<int64_t>(value));
      }
      return Json(value);
    }
  }
  return std::nullopt;  // out of range: the caller treats it as a float
}

std::optional<Json> PrefixedInteger(std::string_view s, int base) {
  std::string_view digits = s.substr(2);
  if (!IsDigits(digits, base == 8 ? IsOctalDigit : IsHexDigit)) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Json(static_cast<int64_t>(value));
  }
  return Json(value);
}

// Float text (already matched by IsCoreFloat) to a finite double, or nullopt.
std::optional<Json> FloatValue(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  std::string text(s);
  // from_chars does not take a leading '.' after a sign in every libstdc++; normalize.
  size_t dot = text.find('.');
  if (dot != std::string::npos && (dot == 0 || !IsDecimalDigit(text[dot - 1]))) {
    text.insert(dot, "0");
  }
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return Json(value);
}

bool IsCoreBool(std::string_view s, bool* value) {
  if (s == "true" || s == "True" || s == "TRUE") return *value = true, true;
  if (s == "false" || s == "False" || s == "FALSE") return *value = false, true;
  return false;
}

bool IsCoreNull(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// Types a plain (untagged, unquoted) scalar. Error text, or the value.
std::variant<Json, std::string> TypePlainScalar(std::string_view s) {
  if (IsCoreNull(s)) return Json(nullptr);
  bool flag = false;
  if (IsCoreBool(s, &flag)) return Json(flag);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
    if (auto value = PrefixedInteger(s, s[1] == 'o' ? 8 : 16)) return *value;
    if (IsDigits(s.substr(2), s[1] == 'o' ? IsOctalDigit : IsHexDigit)) {
      return "integer '" + std::string(s) + "' does not fit in 64 bits";
    }
    return Json(std::string(s));
  }
  if (auto value = DecimalInteger(s)) return *value;
  if (IsCoreFloat(s)) {
    if (auto value = FloatValue(s)) return *value;
    return "number '" + std::string(s) + "' is out of range";
  }
  if (IsCoreSpecialFloat(s)) {
    return "'" + std::string(s) + "' (infinity or NaN) cannot be represented in JSON";
  }
  return Json(std::string(s));
}

// Types a scalar with an explicit core tag.
std::variant<Json, std::string> TypeTaggedScalar(std::string_view tag, std::string_view s) {
  std::string_view name = tag.substr(kCoreTagPrefix.size());
  if (name == "str") return Json(std::string(s));
  if (name == "null") {
    if (IsCoreNull(s)) return Json(nullptr);
  } else if (name == "bool") {
    bool flag = false;
    if (IsCoreBool(s, &flag)) return Json(flag);
  } else if (name == "int" || name == "float") {
    auto typed = TypePlainScalar(s);
    if (const Json* value = std::get_if<Json>(&typed)) {
      if (value->is_number_integer() && name == "float") return Json(value->get<double>());
      if (value->is_number_integer() || (value->is_number_float() && name == "float")) {
        return *value;
      }
    } else {
      return typed;
    }
  } else {
    return "unsupported YAML tag '!!" + std::string(name) + "'";
  }
  return "'" + std::string(s) + "' is not a valid !!" + std::string(name);
}

class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(const SourceLimits& limits) : limits_(limits) {}

  std::shared_ptr<const SourceNode> root() const { return root_; }
  int documents() const { return documents_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (documents_++ > 0) {
      throw BuildError{mark, "",
                       "the text holds more than one YAML document (a definition is one "
                       "document)"};
    }
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (ExpectingKey()) throw BuildError{mark, Path(), "a mapping key must not be null"};
    auto node = NewNode(mark, SourceNode::Kind::kScalar);
    Complete(std::move(node), anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      throw BuildError{mark, Path(),
                       "alias to an anchor that is not complete (an alias cannot refer to "
                       "a node that contains it)"};
    }
    if (ExpectingKey()) throw BuildError{mark, Path(), "an alias cannot be a mapping key"};
    CountNodes(it->second->nodes, it->second->bytes, mark);
    Attach(it->second);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (!IsValidUtf8(value)) {
      throw BuildError{mark, Path(), "the text is not valid UTF-8"};
    }
    if (ExpectingKey()) return AcceptKey(mark, tag, value);
    auto typed = TypeScalar(tag, value);
    if (const std::string* error = std::get_if<std::string>(&typed)) {
      throw BuildError{mark, Path(), *error};
    }
    auto node = NewNode(mark, SourceNode::Kind::kScalar, value.size());
    node->scalar = std::move(std::get<Json>(typed));
    Complete(std::move(node), anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, tag, anchor, SourceNode::Kind::kSequence, "seq");
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, tag, anchor, SourceNode::Kind::kMapping, "map");
  }
  void OnMapEnd() override { Close(); }

 private:
  struct OpenNode {
    std::shared_ptr<SourceNode> node;
    YAML::anchor_t anchor = 0;
    bool expecting_key = true;  // mappings only
    std::string pending_key;
    SourcePos pending_key_pos;
    std::unordered_map<std::string, SourcePos> keys;  // mappings only: for duplicates
  };

  bool ExpectingKey() const {
    return !stack_.empty() && stack_.back().node->IsMapping() && stack_.back().expecting_key;
  }

  // The JSON pointer of the node about to be attached.
  std::string Path() const {
    std::string path;
    for (const OpenNode& open : stack_) {
      if (open.node->IsSequence()) {
        path += "/" + std::to_string(open.node->items.size());
      } else if (!open.expecting_key) {
        path += "/" + EscapePointerToken(open.pending_key);
      }
    }
    return path;
  }

  std::variant<Json, std::string> TypeScalar(const std::string& tag, const std::string& value) {
    if (tag == "!") return Json(value);  // quoted or block scalar
    if (tag == "?" || tag.empty()) return TypePlainScalar(value);
    if (std::string_view(tag).substr(0, kCoreTagPrefix.size()) == kCoreTagPrefix) {
      return TypeTaggedScalar(tag, value);
    }
    return "unsupported YAML tag '" + tag + "'";
  }

  void AcceptKey(const YAML::Mark& mark, const std::string& tag, const std::string& value) {
    if (tag != "?" && tag != "!" && tag != std::string(kCoreTagPrefix) + "str") {
      throw BuildError{mark, Path(), "unsupported YAML tag '" + tag + "' on a mapping key"};
    }
    OpenNode& top = stack_.back();
    SourcePos pos = ToPos(mark);
    auto [it, inserted] = top.keys.emplace(value, pos);
    if (!inserted) {
      throw BuildError{mark, Path() + "/" + EscapePointerToken(value),
                       "duplicate key '" + value + "' (first at line " +
                           std::to_string(it->second.line) + ", column " +
                           std::to_string(it->second.column) + ")"};
    }
    CountNodes(1, value.size() + kNodeBytes, mark);
    top.node->nodes += 1;
    top.node->bytes += value.size() + kNodeBytes;
    top.pending_key = value;
    top.pending_key_pos = pos;
    top.expecting_key = false;
  }

  std::shared_ptr<SourceNode> NewNode(const YAML::Mark& mark, SourceNode::Kind kind,
                                      size_t scalar_bytes = 0) {
    CountNodes(1, scalar_bytes + kNodeBytes, mark);
    auto node = std::make_shared<SourceNode>();
    node->kind = kind;
    node->pos = ToPos(mark);
    node->bytes = scalar_bytes + kNodeBytes;
    return node;
  }

  void CountNodes(uint64_t count, uint64_t bytes, const YAML::Mark& mark) {
    total_nodes_ += count;
    total_bytes_ += bytes;
    if (total_nodes_ > limits_.nodes_max) {
      throw BuildError{mark, Path(),
                       "the document has more than " + std::to_string(limits_.nodes_max) +
                           " nodes (counting every alias expanded)"};
    }
    if (total_bytes_ > limits_.expanded_bytes_max) {
      throw BuildError{mark, Path(),
                       "the document expands (through aliases) to more than " +
                           std::to_string(limits_.expanded_bytes_max) + " bytes"};
    }
  }

  void Open(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
            SourceNode::Kind kind, std::string_view core_name) {
    // yaml-cpp also reports an unclosed flow collection this way: ParseSource looks for a
    // syntax error before it reports this one.
    if (ExpectingKey()) {
      throw BuildError{mark, Path(), "a mapping key must be a scalar (a string)", true};
    }
    if (tag != "?" && tag != "!" && !tag.empty() &&
        tag != std::string(kCoreTagPrefix) + std::string(core_name)) {
      throw BuildError{mark, Path(), "unsupported YAML tag '" + tag + "'"};
    }
    if (stack_.size() + 1 > limits_.depth_max) {
      throw BuildError{
          mark, Path(),
          "the document nests deeper than " + std::to_string(limits_.depth_max) + " levels"};
    }
    OpenNode open;
    open.node = NewNode(mark, kind);
    open.anchor = anchor;
    stack_.push_back(std::move(open));
  }

  void Close() {
    OpenNode open = std::move(stack_.back());
    stack_.pop_back();
    Complete(std::move(open.node), open.anchor);
  }

  void Complete(std::shared_ptr<SourceNode> node, YAML::anchor_t anchor) {
    std::shared_ptr<const SourceNode> done = std::move(node);
    if (anchor != 0) anchors_[anchor] = done;
    Attach(std::move(done));
  }

  void Attach(std::shared_ptr<const SourceNode> node) {
    if (stack_.empty()) {
      root_ = std::move(node);
      return;
    }
    OpenNode& top = stack_.back();
    top.node->nodes += node->nodes;
    top.node->bytes += node->bytes;
    top.node->height = std::max<uint32_t>(top.node->height, node->height + 1);
    if (top.node->IsSequence()) {
      top.node->items.push_back(std::move(node));
      return;
    }
    top.node->entries.push_back({std::move(top.pending_key), top.pending_key_pos, std::move(node)});
    top.pending_key.clear();
    top.expecting_key = true;
  }

  const SourceLimits& limits_;
  std::vector<OpenNode> stack_;
  std::unordered_map<YAML::anchor_t, std::shared_ptr<const SourceNode>> anchors_;
  std::shared_ptr<const SourceNode> root_;
  uint64_t total_nodes_ = 0;
  uint64_t total_bytes_ = 0;
  int documents_ = 0;
};

// The first syntax error yaml-cpp finds in `text`, if any.
std::optional<YAML::Exception> FindSyntaxError(std::string_view text, const SourceLimits& limits) {
  ViewBuffer buffer(text);
  std::istream stream(&buffer);
  SyntaxOnly handler(limits);
  try {
    YAML::Parser parser(stream);
    while (parser.HandleNextDocument(handler)) {
    }
  } catch (const YAML::Exception& error) {
    return error;
  } catch (const BuildError&) {
  }
  return std::nullopt;
}

std::string Positioned(std::string_view source_name, const YAML::Mark& mark, std::string_view path,
                       std::string_view message) {
  std::string out(source_name);
  SourcePos pos = ToPos(mark);
  if (pos.line != 0) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  out += ": ";
  if (!path.empty()) {
    out += path;
    out += ": ";
  }
  out += message;
  return out;
}

}  // namespace

const SourceNode::Entry* SourceNode::FindEntry(std::string_view key) const {
  for (const Entry& entry : entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

const SourceNode* SourceNode::Find(std::string_view key) const {
  const Entry* entry = FindEntry(key);
  return entry ? entry->value.get() : nullptr;
}

Result<std::shared_ptr<const SourceNode>> ParseSource(std::string_view text,
                                                      std::string_view source_name,
                                                      const SourceLimits& limits) {
  if (text.size() > limits.bytes_max) {
    return Status::InvalidArgument(std::string(source_name) + ": the document is " +
                                   std::to_string(text.size()) + " bytes (at most " +
                                   std::to_string(limits.bytes_max) + ")");
  }
  ViewBuffer buffer(text);
  std::istream stream(&buffer);
  TreeBuilder builder(limits);
  try {
    YAML::Parser parser(stream);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const BuildError& error) {
    if (error.maybe_syntax) {
      if (auto syntax = FindSyntaxError(text, limits)) {
        return Status::InvalidArgument(Positioned(source_name, syntax->mark, "",
                                                  "invalid YAML: " + SanitizeUtf8(syntax->msg)));
      }
    }
    return Status::InvalidArgument(Positioned(source_name, error.mark, error.path, error.message));
  } catch (const YAML::Exception& error) {
    // yaml-cpp quotes bytes of the text in some messages ("unknown escape character").
    return Status::InvalidArgument(
        Positioned(source_name, error.mark, "", "invalid YAML: " + SanitizeUtf8(error.msg)));
  } catch (const std::exception& error) {
    return Status::InvalidArgument(std::string(source_name) +
                                   ": invalid YAML: " + SanitizeUtf8(error.what()));
  }
  if (builder.root() == nullptr || builder.root()->IsNull()) {
    return Status::InvalidArgument(std::string(source_name) + ": the document is empty");
  }
  return builder.root();
}

Json ToJson(const SourceNode& node) {
  switch (node.kind) {
    case SourceNode::Kind::kScalar:
      return node.scalar;
    case SourceNode::Kind::kSequence: {
      Json out = Json::array();
      for (const auto& item : node.items) out.push_back(ToJson(*item));
      return out;
    }
    case SourceNode::Kind::kMapping: {
      Json out = Json::object();
      for (const auto& entry : node.entries) out[entry.key] = ToJson(*entry.value);
      return out;
    }
  }
  return nullptr;
}

std::string_view DescribeNode(const SourceNode& node) {
  switch (node.kind) {
    case SourceNode::Kind::kSequence:
      return "a sequence";
    case SourceNode::Kind::kMapping:
      return "a mapping";
    case SourceNode::Kind::kScalar:
      break;
  }
  if (node.scalar.is_string()) return "a string";
  if (node.scalar.is_boolean()) return "a boolean";
  if (node.scalar.is_number_integer()) return "an integer";
  if (node.scalar.is_number()) return "a number";
  return "null";
}

std::string SanitizeUtf8(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      auto byte = static_cast<unsigned char>(text[i]);
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
      ++i;
      continue;
    }
    out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace cairn::engine::definition_impl
