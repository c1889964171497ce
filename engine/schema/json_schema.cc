#include "engine/schema/json_schema.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <locale>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/limits.h"

namespace cairn::engine {

// Patterns are matched over code points: a std::wstring holds one per wchar_t.
static_assert(sizeof(wchar_t) == 4, "wchar_t must hold a Unicode code point");

namespace {

using Int128 = __int128;

constexpr uint32_t kNone = UINT32_MAX;
constexpr uint64_t kUnbounded = UINT64_MAX;

// ---------------------------------------------------------------------------------------
// Text

// The longest prefix of `text` of at most `bytes_max` bytes that ends on a code point
// boundary.
std::string_view CutUtf8(std::string_view text, size_t bytes_max) {
  if (text.size() <= bytes_max) return text;
  size_t end = bytes_max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// `text` cut to about `bytes_max` bytes, marking the cut.
std::string Truncate(std::string_view text, size_t bytes_max) {
  if (text.size() <= bytes_max) return std::string(text);
  return std::string(CutUtf8(text, bytes_max)) + "...";
}

// One step of a JSON pointer: an object key or an array index. Keys point into the
// document, so a path costs no copies until a message renders it.
struct Token {
  const std::string* name = nullptr;  // null for an index
  size_t index = 0;
};

// Keys longer than this are cut in messages: a pointer is for a reader, and a hostile key
// must not make every message megabytes long.
constexpr size_t kTokenBytesMax = 128;

// "/a/0/b~1c"; "(root)" for the empty pointer (the whole document).
std::string RenderPointer(const std::vector<Token>& tokens) {
  if (tokens.empty()) return "(root)";
  std::string out;
  for (const Token& token : tokens) {
    out += '/';
    if (!token.name) {
      out += std::to_string(token.index);
      continue;
    }
    for (char c : CutUtf8(*token.name, kTokenBytesMax)) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
    if (token.name->size() > kTokenBytesMax) out += "...";
  }
  return out;
}

// Pushes a token for the life of the scope.
class PathScope {
 public:
  PathScope(std::vector<Token>& path, Token token) : path_(path) { path_.push_back(token); }
  ~PathScope() { path_.pop_back(); }
  PathScope(const PathScope&) = delete;
  PathScope& operator=(const PathScope&) = delete;

 private:
  std::vector<Token>& path_;
};

// Decodes the code point starting at s[pos] and returns its length in bytes. A byte that does
// not start a valid UTF-8 sequence decodes as U+FFFD on its own, so every string has a
// deterministic length.
size_t DecodeOne(std::string_view s, size_t pos, char32_t* out) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(pos);
  *out = 0xFFFD;
  if (lead < 0x80) {
    *out = lead;
    return 1;
  }
  size_t length = 0;
  char32_t cp = 0;
  char32_t smallest = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, smallest = 0x10000;
  } else {
    return 1;
  }
  if (pos + length > s.size()) return 1;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) return 1;
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  if (cp < smallest || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 1;
  *out = cp;
  return length;
}

uint64_t CountCodePoints(std::string_view s) {
  uint64_t count = 0;
  char32_t ignored = 0;
  for (size_t pos = 0; pos < s.size(); pos += DecodeOne(s, pos, &ignored)) ++count;
  return count;
}

// `valid` (if given) is set to false when `s` is not valid UTF-8.
std::wstring ToWide(std::string_view s, bool* valid = nullptr) {
  std::wstring out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp = 0;
    const size_t length = DecodeOne(s, pos, &cp);
    if (length == 1 && static_cast<unsigned char>(s[pos]) >= 0x80 && valid) *valid = false;
    out += static_cast<wchar_t>(cp);
    pos += length;
  }
  return out;
}

constexpr size_t kPreviewBytesMax = 64;
constexpr size_t kSchemaValuePreviewBytesMax = 120;

// A scalar as JSON text (strings cut to a readable length); "object" or "array" otherwise,
// so that a message never copies a whole document.
std::string Preview(const Json& value) {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.size() <= kPreviewBytesMax) return DumpJson(value);
    return DumpJson(Json(std::string(CutUtf8(text, kPreviewBytesMax)))) + "...";
  }
  if (value.is_structured()) return std::string(JsonTypeName(value));
  return DumpJson(value);
}

// "number 1.5", "string \"abc\"", "object".
std::string Describe(const Json& value) {
  if (value.is_structured()) return std::string(JsonTypeName(value));
  return std::string(JsonTypeName(value)) + " " + Preview(value);
}

std::string Count(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// ---------------------------------------------------------------------------------------
// Numbers. JSON numbers compare by value and exactly: nlohmann holds int64, uint64 or
// double, and converting a large integer to double would round it.

// The value of an integral number in [-2^63, 2^64), the union of the integer types.
std::optional<Int128> ExactInteger(const Json& value) {
  if (value.is_number_unsigned()) return Int128{value.get<uint64_t>()};
  if (value.is_number_integer()) return Int128{value.get<int64_t>()};
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && std::trunc(d) == d && d >= -0x1p63 && d < 0x1p64) {
      return static_cast<Int128>(d);
    }
  }
  return std::nullopt;
}

bool IsIntegral(const Json& value) {
  if (value.is_number_integer()) return true;  // signed or unsigned
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

bool IsFinite(const Json& number) {
  return !number.is_number_float() || std::isfinite(number.get<double>());
}

// Sign of (d - i) for a finite d.
int CompareDoubleToInteger(double d, Int128 i) {
  if (d < -0x1p63) return -1;  // below every int64
  if (d >= 0x1p64) return 1;   // above every uint64
  const double whole = std::trunc(d);
  const auto whole_int = static_cast<Int128>(whole);
  if (whole_int != i) return whole_int < i ? -1 : 1;
  return (d > whole) - (d < whole);
}

// Sign of (a - b) for finite numbers.
int CompareNumbers(const Json& a, const Json& b) {
  if (a.is_number_float() && b.is_number_float()) {
    const double x = a.get<double>();
    const double y = b.get<double>();
    return (x > y) - (x < y);
  }
  if (a.is_number_float()) return CompareDoubleToInteger(a.get<double>(), *ExactInteger(b));
  if (b.is_number_float()) return -CompareDoubleToInteger(b.get<double>(), *ExactInteger(a));
  const Int128 x = *ExactInteger(a);
  const Int128 y = *ExactInteger(b);
  return (x > y) - (x < y);
}

// `divisor` is positive. Exact for integers; for fractions the quotient may be off an
// integer by rounding (0.3 / 0.1 is 2.9999999999999996), so a few ulp are tolerated.
bool IsMultipleOf(const Json& value, const Json& divisor) {
  const std::optional<Int128> v = ExactInteger(value);
  const std::optional<Int128> d = ExactInteger(divisor);
  if (v && d) return *v % *d == 0;
  const double quotient = value.get<double>() / divisor.get<double>();
  if (!std::isfinite(quotient)) return false;
  const double nearest = std::nearbyint(quotient);
  return std::fabs(quotient - nearest) <= std::fabs(quotient) * 8 * DBL_EPSILON;
}

std::string Int128ToString(Int128 value) {
  if (value == 0) return "0";
  const bool negative = value < 0;
  std::string digits;
  while (value != 0) {
    const auto digit = static_cast<int>(value % 10);
    digits += static_cast<char>('0' + (negative ? -digit : digit));
    value /= 10;
  }
  if (negative) digits += '-';
  return {digits.rbegin(), digits.rend()};
}

// ---------------------------------------------------------------------------------------
// Patterns

constexpr uint64_t kSaturated = uint64_t{1} << 40;

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return std::min(kSaturated, a + b); }
uint64_t SaturatingMultiply(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kSaturated / b ? kSaturated : std::min(kSaturated, a * b);
}

bool IsHexDigit(wchar_t c) {
  return (c >= L'0' && c <= L'9') || (c >= L'a' && c <= L'f') || (c >= L'A' && c <= L'F');
}

// Walks an ECMAScript pattern once to refuse what std::regex would silently read otherwise
// than JavaScript does, and to estimate how many automaton states std::regex builds for it
// (repeats are unrolled: `x{1000}` is a thousand copies of `x`), which bounds matching time
// and stack. Lenient about other syntax: std::regex reports malformed patterns afterwards.
class PatternScanner {
 public:
  explicit PatternScanner(const std::wstring& pattern) : pattern_(pattern) {}

  // Returns the state estimate, or sets error().
  uint64_t Scan() {
    uint64_t states = Alternation();
    while (!AtEnd()) {  // a stray ')': std::regex reports it
      ++pos_;
      states = SaturatingAdd(states, Alternation());
    }
    return states;
  }
  const std::string& error() const { return error_; }

 private:
  bool AtEnd() const { return pos_ >= pattern_.size() || !error_.empty(); }
  wchar_t Peek(size_t ahead = 0) const {
    return pos_ + ahead < pattern_.size() ? pattern_[pos_ + ahead] : L'\0';
  }

  uint64_t Alternation() {
    uint64_t states = Sequence();
    while (!AtEnd() && Peek() == L'|') {
      ++pos_;
      states = SaturatingAdd(states, SaturatingAdd(Sequence(), 2));
    }
    return states;
  }

  uint64_t Sequence() {
    uint64_t states = 0;
    while (!AtEnd() && Peek() != L'|' && Peek() != L')') {
      states = SaturatingAdd(states, Quantified(Atom()));
    }
    return states;
  }

  uint64_t Atom() {
    const wchar_t c = Peek();
    if (c == L'(') return Group();
    if (c == L'[') return CharacterClass();
    if (c == L'\\') {
      Escape(/*in_class=*/false);
      return 1;
    }
    ++pos_;
    return 1;
  }

  uint64_t Group() {
    ++pos_;  // '('
    if (Peek() == L'?') {
      if (Peek(1) == L'<') {
        error_ = "(?< (lookbehind or a named group) is not supported";
        return 0;
      }
      pos_ += 2;  // (?: (?= (?!
    }
    const uint64_t inner = Alternation();
    if (!AtEnd() && Peek() == L')') ++pos_;
    return SaturatingAdd(inner, 2);
  }

  uint64_t CharacterClass() {
    ++pos_;  // '['
    if (Peek() == L'^') ++pos_;
    while (!AtEnd() && Peek() != L']') {
      if (Peek() == L'\\') {
        Escape(/*in_class=*/true);
      } else {
        ++pos_;
      }
    }
    if (!AtEnd()) ++pos_;  // ']'
    return 1;
  }

  // std::regex takes an unknown letter escape as the letter (\p{L} would match "p{L}"), and
  // JavaScript patterns often use such escapes: refuse them instead.
  void Escape(bool in_class) {
    ++pos_;                               // '\'
    if (pos_ >= pattern_.size()) return;  // std::regex reports the trailing '\'
    const wchar_t c = pattern_[pos_++];
    if (c >= L'1' && c <= L'9') {
      if (!in_class) {
        error_ =
            "backreferences (\\" + std::string(1, static_cast<char>(c)) + ") are not supported";
      }
      return;
    }
    if (c == L'u') return UnicodeEscape();
    static constexpr std::wstring_view kLetters = L"bBdDsSwWfnrtvcx";
    const bool letter = (c >= L'a' && c <= L'z') || (c >= L'A' && c <= L'Z');
    if (letter && kLetters.find(c) == std::wstring_view::npos) {
      error_ = "escape \\" + std::string(1, static_cast<char>(c)) + " is not supported";
    }
  }

  // Strings are matched as code points, so half of a UTF-16 pair would never match.
  void UnicodeEscape() {
    if (!(IsHexDigit(Peek()) && IsHexDigit(Peek(1)) && IsHexDigit(Peek(2)) &&
          IsHexDigit(Peek(3)))) {
      return;  // std::regex reports it
    }
    const std::wstring hex = pattern_.substr(pos_, 4);
    const unsigned long value = std::stoul(hex, nullptr, 16);
    if (value >= 0xD800 && value <= 0xDFFF) {
      error_ = "\\u" + std::string(hex.begin(), hex.end()) +
               " is half of a UTF-16 surrogate pair; write the character itself";
    }
    pos_ += 4;
  }

  uint64_t Quantified(uint64_t atom) {
    const std::optional<uint64_t> states = Quantifier(atom);
    if (!states) return atom;
    if (Peek() == L'?') ++pos_;  // lazy
    // std::regex reads "a**" or "a{2}{3}" as a repeat of a repeat; JavaScript refuses them.
    if (!AtEnd() && (Peek() == L'*' || Peek() == L'+' || Peek() == L'?' || Braces(false))) {
      error_ = "a quantifier cannot follow another quantifier";
    }
    return *states;
  }

  // The states of `atom` under the quantifier at pos_ (consumed), or nullopt if none.
  std::optional<uint64_t> Quantifier(uint64_t atom) {
    if (AtEnd()) return std::nullopt;
    switch (Peek()) {
      case L'*':
      case L'?':
        ++pos_;
        return SaturatingAdd(atom, 2);
      case L'+':
        ++pos_;
        return SaturatingAdd(SaturatingMultiply(atom, 2), 2);  // x+ is x x*
      case L'{': {
        const std::optional<uint64_t> copies = Braces(true);
        if (!copies) return std::nullopt;
        return SaturatingAdd(SaturatingMultiply(atom, std::max<uint64_t>(*copies, 1)), 2);
      }
      default:
        return std::nullopt;
    }
  }

  // {m}, {m,} or {m,n} at pos_: how many copies std::regex unrolls; nullopt if not a repeat.
  // Consumes it if `consume`.
  std::optional<uint64_t> Braces(bool consume) {
    if (Peek() != L'{') return std::nullopt;
    size_t p = pos_ + 1;
    const auto number = [&]() -> std::optional<uint64_t> {
      if (p >= pattern_.size() || pattern_[p] < L'0' || pattern_[p] > L'9') return std::nullopt;
      uint64_t n = 0;
      for (; p < pattern_.size() && pattern_[p] >= L'0' && pattern_[p] <= L'9'; ++p) {
        n = SaturatingAdd(SaturatingMultiply(n, 10), static_cast<uint64_t>(pattern_[p] - L'0'));
      }
      return n;
    };
    const std::optional<uint64_t> low = number();
    if (!low) return std::nullopt;
    uint64_t copies = *low;
    if (p < pattern_.size() && pattern_[p] == L',') {
      ++p;
      const std::optional<uint64_t> high = number();
      copies = high ? std::max(*high, *low) : SaturatingAdd(*low, 1);
    }
    if (p >= pattern_.size() || pattern_[p] != L'}') return std::nullopt;
    if (consume) pos_ = p + 1;
    return copies;
  }

  const std::wstring& pattern_;
  size_t pos_ = 0;
  std::string error_;
};

// States the wrapper around every pattern adds (see CompilePattern).
constexpr uint64_t kWrapperStates = 8;

struct Pattern {
  std::string source;
  std::wregex regex;  // `[\s\S]*?(?:source)[\s\S]*`, matched against the whole string
  uint64_t states = 0;
};

Result<std::wregex> BuildRegex(const std::wstring& text) {
  try {
    std::wregex regex;
    regex.imbue(std::locale::classic());  // \w, \d, \s do not depend on the global locale
    // __polynomial (libstdc++): a breadth-first matcher, linear in the string; no
    // backtracking, so no catastrophic patterns.
    regex.assign(text, std::regex::ECMAScript | std::regex_constants::__polynomial);
    return regex;
  } catch (const std::regex_error& e) {
    return Status::InvalidArgument(e.what());
  }
}

Result<Pattern> CompilePattern(const std::string& source) {
  if (source.size() > schema_pattern_bytes_max) {
    return Status::InvalidArgument("pattern of " + std::to_string(source.size()) +
                                   " bytes is longer than the limit of " +
                                   std::to_string(schema_pattern_bytes_max));
  }
  bool valid = true;
  const std::wstring wide = ToWide(source, &valid);
  if (!valid) return Status::InvalidArgument("pattern is not valid UTF-8");
  PatternScanner scanner(wide);
  const uint64_t states = scanner.Scan();
  if (!scanner.error().empty()) return Status::InvalidArgument(scanner.error());
  if (states > schema_pattern_states_max) {
    return Status::InvalidArgument(
        "pattern needs about " + std::to_string(states) + " automaton states, more than the " +
        "limit of " + std::to_string(schema_pattern_states_max) + " (lower its repeat counts)");
  }
  // Compiled alone first: only a well-formed pattern can be wrapped safely ("a)(b" would
  // otherwise become valid inside the wrapper).
  Result<std::wregex> alone = BuildRegex(wide);
  if (!alone.ok()) {
    return Status::InvalidArgument("invalid regular expression: " + alone.status().message());
  }
  // The pattern may match anywhere: searching position by position would cost
  // O(length^2); one pass over the whole string with a lazy prefix is linear.
  Result<std::wregex> wrapped = BuildRegex(L"[\\s\\S]*?(?:" + wide + L")[\\s\\S]*");
  if (!wrapped.ok()) {
    return Status::InvalidArgument("invalid regular expression: " + wrapped.status().message());
  }
  return Pattern{source, std::move(wrapped).value(), states + kWrapperStates};
}

// ---------------------------------------------------------------------------------------
// The compiled form: one Node per subschema, addressed by index.

enum TypeBit : uint8_t {
  kTypeNull = 1 << 0,
  kTypeBoolean = 1 << 1,
  kTypeInteger = 1 << 2,
  kTypeNumber = 1 << 3,
  kTypeString = 1 << 4,
  kTypeArray = 1 << 5,
  kTypeObject = 1 << 6,
};

constexpr std::pair<std::string_view, uint8_t> kTypeNames[] = {
    {"null", kTypeNull},     {"boolean", kTypeBoolean}, {"integer", kTypeInteger},
    {"number", kTypeNumber}, {"string", kTypeString},   {"array", kTypeArray},
    {"object", kTypeObject}};

// "null or string".
std::string TypeNames(uint8_t types) {
  std::string out;
  for (const auto& [name, bit] : kTypeNames) {
    if (!(types & bit)) continue;
    if (!out.empty()) out += " or ";
    out += name;
  }
  return out;
}

struct Node {
  enum class Kind : uint8_t { kTrue, kFalse, kObject };
  Kind kind = Kind::kTrue;
  uint8_t types = 0;  // TypeBit mask; 0 when there is no `type`
  bool unique_items = false;

  // Where the node is in the schema: under `keyword` of `parent`, at `member` of it for
  // properties, $defs and the arrays of schemas.
  uint32_t parent = kNone;
  const std::string* keyword = nullptr;
  std::optional<Token> member;

  // These point into Impl::document.
  const Json* enum_values = nullptr;
  const Json* const_value = nullptr;
  const Json* minimum = nullptr;
  const Json* maximum = nullptr;
  const Json* exclusive_minimum = nullptr;
  const Json* exclusive_maximum = nullptr;
  const Json* multiple_of = nullptr;

  uint64_t min_length = 0;
  uint64_t max_length = kUnbounded;
  std::unique_ptr<const Pattern> pattern;

  std::vector<uint32_t> prefix_items;
  uint32_t items = kNone;
  uint64_t min_items = 0;
  uint64_t max_items = kUnbounded;

  std::vector<std::pair<const std::string*, uint32_t>> properties;  // sorted by name
  std::vector<const std::string*> required;
  uint32_t additional_properties = kNone;
  uint64_t min_properties = 0;
  uint64_t max_properties = kUnbounded;

  std::vector<uint32_t> all_of;
  std::vector<uint32_t> any_of;
  std::vector<uint32_t> one_of;
  uint32_t not_schema = kNone;
  uint32_t ref = kNone;

  bool HasNumberKeywords() const {
    return minimum || maximum || exclusive_minimum || exclusive_maximum || multiple_of;
  }
  bool HasStringKeywords() const { return min_length > 0 || max_length != kUnbounded || pattern; }

  // Subschemas applied to the same value (not to a part of it): a cycle through these
  // would never end.
  std::vector<uint32_t> InPlace() const {
    std::vector<uint32_t> out = all_of;
    out.insert(out.end(), any_of.begin(), any_of.end());
    out.insert(out.end(), one_of.begin(), one_of.end());
    if (not_schema != kNone) out.push_back(not_schema);
    if (ref != kNone) out.push_back(ref);
    return out;
  }
};

}  // namespace

struct CompiledSchema::Impl {
  Json document;
  std::vector<Node> nodes;  // nodes[0] is the root
  CompiledSchema::Options options;

  // The pointer to nodes[index] in the document, as tokens.
  std::vector<Token> Location(uint32_t index) const {
    std::vector<Token> reversed;
    for (uint32_t at = index; nodes[at].parent != kNone; at = nodes[at].parent) {
      if (nodes[at].member) reversed.push_back(*nodes[at].member);
      reversed.push_back({nodes[at].keyword, 0});
    }
    return {reversed.rbegin(), reversed.rend()};
  }
};

namespace {

using Impl = CompiledSchema::Impl;

// ---------------------------------------------------------------------------------------
// Checking and compiling

enum class Keyword : uint8_t {
  kAnnotationString,
  kAnnotationBoolean,
  kAnnotationAny,
  kExamples,
  kFormat,
  kSchema,
  kId,
  kDefs,
  kRef,
  kType,
  kEnum,
  kConst,
  kMinimum,
  kMaximum,
  kExclusiveMinimum,
  kExclusiveMaximum,
  kMultipleOf,
  kMinLength,
  kMaxLength,
  kPattern,
  kItems,
  kPrefixItems,
  kMinItems,
  kMaxItems,
  kUniqueItems,
  kProperties,
  kRequired,
  kAdditionalProperties,
  kMinProperties,
  kMaxProperties,
  kAllOf,
  kAnyOf,
  kOneOf,
  kNot,
};

struct KeywordEntry {
  std::string_view name;
  Keyword keyword;
};

constexpr KeywordEntry kKeywords[] = {
    {"type", Keyword::kType},
    {"enum", Keyword::kEnum},
    {"const", Keyword::kConst},
    {"properties", Keyword::kProperties},
    {"required", Keyword::kRequired},
    {"additionalProperties", Keyword::kAdditionalProperties},
    {"minProperties", Keyword::kMinProperties},
    {"maxProperties", Keyword::kMaxProperties},
    {"items", Keyword::kItems},
    {"prefixItems", Keyword::kPrefixItems},
    {"minItems", Keyword::kMinItems},
    {"maxItems", Keyword::kMaxItems},
    {"uniqueItems", Keyword::kUniqueItems},
    {"minLength", Keyword::kMinLength},
    {"maxLength", Keyword::kMaxLength},
    {"pattern", Keyword::kPattern},
    {"minimum", Keyword::kMinimum},
    {"maximum", Keyword::kMaximum},
    {"exclusiveMinimum", Keyword::kExclusiveMinimum},
    {"exclusiveMaximum", Keyword::kExclusiveMaximum},
    {"multipleOf", Keyword::kMultipleOf},
    {"allOf", Keyword::kAllOf},
    {"anyOf", Keyword::kAnyOf},
    {"oneOf", Keyword::kOneOf},
    {"not", Keyword::kNot},
    {"$ref", Keyword::kRef},
    {"$defs", Keyword::kDefs},
    {"definitions", Keyword::kDefs},
    {"format", Keyword::kFormat},
    {"$schema", Keyword::kSchema},
    {"$id", Keyword::kId},
    {"$comment", Keyword::kAnnotationString},
    {"title", Keyword::kAnnotationString},
    {"description", Keyword::kAnnotationString},
    {"default", Keyword::kAnnotationAny},
    {"examples", Keyword::kExamples},
    {"deprecated", Keyword::kAnnotationBoolean},
    {"readOnly", Keyword::kAnnotationBoolean},
    {"writeOnly", Keyword::kAnnotationBoolean},
};

std::optional<Keyword> FindKeyword(std::string_view name) {
  for (const KeywordEntry& entry : kKeywords) {
    if (entry.name == name) return entry.keyword;
  }
  return std::nullopt;
}

std::string SupportedKeywords() {
  std::string out;
  for (const KeywordEntry& entry : kKeywords) {
    if (!out.empty()) out += ", ";
    out += entry.name;
  }
  return out;
}

// Keywords that only describe, or hold subschemas for $ref: no draft gives them a different
// meaning beside $ref.
bool IsAnnotation(Keyword keyword) {
  switch (keyword) {
    case Keyword::kAnnotationString:
    case Keyword::kAnnotationBoolean:
    case Keyword::kAnnotationAny:
    case Keyword::kExamples:
    case Keyword::kFormat:
    case Keyword::kSchema:
    case Keyword::kId:
    case Keyword::kDefs:
    case Keyword::kRef:
      return true;
    default:
      return false;
  }
}

enum class Dialect : uint8_t { kUnspecified, kDraft6, kDraft7, kDraft2019, kDraft2020 };

std::optional<Dialect> DialectOf(std::string uri) {
  if (!uri.empty() && uri.back() == '#') uri.pop_back();
  if (uri.starts_with("http://")) uri.replace(0, 7, "https://");
  if (uri == "https://json-schema.org/draft-06/schema") return Dialect::kDraft6;
  if (uri == "https://json-schema.org/draft-07/schema") return Dialect::kDraft7;
  if (uri == "https://json-schema.org/draft/2019-09/schema") return Dialect::kDraft2019;
  if (uri == "https://json-schema.org/draft/2020-12/schema") return Dialect::kDraft2020;
  return std::nullopt;
}

// A $ref waiting for every subschema to be compiled.
struct PendingRef {
  uint32_t node = 0;
  const std::string* keyword = nullptr;  // the "$ref" key, for the pointer in messages
  const std::string* text = nullptr;
};

// "#/$defs/a%20b" -> "/$defs/a b": the fragment of a $ref, percent-decoded. nullopt if the
// encoding is bad.
std::optional<std::string> PercentDecode(std::string_view fragment) {
  std::string out;
  for (size_t i = 0; i < fragment.size(); ++i) {
    if (fragment[i] != '%') {
      out += fragment[i];
      continue;
    }
    if (i + 2 >= fragment.size() || !IsHexDigit(static_cast<wchar_t>(fragment[i + 1])) ||
        !IsHexDigit(static_cast<wchar_t>(fragment[i + 2]))) {
      return std::nullopt;
    }
    out += static_cast<char>(std::stoi(std::string(fragment.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

// Splits a JSON pointer ("" or "/a/b~1c") into unescaped tokens; nullopt if a '~' is not
// followed by 0 or 1.
std::optional<std::vector<std::string>> SplitPointer(std::string_view pointer) {
  CAIRN_ASSERT(pointer.empty() || pointer[0] == '/', "a JSON pointer starts with '/'");
  std::vector<std::string> tokens;
  for (size_t pos = 0; pos < pointer.size(); ++pos) {
    if (pointer[pos] == '/') {
      tokens.emplace_back();
    } else if (pointer[pos] == '~') {
      if (pos + 1 == pointer.size() || (pointer[pos + 1] != '0' && pointer[pos + 1] != '1')) {
        return std::nullopt;
      }
      tokens.back() += pointer[++pos] == '0' ? '~' : '/';
    } else {
      tokens.back() += pointer[pos];
    }
  }
  return tokens;
}

// Compiles Impl::document into Impl::nodes. One use. Errors name the pointer being compiled
// (path_), which costs nothing until an error is reported.
class Compiler {
 public:
  explicit Compiler(Impl& impl) : impl_(impl) {}

  Status Run() {
    const Json& root = impl_.document;
    if (root.is_object()) CAIRN_RETURN_IF_ERROR(ReadDialect(root));
    CAIRN_RETURN_IF_ERROR(CompileSchema(root, kNone, nullptr, std::nullopt).status());
    CAIRN_RETURN_IF_ERROR(ResolveRefs());
    return CheckCycles();
  }

 private:
  Status Malformed(const std::string& problem) const {
    return Status::InvalidArgument(RenderPointer(path_) + ": " + problem);
  }

  Status Expect(const Json& value, bool ok, std::string_view expected) const {
    if (ok) return Status::Ok();
    return Malformed("expected " + std::string(expected) + ", got " +
                     std::string(JsonTypeName(value)));
  }

  Status ReadDialect(const Json& root) {
    const auto it = root.find("$schema");
    if (it == root.end()) return Status::Ok();
    const PathScope scope(path_, {&it.key(), 0});
    CAIRN_RETURN_IF_ERROR(Expect(*it, it->is_string(), "a string"));
    const std::optional<Dialect> dialect = DialectOf(it->get<std::string>());
    if (!dialect) {
      return Malformed(DumpJson(*it) +
                       " is not supported (supported: draft-06, draft-07, "
                       "2019-09 and 2020-12 meta-schemas)");
    }
    dialect_ = *dialect;
    return Status::Ok();
  }

  Result<uint32_t> CompileSchema(const Json& schema, uint32_t parent, const std::string* keyword,
                                 std::optional<Token> member) {
    if (impl_.nodes.size() >= limits::definition_nodes_max) {
      return Status::InvalidArgument("schema has more than " +
                                     std::to_string(limits::definition_nodes_max) + " subschemas");
    }
    const auto index = static_cast<uint32_t>(impl_.nodes.size());
    impl_.nodes.emplace_back();  // reserves the index; filled in below
    node_of_.emplace(&schema, index);
    Node node;
    node.parent = parent;
    node.keyword = keyword;
    node.member = member;
    if (schema.is_boolean()) {
      node.kind = schema.get<bool>() ? Node::Kind::kTrue : Node::Kind::kFalse;
    } else if (schema.is_object()) {
      node.kind = Node::Kind::kObject;
      CAIRN_RETURN_IF_ERROR(CompileKeywords(schema, index, &node));
    } else {
      return Malformed("expected a schema (an object or a boolean), got " +
                       std::string(JsonTypeName(schema)));
    }
    impl_.nodes[index] = std::move(node);
    return index;
  }

  Status CompileKeywords(const Json& schema, uint32_t index, Node* node) {
    const std::string* beside_ref = nullptr;  // the first validation keyword
    for (auto it = schema.begin(); it != schema.end(); ++it) {
      const PathScope scope(path_, {&it.key(), 0});
      const std::optional<Keyword> keyword = FindKeyword(it.key());
      if (!keyword) {
        return Malformed("keyword not supported (supported: " + SupportedKeywords() + ")");
      }
      if (!IsAnnotation(*keyword) && !beside_ref) beside_ref = &it.key();
      if ((*keyword == Keyword::kSchema || *keyword == Keyword::kId) && index != 0) {
        return Malformed(it.key() + " is supported only at the root of the schema");
      }
      CAIRN_RETURN_IF_ERROR(CompileKeyword(*keyword, it.key(), it.value(), index, node));
    }
    const auto ref = schema.find("$ref");
    const bool siblings_apply = dialect_ == Dialect::kDraft2019 || dialect_ == Dialect::kDraft2020;
    if (ref != schema.end() && beside_ref && !siblings_apply) {
      const PathScope scope(path_, {&ref.key(), 0});
      return Malformed("\"" + *beside_ref +
                       "\" beside $ref is ignored by draft-07 and applied "
                       "by 2019-09 and later; set \"$schema\" to "
                       "\"https://json-schema.org/draft/2020-12/schema\" or move it into allOf");
    }
    return Status::Ok();
  }

  Status CompileKeyword(Keyword keyword, const std::string& name, const Json& value, uint32_t index,
                        Node* node) {
    switch (keyword) {
      case Keyword::kAnnotationString:
      case Keyword::kId:
      case Keyword::kFormat:  // an annotation: accepted, not checked (see the header)
        return Expect(value, value.is_string(), "a string");
      case Keyword::kAnnotationBoolean:
        return Expect(value, value.is_boolean(), "a boolean");
      case Keyword::kAnnotationAny:
      case Keyword::kSchema:  // read by ReadDialect
        return Status::Ok();
      case Keyword::kExamples:
        return Expect(value, value.is_array(), "an array");
      case Keyword::kDefs:
        return CompileSchemaMap(value, index, &name, nullptr);
      case Keyword::kRef:
        CAIRN_RETURN_IF_ERROR(Expect(value, value.is_string(), "a string"));
        refs_.push_back({index, &name, &value.get_ref<const std::string&>()});
        return Status::Ok();
      default:
        return CompileAssertion(keyword, name, value, index, node);
    }
  }

  Status CompileAssertion(Keyword keyword, const std::string& name, const Json& value,
                          uint32_t index, Node* node) {
    switch (keyword) {
      case Keyword::kType:
        return ReadTypes(value, node);
      case Keyword::kEnum:
        CAIRN_RETURN_IF_ERROR(Expect(value, value.is_array(), "an array"));
        node->enum_values = &value;
        return Status::Ok();
      case Keyword::kConst:
        node->const_value = &value;
        return Status::Ok();
      case Keyword::kMinimum:
        return ReadNumber(value, &node->minimum);
      case Keyword::kMaximum:
        return ReadNumber(value, &node->maximum);
      case Keyword::kExclusiveMinimum:
        return ReadNumber(value, &node->exclusive_minimum);
      case Keyword::kExclusiveMaximum:
        return ReadNumber(value, &node->exclusive_maximum);
      case Keyword::kMultipleOf:
        return ReadMultipleOf(value, node);
      case Keyword::kMinLength:
        return ReadCount(value, &node->min_length);
      case Keyword::kMaxLength:
        return ReadCount(value, &node->max_length);
      case Keyword::kPattern:
        return ReadPattern(value, node);
      case Keyword::kMinItems:
        return ReadCount(value, &node->min_items);
      case Keyword::kMaxItems:
        return ReadCount(value, &node->max_items);
      case Keyword::kUniqueItems:
        CAIRN_RETURN_IF_ERROR(Expect(value, value.is_boolean(), "a boolean"));
        node->unique_items = value.get<bool>();
        return Status::Ok();
      case Keyword::kMinProperties:
        return ReadCount(value, &node->min_properties);
      case Keyword::kMaxProperties:
        return ReadCount(value, &node->max_properties);
      case Keyword::kRequired:
        return ReadRequired(value, node);
      default:
        return CompileApplicator(keyword, name, value, index, node);
    }
  }

  Status CompileApplicator(Keyword keyword, const std::string& name, const Json& value,
                           uint32_t index, Node* node) {
    switch (keyword) {
      case Keyword::kItems:
        if (value.is_array()) {
          return Malformed(
              "the array form of items (draft-07 tuples) is not supported; use "
              "prefixItems");
        }
        return CompileOne(value, index, name, &node->items);
      case Keyword::kPrefixItems:
        return CompileSchemaArray(value, index, name, &node->prefix_items);
      case Keyword::kProperties:
        return CompileSchemaMap(value, index, &name, &node->properties);
      case Keyword::kAdditionalProperties:
        return CompileOne(value, index, name, &node->additional_properties);
      case Keyword::kAllOf:
        return CompileSchemaArray(value, index, name, &node->all_of);
      case Keyword::kAnyOf:
        return CompileSchemaArray(value, index, name, &node->any_of);
      case Keyword::kOneOf:
        return CompileSchemaArray(value, index, name, &node->one_of);
      case Keyword::kNot:
        return CompileOne(value, index, name, &node->not_schema);
      default:
        CAIRN_ASSERT(false, "a JSON Schema keyword without a compiler");
    }
    return Status::Ok();
  }

  Status ReadNumber(const Json& value, const Json** out) const {
    CAIRN_RETURN_IF_ERROR(Expect(value, value.is_number(), "a number"));
    if (!IsFinite(value)) return Malformed("expected a finite number");
    *out = &value;
    return Status::Ok();
  }

  Status ReadMultipleOf(const Json& value, Node* node) const {
    CAIRN_RETURN_IF_ERROR(ReadNumber(value, &node->multiple_of));
    if (CompareNumbers(value, Json(0)) <= 0) {
      return Malformed("expected a number greater than 0, got " + DumpJson(value));
    }
    return Status::Ok();
  }

  Status ReadCount(const Json& value, uint64_t* out) const {
    CAIRN_RETURN_IF_ERROR(Expect(value, value.is_number(), "a non-negative integer"));
    if (!IsIntegral(value) || CompareNumbers(value, Json(0)) < 0) {
      return Malformed("expected a non-negative integer, got " + DumpJson(value));
    }
    const std::optional<Int128> exact = ExactInteger(value);
    *out = exact ? static_cast<uint64_t>(*exact) : kUnbounded;  // beyond 2^64: no bound
    return Status::Ok();
  }

  Status ReadTypes(const Json& value, Node* node) {
    if (value.is_string()) return ReadTypeName(value, node);
    if (!value.is_array()) {
      return Malformed("expected a type name or an array of them, got " +
                       std::string(JsonTypeName(value)));
    }
    if (value.empty()) return Malformed("expected at least one type name");
    for (size_t i = 0; i < value.size(); ++i) {
      const PathScope scope(path_, {nullptr, i});
      CAIRN_RETURN_IF_ERROR(ReadTypeName(value[i], node));
    }
    return Status::Ok();
  }

  Status ReadTypeName(const Json& value, Node* node) const {
    CAIRN_RETURN_IF_ERROR(Expect(value, value.is_string(), "a type name"));
    const auto& name = value.get_ref<const std::string&>();
    const auto* found = std::find_if(std::begin(kTypeNames), std::end(kTypeNames),
                                     [&](const auto& entry) { return entry.first == name; });
    if (found == std::end(kTypeNames)) {
      return Malformed("unknown type " + DumpJson(value) +
                       " (expected null, boolean, object, array, number, string or integer)");
    }
    if (node->types & found->second) return Malformed("type " + name + " repeated");
    node->types |= found->second;
    return Status::Ok();
  }

  Status ReadRequired(const Json& value, Node* node) {
    CAIRN_RETURN_IF_ERROR(Expect(value, value.is_array(), "an array of property names"));
    std::vector<const std::string*> names;
    for (size_t i = 0; i < value.size(); ++i) {
      const PathScope scope(path_, {nullptr, i});
      CAIRN_RETURN_IF_ERROR(Expect(value[i], value[i].is_string(), "a string"));
      names.push_back(&value[i].get_ref<const std::string&>());
    }
    node->required = names;
    std::sort(names.begin(), names.end(), [](auto* a, auto* b) { return *a < *b; });
    const auto repeated =
        std::adjacent_find(names.begin(), names.end(), [](auto* a, auto* b) { return *a == *b; });
    if (repeated != names.end()) return Malformed(DumpJson(Json(**repeated)) + " repeated");
    return Status::Ok();
  }

  Status ReadPattern(const Json& value, Node* node) const {
    CAIRN_RETURN_IF_ERROR(Expect(value, value.is_string(), "a string"));
    Result<Pattern> pattern = CompilePattern(value.get<std::string>());
    if (!pattern.ok()) return Malformed(pattern.status().message());
    node->pattern = std::make_unique<const Pattern>(std::move(pattern).value());
    return Status::Ok();
  }

  Status CompileOne(const Json& value, uint32_t parent, const std::string& keyword, uint32_t* out) {
    CAIRN_ASSIGN_OR_RETURN(*out, CompileSchema(value, parent, &keyword, std::nullopt));
    return Status::Ok();
  }

  Status CompileSchemaArray(const Json& value, uint32_t parent, const std::string& keyword,
                            std::vector<uint32_t>* out) {
    CAIRN_RETURN_IF_ERROR(Expect(value, value.is_array(), "an array of schemas"));
    if (value.empty()) return Malformed("expected at least one schema");
    for (size_t i = 0; i < value.size(); ++i) {
      const Token member{nullptr, i};
      const PathScope scope(path_, member);
      CAIRN_ASSIGN_OR_RETURN(const uint32_t child,
                             CompileSchema(value[i], parent, &keyword, member));
      out->push_back(child);
    }
    return Status::Ok();
  }

  // properties, $defs, definitions: an object whose values are schemas. `out` may be null.
  Status CompileSchemaMap(const Json& value, uint32_t parent, const std::string* keyword,
                          std::vector<std::pair<const std::string*, uint32_t>>* out) {
    CAIRN_RETURN_IF_ERROR(Expect(value, value.is_object(), "an object of schemas"));
    for (auto it = value.begin(); it != value.end(); ++it) {
      const Token member{&it.key(), 0};
      const PathScope scope(path_, member);
      CAIRN_ASSIGN_OR_RETURN(const uint32_t child,
                             CompileSchema(it.value(), parent, keyword, member));
      if (out) out->emplace_back(&it.key(), child);
    }
    return Status::Ok();
  }

  Status ResolveRefs() {
    for (const PendingRef& ref : refs_) {
      path_ = impl_.Location(ref.node);
      path_.push_back({ref.keyword, 0});
      CAIRN_ASSIGN_OR_RETURN(impl_.nodes[ref.node].ref, Resolve(*ref.text));
    }
    path_.clear();
    return Status::Ok();
  }

  // "#" and "#/$defs/..." or "#/definitions/..." (a URI fragment holding a JSON pointer) to
  // the compiled subschema there.
  Result<uint32_t> Resolve(const std::string& text) const {
    const std::string quoted = DumpJson(Json(text));
    const std::string local_only =
        " is not supported (only local references \"#\", \"#/$defs/...\" and "
        "\"#/definitions/...\" are)";
    if (text.empty() || text[0] != '#') return Malformed(quoted + local_only);
    const std::optional<std::string> pointer = PercentDecode(std::string_view(text).substr(1));
    if (!pointer) return Malformed(quoted + ": bad percent-encoding");
    if (!pointer->empty() && (*pointer)[0] != '/') {
      return Malformed(quoted + " is not supported (anchors are not; use a JSON pointer)");
    }
    if (!pointer->empty() && !pointer->starts_with("/$defs/") &&
        !pointer->starts_with("/definitions/")) {
      return Malformed(quoted + local_only);
    }
    const std::optional<std::vector<std::string>> tokens = SplitPointer(*pointer);
    if (!tokens) return Malformed(quoted + ": '~' must be followed by 0 or 1");
    const uint32_t target = Lookup(*tokens);
    if (target == kNone) return Malformed(quoted + " does not point to a subschema of this schema");
    return target;
  }

  // The compiled subschema at `tokens` in the document, or kNone.
  uint32_t Lookup(const std::vector<std::string>& tokens) const {
    const Json* at = &impl_.document;
    for (const std::string& token : tokens) {
      if (at->is_object()) {
        const auto it = at->find(token);
        if (it == at->end()) return kNone;
        at = &*it;
      } else if (at->is_array()) {
        const bool digits = !token.empty() && token.size() <= 9 &&
                            token.find_first_not_of("0123456789") == std::string::npos &&
                            (token == "0" || token[0] != '0');
        if (!digits || std::stoul(token) >= at->size()) return kNone;
        at = &(*at)[std::stoul(token)];
      } else {
        return kNone;
      }
    }
    const auto it = node_of_.find(at);
    return it == node_of_.end() ? kNone : it->second;
  }

  // Refuses a cycle of subschemas applied in place (through $ref, allOf, anyOf, oneOf, not):
  // validating it would recurse forever on the same value.
  Status CheckCycles() {
    enum class Color : uint8_t { kWhite, kGray, kBlack };
    std::vector<Color> color(impl_.nodes.size(), Color::kWhite);
    struct Frame {
      uint32_t node;
      std::vector<uint32_t> next;
      size_t position = 0;
    };
    for (uint32_t start = 0; start < impl_.nodes.size(); ++start) {
      if (color[start] != Color::kWhite) continue;
      std::vector<Frame> stack{{start, impl_.nodes[start].InPlace()}};
      color[start] = Color::kGray;
      while (!stack.empty()) {
        Frame& top = stack.back();
        if (top.position == top.next.size()) {
          color[top.node] = Color::kBlack;
          stack.pop_back();
          continue;
        }
        const uint32_t next = top.next[top.position++];
        if (color[next] == Color::kGray) {
          path_ = impl_.Location(next);
          return Malformed("$ref cycle: this schema applies itself again (through " +
                           RenderPointer(impl_.Location(top.node)) +
                           ") without descending into the value");
        }
        if (color[next] == Color::kWhite) {
          color[next] = Color::kGray;
          stack.push_back({next, impl_.nodes[next].InPlace()});
        }
      }
    }
    return Status::Ok();
  }

  Impl& impl_;
  Dialect dialect_ = Dialect::kUnspecified;
  std::vector<Token> path_;
  std::unordered_map<const Json*, uint32_t> node_of_;
  std::vector<PendingRef> refs_;
};

// ---------------------------------------------------------------------------------------
// Validating

// How much a sink keeps of each violation. Branches of anyOf/oneOf/not only need pass or
// fail, so they run silent; the reasons shown for a failed anyOf are recomputed at kBrief
// (messages without reasons of their own), which keeps message work bounded.
enum class Detail : uint8_t { kSilent, kBrief, kFull };

// Violations, up to a cap.
struct Sink {
  Sink(size_t cap, Detail detail) : cap(cap), detail(detail) {}
  size_t cap;
  Detail detail;
  size_t count = 0;
  std::vector<std::string> messages;  // empty when silent
  bool full() const { return count >= cap; }
};

constexpr size_t kReasonsShown = 4;
constexpr size_t kReasonBytesMax = 160;

// One Validate call: walks the value and the compiled schema together, counting steps.
class Validator {
 public:
  explicit Validator(const Impl& impl)
      : impl_(impl),
        shown_max_(std::max<size_t>(impl.options.violations_max, 1)),
        top_(shown_max_ + 1, Detail::kFull),  // one more, to know that some were left out
        sink_(&top_) {}
  Validator(const Validator&) = delete;
  Validator& operator=(const Validator&) = delete;

  // One use.
  Status Run(const Json& value) {
    Eval(0, value);
    if (aborted_) return Status::InvalidArgument(abort_message_);
    if (top_.messages.empty()) return Status::Ok();
    std::string message;
    for (size_t i = 0; i < top_.messages.size() && i < shown_max_; ++i) {
      if (i > 0) message += "; ";
      message += top_.messages[i];
    }
    if (top_.messages.size() > shown_max_) message += "; ... (more violations not shown)";
    return Status::InvalidArgument(message);
  }

 private:
  // True if `value` is valid against nodes[index]; violations go to the current sink.
  bool Eval(uint32_t index, const Json& value) {
    const size_t before = sink_->count;
    if (!Charge(1)) return false;
    const Node& node = impl_.nodes[index];
    if (node.kind == Node::Kind::kTrue) return true;
    if (node.kind == Node::Kind::kFalse) {
      Fail([&] {
        return "not allowed (the schema at " + RenderPointer(impl_.Location(index)) + " is false)";
      });
      return false;
    }
    if (depth_ >= schema_eval_depth_max) {
      Abort("schema validation nested deeper than " + std::to_string(schema_eval_depth_max) +
            " subschemas");
      return false;
    }
    ++depth_;
    CheckAnyType(node, value);
    if (value.is_number()) {
      CheckNumber(node, value);
    } else if (value.is_string()) {
      CheckString(node, value);
    } else if (value.is_array()) {
      CheckArray(node, value);
    } else if (value.is_object()) {
      CheckObject(node, value);
    }
    CheckApplicators(node, value);
    --depth_;
    return !aborted_ && sink_->count == before;
  }

  static bool TypeMatches(uint8_t types, const Json& value) {
    switch (value.type()) {
      case Json::value_t::null:
        return types & kTypeNull;
      case Json::value_t::boolean:
        return types & kTypeBoolean;
      case Json::value_t::object:
        return types & kTypeObject;
      case Json::value_t::array:
        return types & kTypeArray;
      case Json::value_t::string:
        return types & kTypeString;
      case Json::value_t::number_integer:
      case Json::value_t::number_unsigned:
      case Json::value_t::number_float:
        return (types & kTypeNumber) || ((types & kTypeInteger) && IsIntegral(value));
      default:
        return false;
    }
  }

  void CheckAnyType(const Node& node, const Json& value) {
    if (node.types != 0 && !TypeMatches(node.types, value)) {
      Fail([&] { return "expected " + TypeNames(node.types) + ", got " + Describe(value); });
    }
    if (node.enum_values && !Stop()) {
      bool found = false;
      for (const Json& allowed : *node.enum_values) {
        found = Equal(value, allowed);
        if (found || aborted_) break;
      }
      if (!found) {
        Fail([&] {
          return Describe(value) + " is not one of enum " +
                 Truncate(DumpJson(*node.enum_values), kSchemaValuePreviewBytesMax);
        });
      }
    }
    if (node.const_value && !Stop() && !Equal(value, *node.const_value)) {
      Fail([&] {
        return Describe(value) + " is not equal to const " +
               Truncate(DumpJson(*node.const_value), kSchemaValuePreviewBytesMax);
      });
    }
  }

  void CheckNumber(const Node& node, const Json& value) {
    if (!node.HasNumberKeywords()) return;
    if (!IsFinite(value)) {
      Fail([] { return std::string("NaN or infinity is not a JSON number"); });
      return;
    }
    const auto check = [&](const Json* bound, bool violated, std::string_view rule) {
      if (bound && violated) {
        Fail([&] { return Preview(value) + std::string(rule) + DumpJson(*bound); });
      }
    };
    const auto compare = [&](const Json* bound) {
      return bound ? CompareNumbers(value, *bound) : 0;
    };
    check(node.minimum, compare(node.minimum) < 0, " is less than minimum ");
    check(node.maximum, compare(node.maximum) > 0, " is greater than maximum ");
    check(node.exclusive_minimum, compare(node.exclusive_minimum) <= 0,
          " is not greater than exclusiveMinimum ");
    check(node.exclusive_maximum, compare(node.exclusive_maximum) >= 0,
          " is not less than exclusiveMaximum ");
    check(node.multiple_of, node.multiple_of && !IsMultipleOf(value, *node.multiple_of),
          " is not a multiple of ");
  }

  void CheckString(const Node& node, const Json& value) {
    if (!node.HasStringKeywords()) return;
    const auto& text = value.get_ref<const std::string&>();
    if (!Charge(1 + text.size() / 256)) return;
    const uint64_t length = CountCodePoints(text);
    if (length < node.min_length) {
      Fail([&] {
        return Preview(value) + " has " + Count(length, "character", "characters") +
               ", fewer than minLength " + std::to_string(node.min_length);
      });
    }
    if (length > node.max_length) {
      Fail([&] {
        return Preview(value) + " has " + Count(length, "character", "characters") +
               ", more than maxLength " + std::to_string(node.max_length);
      });
    }
    if (node.pattern && !Stop()) CheckPattern(*node.pattern, value, length);
  }

  void CheckPattern(const Pattern& pattern, const Json& value, uint64_t length) {
    // The breadth-first matcher does about states x length work; a step is worth ~4 of it.
    if (!Charge(1 + SaturatingMultiply(length, pattern.states) / 4)) return;
    const std::wstring text = ToWide(value.get_ref<const std::string&>());
    bool matched = false;
    try {
      matched = std::regex_match(text, pattern.regex);
    } catch (const std::regex_error& e) {
      Abort("pattern " + DumpJson(Json(pattern.source)) + " failed: " + e.what());
      return;
    }
    if (!matched) {
      Fail([&] {
        return Preview(value) + " does not match pattern " + DumpJson(Json(pattern.source));
      });
    }
  }

  void CheckArray(const Node& node, const Json& value) {
    const size_t size = value.size();
    if (size < node.min_items) {
      Fail([&] {
        return "array has " + Count(size, "item", "items") + ", fewer than minItems " +
               std::to_string(node.min_items);
      });
    }
    if (size > node.max_items) {
      Fail([&] {
        return "array has " + Count(size, "item", "items") + ", more than maxItems " +
               std::to_string(node.max_items);
      });
    }
    if (node.unique_items && !Stop()) CheckUnique(value);
    for (size_t i = 0; i < size && !Stop(); ++i) {
      const bool in_prefix = i < node.prefix_items.size();
      if (!in_prefix && node.items == kNone) break;
      const PathScope scope(path_, {nullptr, i});
      Eval(in_prefix ? node.prefix_items[i] : node.items, value[i]);
    }
  }

  // Sorts canonical forms instead of comparing every pair: O(n log n), not O(n^2).
  void CheckUnique(const Json& array) {
    std::vector<std::pair<std::string, size_t>> keys;
    keys.reserve(array.size());
    for (size_t i = 0; i < array.size(); ++i) {
      std::string key;
      AppendCanonical(array[i], &key);
      if (aborted_) return;
      keys.emplace_back(std::move(key), i);
    }
    if (!Charge(keys.size())) return;
    std::sort(keys.begin(), keys.end());
    std::optional<std::pair<size_t, size_t>> duplicate;  // the one completed first
    for (size_t i = 1; i < keys.size(); ++i) {
      if (keys[i].first == keys[i - 1].first &&
          (!duplicate || keys[i].second < duplicate->second)) {
        duplicate = {keys[i - 1].second, keys[i].second};
      }
    }
    if (duplicate) {
      Fail([&] {
        return "items " + std::to_string(duplicate->first) + " and " +
               std::to_string(duplicate->second) + " are equal, but uniqueItems is true";
      });
    }
  }

  void CheckObject(const Node& node, const Json& value) {
    if (!Charge(node.required.size() + node.properties.size())) return;
    for (const std::string* name : node.required) {
      if (Stop()) return;
      if (!value.contains(*name)) {
        Fail([&] { return "missing required property " + DumpJson(Json(*name)); });
      }
    }
    const size_t size = value.size();
    if (size < node.min_properties) {
      Fail([&] {
        return "object has " + Count(size, "property", "properties") +
               ", fewer than minProperties " + std::to_string(node.min_properties);
      });
    }
    if (size > node.max_properties) {
      Fail([&] {
        return "object has " + Count(size, "property", "properties") +
               ", more than maxProperties " + std::to_string(node.max_properties);
      });
    }
    if (!node.properties.empty() || node.additional_properties != kNone) {
      CheckProperties(node, value);
    }
  }

  // Both lists are sorted by key (nlohmann objects are std::maps): one merged walk.
  void CheckProperties(const Node& node, const Json& value) {
    auto schema = node.properties.begin();
    for (auto it = value.begin(); it != value.end() && !Stop(); ++it) {
      const std::string& key = it.key();
      while (schema != node.properties.end() && *schema->first < key) ++schema;
      const bool named = schema != node.properties.end() && *schema->first == key;
      if (!named && node.additional_properties == kNone) continue;
      const PathScope scope(path_, {&key, 0});
      if (named) {
        Eval(schema->second, it.value());
      } else if (impl_.nodes[node.additional_properties].kind == Node::Kind::kFalse) {
        if (!Charge(1)) return;
        Fail([] {
          return std::string(
              "property not allowed (it is not in properties, and additionalProperties is "
              "false)");
        });
      } else {
        Eval(node.additional_properties, it.value());
      }
    }
  }

  void CheckApplicators(const Node& node, const Json& value) {
    if (node.ref != kNone && !Stop()) Eval(node.ref, value);
    for (uint32_t child : node.all_of) {
      if (Stop()) return;
      Eval(child, value);
    }
    if (!node.any_of.empty() && !Stop()) CheckAnyOf(node, value);
    if (!node.one_of.empty() && !Stop()) CheckOneOf(node, value);
    if (node.not_schema != kNone && !Stop() && Try(node.not_schema, value)) {
      Fail([] { return std::string("matches the schema in not, which it must not"); });
    }
  }

  void CheckAnyOf(const Node& node, const Json& value) {
    for (uint32_t child : node.any_of) {
      if (Try(child, value)) return;
      if (aborted_) return;
    }
    Fail([&] {
      return "matches none of the " + Count(node.any_of.size(), "schema", "schemas") + " in anyOf" +
             Reasons(node.any_of, value);
    });
  }

  void CheckOneOf(const Node& node, const Json& value) {
    std::optional<size_t> matched;
    for (size_t i = 0; i < node.one_of.size(); ++i) {
      const bool ok = Try(node.one_of[i], value);
      if (aborted_) return;
      if (!ok) continue;
      if (matched) {
        Fail([&] {
          return "matches more than one schema in oneOf (" + std::to_string(*matched) + " and " +
                 std::to_string(i) + "); exactly one must match";
        });
        return;
      }
      matched = i;
    }
    if (!matched) {
      Fail([&] {
        return "matches none of the " + Count(node.one_of.size(), "schema", "schemas") +
               " in oneOf" + Reasons(node.one_of, value);
      });
    }
  }

  // Evaluates a branch on its own, stopping at its first violation, which is kept in
  // `first` when `detail` is not silent.
  bool Try(uint32_t index, const Json& value, Detail detail = Detail::kSilent,
           std::string* first = nullptr) {
    Sink branch{1, detail};
    Sink* const outer = std::exchange(sink_, &branch);
    const bool ok = Eval(index, value);
    sink_ = outer;
    if (first && !branch.messages.empty()) *first = std::move(branch.messages.front());
    return ok;
  }

  // " ([0] expected string, got boolean true; [1] ...)": why the first branches failed, for
  // a message reported in full. The branches run again, at kBrief; a failure is reported at
  // most violations_max times, so this costs little.
  std::string Reasons(const std::vector<uint32_t>& branches, const Json& value) {
    if (sink_->detail != Detail::kFull) return "";
    const std::string here = RenderPointer(path_) + ": ";
    std::string out;
    for (size_t i = 0; i < branches.size() && i < kReasonsShown; ++i) {
      std::string reason;
      Try(branches[i], value, Detail::kBrief, &reason);
      if (aborted_) return "";
      std::string_view text = reason;
      if (text.starts_with(here)) text.remove_prefix(here.size());
      out += (i == 0 ? " ([" : "; [") + std::to_string(i) + "] " + Truncate(text, kReasonBytesMax);
    }
    if (branches.size() > kReasonsShown) out += "; ...";
    return out + ")";
  }

  // Equality by value (numbers exactly, 1 == 1.0), one step per node compared.
  bool Equal(const Json& a, const Json& b) {
    if (!Charge(1)) return false;
    if (a.is_number() && b.is_number()) {
      if (!IsFinite(a) || !IsFinite(b)) return a.get<double>() == b.get<double>();
      return CompareNumbers(a, b) == 0;
    }
    if (a.type() != b.type() || a.size() != b.size()) return false;
    if (a.is_array()) {
      for (size_t i = 0; i < a.size(); ++i) {
        if (!Equal(a[i], b[i])) return false;
      }
      return true;
    }
    if (a.is_object()) {
      for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y) {
        if (x.key() != y.key() || !Equal(x.value(), y.value())) return false;
      }
      return true;
    }
    return a == b;
  }

  // Text that is equal for values that Equal() calls equal, and only for those.
  void AppendCanonical(const Json& value, std::string* out) {
    if (!Charge(1)) return;
    if (value.is_array()) {
      *out += '[';
      for (const Json& item : value) {
        AppendCanonical(item, out);
        *out += ',';
      }
      *out += ']';
    } else if (value.is_object()) {
      *out += '{';
      for (auto it = value.begin(); it != value.end(); ++it) {
        *out += DumpJson(Json(it.key())) + ':';
        AppendCanonical(it.value(), out);
        *out += ',';
      }
      *out += '}';
    } else if (const std::optional<Int128> exact = ExactInteger(value)) {
      *out += Int128ToString(*exact);  // 1, 1.0 and -0.0 alike
    } else if (value.is_number_float() && !std::isfinite(value.get<double>())) {
      const double d = value.get<double>();
      *out += std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
    } else {
      *out += DumpJson(value);
    }
  }

  bool Stop() const { return aborted_ || sink_->full(); }

  bool Charge(uint64_t steps) {
    if (aborted_) return false;
    steps_ += steps;
    if (steps_ > impl_.options.steps_max) {
      Abort("schema validation exceeded " + std::to_string(impl_.options.steps_max) + " steps");
      return false;
    }
    return true;
  }

  // Records a violation at the current path; `make_message` runs only if it is kept.
  template <typename MakeMessage>
  void Fail(MakeMessage&& make_message) {
    Sink* const sink = sink_;
    if (sink->full()) return;
    ++sink->count;
    if (sink->detail == Detail::kSilent) return;
    std::string message = make_message();  // may evaluate branches (Reasons)
    sink->messages.push_back(RenderPointer(path_) + ": " + message);
  }

  void Abort(std::string message) {
    if (aborted_) return;
    aborted_ = true;
    abort_message_ = std::move(message) + " (at " + RenderPointer(path_) + ")";
  }

  const Impl& impl_;
  const size_t shown_max_;
  Sink top_;
  Sink* sink_;               // top_, or the sink of the branch being tried
  std::vector<Token> path_;  // in the value
  uint64_t steps_ = 0;
  size_t depth_ = 0;
  bool aborted_ = false;
  std::string abort_message_;
};

std::shared_ptr<const Impl> TrueSchema() {
  auto impl = std::make_shared<Impl>();
  impl->document = true;
  impl->nodes.emplace_back();  // Kind::kTrue
  return impl;
}

}  // namespace

Status CheckSchema(const Json& schema) { return CompiledSchema::Compile(schema).status(); }

CompiledSchema::CompiledSchema() : impl_(TrueSchema()) {}

CompiledSchema::CompiledSchema(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Result<CompiledSchema> CompiledSchema::Compile(const Json& schema, Options options) {
  // Before copying: copying and compiling recurse over the schema.
  if (JsonDepth(schema) > limits::json_depth_max) {
    return Status::InvalidArgument("schema nests deeper than " +
                                   std::to_string(limits::json_depth_max) + " levels");
  }
  auto impl = std::make_shared<Impl>();
  impl->document = schema;  // nodes point into this copy
  impl->options = options;
  Compiler compiler(*impl);
  CAIRN_RETURN_IF_ERROR(compiler.Run());
  return CompiledSchema(std::move(impl));
}

Status CompiledSchema::Validate(const Json& value) const {
  if (impl_->nodes.front().kind == Node::Kind::kTrue) return Status::Ok();
  // Equal() and AppendCanonical() recurse over the value.
  if (JsonDepth(value) > limits::json_depth_max) {
    return Status::InvalidArgument("value nests deeper than " +
                                   std::to_string(limits::json_depth_max) + " levels");
  }
  return Validator(*impl_).Run(value);
}

const Json& CompiledSchema::document() const { return impl_->document; }

}  // namespace cairn::engine
