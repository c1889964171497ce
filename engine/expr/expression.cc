#include "engine/expr/expression.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

extern "C" {
#include <jq.h>
#include <jv.h>
#include <oniguruma.h>
}

#include "base/limits.h"

namespace cairn::engine {
namespace {

// Compiled programs an Evaluator keeps. Each is a jq_state holding the bytecode of the
// builtins it uses (about 8 KiB for a short expression); a miss costs a compile (~40 ms:
// libjq 1.6 re-parses its builtin library every time).
constexpr size_t programs_cached_max = 256;
// Conversions of inputs and variables to jq values an Evaluator keeps (ConversionCache):
// entries, their nodes (values and keys) in all, and the fewest nodes worth keeping.
// 64 Ki nodes of jq values are a few MiB.
constexpr size_t conversions_cached_max = 8;
constexpr size_t conversion_cache_nodes_max = size_t{1} << 16;
constexpr size_t conversion_cached_nodes_min = 32;
// How much of an expression, or of a value given to jq's error(), a message quotes.
constexpr size_t quoted_expression_bytes_max = 160;
constexpr size_t quoted_error_bytes_max = 1024;
// Integral doubles up to this magnitude are exact, and come back as JSON integers.
constexpr double exact_integer_max = 9007199254740992.0;  // 2^53

constexpr std::string_view kDeterminism =
    "runtime expressions must be deterministic, so that replaying a run gives the same values";

// ---------------------------------------------------------------------------------------
// Text helpers.

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

std::string_view Trim(std::string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && IsSpace(text[begin])) ++begin;
  while (end > begin && IsSpace(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

// At most `bytes_max` bytes of `text`, cut on a UTF-8 character boundary, "..." if cut.
std::string Truncate(std::string_view text, size_t bytes_max) {
  if (text.size() <= bytes_max) return std::string(text);
  size_t cut = bytes_max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

// "jq expression `<text, on one line, truncated>`: <what>".
Status ExpressionError(std::string_view jq_text, std::string_view what) {
  std::string quoted = Truncate(Trim(jq_text), quoted_expression_bytes_max);
  std::replace_if(
      quoted.begin(), quoted.end(), [](char c) { return IsSpace(c); }, ' ');
  return Status::InvalidArgument("jq expression `" + quoted + "`: " + std::string(what));
}

// ---------------------------------------------------------------------------------------
// Refused builtins.

struct RefusedName {
  std::string_view name;    // as written in jq
  std::string_view reason;  // "which <reason>"
  std::string_view shadow;  // definitions that make it an error at run time; empty: none needed
};

// Every builtin of jq 1.6 whose value depends on something other than its arguments
// (clock, time zone, environment, files, stdin, the installation) or that acts outside
// the program (writes to stderr, halts). gmtime, mktime (timegm), todate and fromdate are
// pure and allowed; strftime/strptime are allowed but refuse, at run time, the
// conversions that read the host's time zone (see TimeFormatGuard).
constexpr RefusedName kRefusedNames[] = {
    {"now", "reads the clock", "now"},
    {"localtime", "uses the host's time zone", "localtime"},
    {"strflocaltime", "uses the host's time zone", "strflocaltime($f)"},
    {"env", "reads the process environment", "env"},
    {"$ENV", "reads the process environment", ""},
    {"input", "reads further inputs", "input"},
    {"inputs", "reads further inputs", "inputs"},
    {"_input", "reads further inputs", "_input"},
    {"input_filename", "reads the name of an input file", "input_filename"},
    {"input_line_number", "reads the position in an input file", "input_line_number"},
    {"halt", "stops the program without a value", "halt"},
    {"halt_error", "stops the program without a value", "halt_error;halt_error($code)"},
    {"debug", "writes to stderr", "debug"},
    {"stderr", "writes to stderr", "stderr"},
    {"get_search_list", "reads the module search path", "get_search_list"},
    {"modulemeta", "reads module files", "modulemeta"},
    {"get_jq_origin", "reads where jq is installed", "get_jq_origin"},
    {"get_prog_origin", "reads where the program was loaded from", "get_prog_origin"},
    {"import", "loads files", ""},
    {"include", "loads files", ""},
};

// Our own names in the wrapper; an expression may not use them.
constexpr std::string_view kReservedPrefix = "__cairn";

// jq 1.6 keywords: not usable as variable names.
constexpr std::string_view kKeywords[] = {
    "__loc__", "and",    "as",      "catch", "def",    "elif", "else",   "end",  "foreach",
    "if",      "import", "include", "label", "module", "or",   "reduce", "then", "try"};

std::string RefusalMessage(std::string_view name, std::string_view reason) {
  return "uses `" + std::string(name) + "`, which " + std::string(reason) + "; " +
         std::string(kDeterminism);
}

// strftime: %Z prints the host's zone name and %s converts through the local time zone
// (glibc); strptime: %s converts through localtime_r. A format holding them is refused at
// run time ("%%" is a literal percent sign). Other conversions follow LC_TIME, which cairn
// never changes from the C library's default "C" locale.
std::string TimeFormatGuard(std::string_view name, std::string_view conversions,
                            std::string_view which) {
  return "def __cairn_" + std::string(name) + "($f): " + std::string(name) + "($f); def " +
         std::string(name) + "($f): if ($f | type) == \"string\" and ($f | gsub(\"%%\"; \"\") | " +
         "test(\"%[-_0^#]*[0-9]*[EO]?[" + std::string(conversions) + "]\")) then error(\"" +
         std::string(name) + " format \\($f | tojson) uses " + std::string(which) +
         ", which go through the host's time zone; " + std::string(kDeterminism) +
         "\") else __cairn_" + std::string(name) + "($f) end; ";
}

// The definitions put before every expression: each refused builtin becomes an error
// (defence in depth behind the scan), and the time-format guards. One line, so that the
// user's first line keeps line number 1 in jq's messages.
std::string BuildPrelude() {
  std::string prelude;
  for (const RefusedName& refused : kRefusedNames) {
    std::string_view shadows = refused.shadow;
    while (!shadows.empty()) {
      size_t end = std::min(shadows.find(';'), shadows.size());
      prelude += "def " + std::string(shadows.substr(0, end)) + ": error(\"" +
                 RefusalMessage(refused.name, refused.reason) + "\"); ";
      shadows.remove_prefix(std::min(end + 1, shadows.size()));
    }
  }
  prelude += TimeFormatGuard("strftime", "Zs", "%Z or %s");
  prelude += TimeFormatGuard("strptime", "s", "%s");
  return prelude;
}

const std::string& Prelude() {
  static const std::string prelude = BuildPrelude();
  return prelude;
}

// ---------------------------------------------------------------------------------------
// The scan: a lexer-level pass over the expression that finds refused names, skipping
// string literals (but not the code in their \( ) interpolations), comments, field
// accesses (.now), formats (@base64), variables other than $ENV, object keys ({now: 1},
// {now}) and the name after `def`.

struct Finding {
  std::string message;
  size_t offset;
};

struct Frame {
  char open;    // '(', '[', '{', or '"' for the code of a string interpolation
  bool at_key;  // in '{': the next term is a key
};

class RefusalScan {
 public:
  explicit RefusalScan(std::string_view text) : text_(text) {}
  std::optional<Finding> Run();

 private:
  size_t SkipBlank(size_t i) const;
  size_t SkipStringBody(size_t i);
  size_t IdentEnd(size_t i) const;
  size_t NumberEnd(size_t i) const;
  bool AtKey() const {
    return !frames_.empty() && frames_.back().open == '{' && frames_.back().at_key;
  }
  std::optional<Finding> Word(size_t begin, size_t end);
  std::optional<Finding> Variable(size_t begin, size_t end);
  void Punctuation(char c);

  std::string_view text_;
  std::vector<Frame> frames_;
  bool def_name_next_ = false;
};

size_t RefusalScan::SkipBlank(size_t i) const {
  while (i < text_.size()) {
    if (text_[i] == '#') {
      while (i < text_.size() && text_[i] != '\n') ++i;
    } else if (IsSpace(text_[i])) {
      ++i;
    } else {
      break;
    }
  }
  return i;
}

// From inside a string literal: past its closing quote, or past a "\(" (pushing a frame).
size_t RefusalScan::SkipStringBody(size_t i) {
  while (i < text_.size()) {
    if (text_[i] == '"') return i + 1;
    if (text_[i] == '\\' && i + 1 < text_.size()) {
      if (text_[i + 1] == '(') {
        frames_.push_back({'"', false});
        return i + 2;
      }
      i += 2;
      continue;
    }
    ++i;
  }
  return i;
}

// jq 1.6 IDENT: ([a-zA-Z_][a-zA-Z_0-9]*::)*[a-zA-Z_][a-zA-Z_0-9]*
size_t RefusalScan::IdentEnd(size_t i) const {
  while (true) {
    while (i < text_.size() && IsIdentChar(text_[i])) ++i;
    if (i + 2 < text_.size() && text_[i] == ':' && text_[i + 1] == ':' &&
        IsIdentStart(text_[i + 2])) {
      i += 2;
      continue;
    }
    return i;
  }
}

// jq 1.6 NUMBER: ([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?, so in `1else` or `1env`
// the letters start a word.
size_t RefusalScan::NumberEnd(size_t i) const {
  while (i < text_.size() && IsDigit(text_[i])) ++i;
  if (i < text_.size() && text_[i] == '.') ++i;
  while (i < text_.size() && IsDigit(text_[i])) ++i;
  if (i < text_.size() && (text_[i] == 'e' || text_[i] == 'E')) {
    size_t digits = i + 1;
    if (digits < text_.size() && (text_[digits] == '+' || text_[digits] == '-')) ++digits;
    if (digits < text_.size() && IsDigit(text_[digits])) {
      i = digits;
      while (i < text_.size() && IsDigit(text_[i])) ++i;
    }
  }
  return i;
}

std::optional<Finding> RefusalScan::Word(size_t begin, size_t end) {
  std::string_view word = text_.substr(begin, end - begin);
  if (AtKey()) {
    size_t next = SkipBlank(end);
    if (next < text_.size() && (text_[next] == ':' || text_[next] == ',' || text_[next] == '}')) {
      return std::nullopt;  // {word: ...} or {word}: a key (the latter reads .word)
    }
  }
  if (def_name_next_) {
    def_name_next_ = false;
    return std::nullopt;
  }
  if (word == "def") {
    def_name_next_ = true;
    return std::nullopt;
  }
  if (word.starts_with(kReservedPrefix)) {
    return Finding{"uses `" + std::string(word) + "`: names starting with `" +
                       std::string(kReservedPrefix) + "` are reserved for cairn",
                   begin};
  }
  for (const RefusedName& refused : kRefusedNames) {
    if (refused.name == word) return Finding{RefusalMessage(word, refused.reason), begin};
  }
  return std::nullopt;
}

std::optional<Finding> RefusalScan::Variable(size_t begin, size_t end) {
  std::string_view name = text_.substr(begin, end - begin);
  if (name == "ENV") {
    return Finding{RefusalMessage("$ENV", "reads the process environment"), begin};
  }
  if (name.starts_with(kReservedPrefix)) {
    return Finding{"uses `$" + std::string(name) + "`: names starting with `" +
                       std::string(kReservedPrefix) + "` are reserved for cairn",
                   begin};
  }
  return std::nullopt;
}

void RefusalScan::Punctuation(char c) {
  switch (c) {
    case '(':
    case '[':
      frames_.push_back({c, false});
      break;
    case '{':
      frames_.push_back({c, true});
      break;
    case ')':
    case ']':
    case '}':
      if (!frames_.empty() && frames_.back().open != '"') frames_.pop_back();
      break;
    case ':':
      if (AtKey()) frames_.back().at_key = false;
      break;
    case ',':
      if (!frames_.empty() && frames_.back().open == '{') frames_.back().at_key = true;
      break;
    default:
      break;
  }
}

std::optional<Finding> RefusalScan::Run() {
  size_t i = 0;
  while (i < text_.size()) {
    const char c = text_[i];
    const char next = i + 1 < text_.size() ? text_[i + 1] : '\0';
    if (c == '#' || IsSpace(c)) {
      i = SkipBlank(i);
    } else if (c == '"') {
      i = SkipStringBody(i + 1);
    } else if (c == ')' && !frames_.empty() && frames_.back().open == '"') {
      frames_.pop_back();  // the end of a \( ) interpolation: back inside the string
      i = SkipStringBody(i + 1);
    } else if (c == '.' && IsIdentStart(next)) {
      i += 1;  // .name is a field (jq 1.6 FIELD is "."[a-zA-Z_][a-zA-Z_0-9]*, no "::")
      while (i < text_.size() && IsIdentChar(text_[i])) ++i;
    } else if (c == '.' && next == '.') {
      i += 2;  // "..": what follows is not a field
    } else if (c == '@' && IsIdentStart(next)) {
      i = IdentEnd(i + 1);
    } else if (c == '$') {
      size_t begin = SkipBlank(i + 1);
      size_t end = IdentEnd(begin);
      if (auto finding = Variable(begin, end)) return finding;
      i = std::max(end, i + 1);
    } else if (IsDigit(c) || (c == '.' && IsDigit(next))) {
      i = NumberEnd(i);
    } else if (IsIdentStart(c)) {
      size_t end = IdentEnd(i);
      if (auto finding = Word(i, end)) return finding;
      i = end;
    } else {
      Punctuation(c);
      ++i;
    }
  }
  return std::nullopt;
}

// Size, emptiness, NUL bytes and refused names: everything checked before jq sees the text.
Status CheckText(std::string_view jq_text) {
  if (jq_text.size() > limits::expression_bytes_max) {
    return ExpressionError(jq_text, std::to_string(jq_text.size()) +
                                        " bytes is more than the limit of " +
                                        std::to_string(limits::expression_bytes_max));
  }
  if (jq_text.find('\0') != std::string_view::npos) {
    return ExpressionError(jq_text, "contains a NUL byte");
  }
  if (Trim(jq_text).empty()) return ExpressionError(jq_text, "is empty");
  if (auto finding = RefusalScan(jq_text).Run()) {
    size_t line = 1 + std::count(jq_text.begin(), jq_text.begin() + finding->offset, '\n');
    return ExpressionError(jq_text, finding->message + " (line " + std::to_string(line) + ")");
  }
  return Status::Ok();
}

Status CheckVariableNames(const std::vector<std::string_view>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    std::string_view name = names[i];
    std::string quoted = "variable `$" + std::string(name) + "`";
    if (name.empty() || !IsIdentStart(name[0]) ||
        !std::all_of(name.begin(), name.end(), IsIdentChar)) {
      return Status::InvalidArgument(
          quoted + ": not a jq name (letters, digits and '_', not starting with a digit)");
    }
    if (std::find(std::begin(kKeywords), std::end(kKeywords), name) != std::end(kKeywords)) {
      return Status::InvalidArgument(quoted + ": a jq keyword cannot name a variable");
    }
    if (name == "ENV" || name.starts_with(kReservedPrefix)) {
      return Status::InvalidArgument(quoted + ": reserved (`$ENV` is refused in expressions; `" +
                                     std::string(kReservedPrefix) + "...` is cairn's)");
    }
    const auto earlier_end = names.begin() + static_cast<std::ptrdiff_t>(i);
    if (std::find(names.begin(), earlier_end, name) != earlier_end) {
      return Status::InvalidArgument(quoted + ": given twice");
    }
  }
  return Status::Ok();
}

// libjq 1.6 imports $HOME/.jq into every program it compiles (linker.c, load_program), and
// its definitions override builtins: an expression's value would depend on the host. It
// skips a directory, and cannot be told not to look, so cairn refuses to compile instead.
Status CheckNoHomeJqFile() {
  std::string home;
  if (const char* env_home = std::getenv("HOME")) {
    home = env_home;
  } else {
    passwd entry{};
    passwd* found = nullptr;
    char buffer[4096];
    if (getpwuid_r(getuid(), &entry, buffer, sizeof(buffer), &found) != 0 || found == nullptr) {
      return Status::Ok();  // jq ignores an unknown home too
    }
    home = found->pw_dir;
  }
  std::string path = home + "/.jq";
  struct stat info {};
  if (stat(path.c_str(), &info) != 0 || S_ISDIR(info.st_mode)) return Status::Ok();
  return Status::FailedPrecondition(
      "libjq 1.6 would load " + path +
      " into every expression, making results depend on this host; remove it or run the "
      "engine with HOME set to a directory without a .jq file");
}

// ---------------------------------------------------------------------------------------
// JSON <-> jv. Every function that takes a jv consumes it, as libjq's own do.

// `value` (consumed) as message text: a string as is, null or invalid as "", another
// value as compact JSON.
std::string TakeText(jv value) {
  std::string text;
  const jv_kind kind = jv_get_kind(value);
  if (kind == JV_KIND_STRING) {
    text.assign(jv_string_value(value), jv_string_length_bytes(jv_copy(value)));
  } else if (kind != JV_KIND_NULL && kind != JV_KIND_INVALID) {
    jv dumped = jv_dump_string(jv_copy(value), 0);
    text = jv_string_value(dumped);
    jv_free(dumped);
  }
  jv_free(value);
  return text;
}

// The message of an invalid jv (consumed).
std::string TakeInvalidMessage(jv invalid) { return TakeText(jv_invalid_get_msg(invalid)); }

jv JsonToJv(const Json& value, size_t depth, size_t& nodes);

jv StringToJv(const std::string& text) {
  if (text.size() > static_cast<size_t>(INT_MAX)) {
    return jv_invalid_with_msg(jv_string("holds a string larger than 2 GiB"));
  }
  // jv_string_sized replaces invalid UTF-8 with U+FFFD, as DumpJson does.
  return jv_string_sized(text.data(), static_cast<int>(text.size()));
}

jv ArrayToJv(const Json& value, size_t depth, size_t& nodes) {
  jv out = jv_array_sized(static_cast<int>(std::min<size_t>(value.size(), INT_MAX)));
  for (const Json& element : value.get_ref<const Json::array_t&>()) {
    jv converted = JsonToJv(element, depth + 1, nodes);
    if (!jv_is_valid(converted)) {
      jv_free(out);
      return converted;
    }
    out = jv_array_append(out, converted);
  }
  return out;
}

jv ObjectToJv(const Json& value, size_t depth, size_t& nodes) {
  jv out = jv_object();
  for (const auto& [key, member] : value.get_ref<const Json::object_t&>()) {
    jv converted = JsonToJv(member, depth + 1, nodes);
    jv name = StringToJv(key);
    ++nodes;
    if (!jv_is_valid(converted) || !jv_is_valid(name)) {
      jv_free(out);
      if (jv_is_valid(converted)) std::swap(converted, name);
      jv_free(name);
      return converted;
    }
    out = jv_object_set(out, name, converted);
  }
  return out;
}

// An invalid jv with a message ("nests deeper than ...") when `value` cannot go to jq.
// Integers beyond +-2^53 lose precision: jq 1.6 numbers are doubles. Adds the values and
// keys it converts to `nodes`. Objects are built in key order (std::map's), so their
// members iterate in that order in jq (keys_unsorted, tojson, .[]).
jv JsonToJv(const Json& value, size_t depth, size_t& nodes) {
  if (depth > limits::json_depth_max) {
    return jv_invalid_with_msg(
        jv_string_fmt("nests deeper than %zu levels", limits::json_depth_max));
  }
  ++nodes;
  switch (value.type()) {
    case Json::value_t::null:
      return jv_null();
    case Json::value_t::boolean:
      return jv_bool(value.get<bool>());
    case Json::value_t::number_integer:
      return jv_number(static_cast<double>(value.get<int64_t>()));
    case Json::value_t::number_unsigned:
      return jv_number(static_cast<double>(value.get<uint64_t>()));
    case Json::value_t::number_float:
      return jv_number(value.get<double>());
    case Json::value_t::string:
      return StringToJv(value.get_ref<const std::string&>());
    case Json::value_t::array:
      return ArrayToJv(value, depth, nodes);
    case Json::value_t::object:
      return ObjectToJv(value, depth, nodes);
    default:
      return jv_invalid_with_msg(jv_string("holds a binary or discarded value"));
  }
}

// The number JsonToJv makes of `value` (a number).
double JvNumberOf(const Json& value) {
  switch (value.type()) {
    case Json::value_t::number_integer:
      return static_cast<double>(value.get<int64_t>());
    case Json::value_t::number_unsigned:
      return static_cast<double>(value.get<uint64_t>());
    default:
      return value.get<double>();
  }
}

// Whether JsonToJv makes exactly the same jq value of `a` and `b`: numbers that become the
// same double, bit for bit (-0 is not 0, NaN matches its own bits; Json's own == would
// call 1u and -1 or 0.0 and -0.0 equal), strings with the same bytes, arrays element by
// element and objects member by member in order (so the jq objects iterate alike).
// Allocates nothing; recurses as deep as the shallower value.
bool SameForJq(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) {
    return std::bit_cast<uint64_t>(JvNumberOf(a)) == std::bit_cast<uint64_t>(JvNumberOf(b));
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::null:
      return true;
    case Json::value_t::boolean:
      return a.get<bool>() == b.get<bool>();
    case Json::value_t::string:
      return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case Json::value_t::array: {
      const auto& left = a.get_ref<const Json::array_t&>();
      const auto& right = b.get_ref<const Json::array_t&>();
      if (left.size() != right.size()) return false;
      for (size_t i = 0; i < left.size(); ++i) {
        if (!SameForJq(left[i], right[i])) return false;
      }
      return true;
    }
    case Json::value_t::object: {
      const auto& left = a.get_ref<const Json::object_t&>();
      const auto& right = b.get_ref<const Json::object_t&>();
      if (left.size() != right.size()) return false;
      for (auto l = left.begin(), r = right.begin(); l != left.end(); ++l, ++r) {
        if (l->first != r->first || !SameForJq(l->second, r->second)) return false;
      }
      return true;
    }
    default:
      return false;  // binary, discarded: never converted
  }
}

// The jq values of recently converted inputs and variables, kept across evaluations: the
// same run data (`.`, $input) reaches many expressions, and building a jq value costs
// several times more than copying the Json and far more than comparing it. An entry is
// found by comparing the value with a copy of the Json it was made from (SameForJq), never
// by address or hash, so a value changed in place cannot meet a stale conversion. Bounded:
// conversions_cached_max entries, conversion_cache_nodes_max nodes in all; values of fewer
// than conversion_cached_nodes_min nodes are converted every time. Not thread-safe; one
// per Evaluator.
class ConversionCache {
 public:
  ConversionCache() = default;
  ~ConversionCache() { Clear(); }
  ConversionCache(const ConversionCache&) = delete;
  ConversionCache& operator=(const ConversionCache&) = delete;

  // JsonToJv(value, 1), owned by the caller: a cached conversion (its entry moved to the
  // front) or a new one, cached if it is large enough to be worth it and fits the bound.
  jv Convert(const Json& value) {
    if (value.is_structured()) {
      for (size_t i = 0; i < entries_.size(); ++i) {
        if (!SameForJq(value, entries_[i].json)) continue;
        std::rotate(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(i),
                    entries_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        ++hits_;
        return jv_copy(entries_.front().value);
      }
    }
    size_t nodes = 0;
    jv converted = JsonToJv(value, 1, nodes);
    if (jv_is_valid(converted) && nodes >= conversion_cached_nodes_min &&
        nodes <= conversion_cache_nodes_max) {
      Insert(value, jv_copy(converted), nodes);
    }
    return converted;
  }
  void Clear() {
    for (Entry& entry : entries_) jv_free(entry.value);
    entries_.clear();
    nodes_ = 0;
  }
  size_t size() const { return entries_.size(); }
  size_t nodes() const { return nodes_; }
  uint64_t hits() const { return hits_; }

 private:
  struct Entry {
    Json json;  // what `value` was made from
    jv value;
    size_t nodes;
  };
  // Puts (json, value) first (`value` consumed), dropping the least recently used entries
  // over the bounds.
  void Insert(const Json& json, jv value, size_t nodes) {
    while (!entries_.empty() && (entries_.size() >= conversions_cached_max ||
                                 nodes_ + nodes > conversion_cache_nodes_max)) {
      nodes_ -= entries_.back().nodes;
      jv_free(entries_.back().value);
      entries_.pop_back();
    }
    entries_.insert(entries_.begin(), Entry{json, value, nodes});
    nodes_ += nodes;
  }

  std::vector<Entry> entries_;  // most recently used first
  size_t nodes_ = 0;
  uint64_t hits_ = 0;
};

// What JsonToJv(value, depth) would report for `value`, without building anything: the
// same checks in the same order, so that a variable the program does not bind fails (or
// passes) exactly as it would if it were converted. nullopt: it converts.
std::optional<std::string> ConversionError(const Json& value, size_t depth) {
  if (depth > limits::json_depth_max) {
    return "nests deeper than " + std::to_string(limits::json_depth_max) + " levels";
  }
  switch (value.type()) {
    case Json::value_t::string:
      if (value.get_ref<const std::string&>().size() > static_cast<size_t>(INT_MAX)) {
        return std::string("holds a string larger than 2 GiB");
      }
      return std::nullopt;
    case Json::value_t::array:
      for (const Json& element : value.get_ref<const Json::array_t&>()) {
        if (auto error = ConversionError(element, depth + 1)) return error;
      }
      return std::nullopt;
    case Json::value_t::object:
      for (const auto& [key, member] : value.get_ref<const Json::object_t&>()) {
        if (auto error = ConversionError(member, depth + 1)) return error;
        if (key.size() > static_cast<size_t>(INT_MAX)) {
          return std::string("holds a string larger than 2 GiB");
        }
      }
      return std::nullopt;
    case Json::value_t::binary:
    case Json::value_t::discarded:
      return std::string("holds a binary or discarded value");
    default:
      return std::nullopt;
  }
}

// !ConversionError(value, depth), without building a message.
bool FitsJq(const Json& value, size_t depth) {
  if (depth > limits::json_depth_max) return false;
  switch (value.type()) {
    case Json::value_t::string:
      return value.get_ref<const std::string&>().size() <= static_cast<size_t>(INT_MAX);
    case Json::value_t::array:
      for (const Json& element : value.get_ref<const Json::array_t&>()) {
        if (!FitsJq(element, depth + 1)) return false;
      }
      return true;
    case Json::value_t::object:
      for (const auto& [key, member] : value.get_ref<const Json::object_t&>()) {
        if (key.size() > static_cast<size_t>(INT_MAX) || !FitsJq(member, depth + 1)) return false;
      }
      return true;
    case Json::value_t::binary:
    case Json::value_t::discarded:
      return false;
    default:
      return true;
  }
}

// Bytes `text` takes in compact JSON as DumpJson writes it (UTF-8 kept, controls escaped).
size_t DumpedStringBytes(std::string_view text) {
  size_t bytes = 2;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      bytes += 2;
    } else if (byte < 0x20) {
      bytes += 6;
    } else {
      bytes += 1;
    }
  }
  return bytes;
}

template <typename Number>
size_t DumpedNumberBytes(Number number) {
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), number);
  return error == std::errc() ? static_cast<size_t>(end - buffer) : sizeof(buffer);
}

// Converts jq's result to Json, counting its compact JSON size as it goes so that an
// oversized result stops the conversion early. Not reusable: one per result.
class ResultReader {
 public:
  // Consumes `value`. False with error() set if the result nests too deep, is too large,
  // or holds an infinite number.
  bool Read(jv value, size_t depth, Json& out);
  // What Read gives for JsonToJv(value): the same normalisation (numbers through doubles)
  // and the same bounds, for a value jq would hand back as it was given (a path program's
  // result). False when Read would fail, or when `value` holds a string or key that is not
  // ASCII (JsonToJv replaces invalid UTF-8, which this reader does not judge): the caller
  // then runs jq.
  bool ReadJson(const Json& value, size_t depth, Json& out);
  // What ReadJson(merged, 1, out) gives for `merged`: `base` (an object; anything else
  // counts as an empty one) with `set` (key, value) put over it in order (a later
  // duplicate wins), without building `merged` first: the same members in the same key
  // order, so the same counts in the same order.
  bool ReadMerge(const Json& base, std::vector<std::pair<const std::string*, const Json*>> set,
                 Json& out);
  const std::string& error() const { return error_; }

 private:
  bool Number(double number, Json& out);
  bool Array(jv value, size_t depth, Json& out);
  bool Object(jv value, size_t depth, Json& out);
  bool Count(size_t bytes);

  size_t bytes_ = 0;
  std::string error_;
};

bool ResultReader::Count(size_t bytes) {
  bytes_ += bytes;
  if (bytes_ <= limits::run_data_bytes_max) return true;
  error_ = "result is larger than " + std::to_string(limits::run_data_bytes_max) +
           " bytes of JSON (limits::run_data_bytes_max)";
  return false;
}

// NaN becomes null, as jq itself prints it; an infinity is refused (jq would print
// +-1.797e308, a value nobody wrote); integral values within +-2^53 become integers.
bool ResultReader::Number(double number, Json& out) {
  if (std::isnan(number)) {
    out = nullptr;
    return Count(4);
  }
  if (std::isinf(number)) {
    error_ = "result holds an infinite number (`infinite` or an overflow), which JSON cannot hold";
    return false;
  }
  if (std::trunc(number) == number && std::fabs(number) <= exact_integer_max) {
    auto integer = static_cast<int64_t>(number);
    out = integer;
    return Count(DumpedNumberBytes(integer));
  }
  out = number;
  return Count(DumpedNumberBytes(number));
}

bool ResultReader::Array(jv value, size_t depth, Json& out) {
  const int length = jv_array_length(jv_copy(value));
  // Brackets and commas first: a huge array fails here, before anything is reserved.
  if (!Count(2 + static_cast<size_t>(std::max(length - 1, 0)))) {
    jv_free(value);
    return false;
  }
  out = Json::array();
  auto& elements = out.get_ref<Json::array_t&>();
  elements.reserve(static_cast<size_t>(length));
  for (int i = 0; i < length; ++i) {
    Json element;
    if (!Read(jv_array_get(jv_copy(value), i), depth + 1, element)) {
      jv_free(value);
      return false;
    }
    elements.push_back(std::move(element));
  }
  jv_free(value);
  return true;
}

bool ResultReader::Object(jv value, size_t depth, Json& out) {
  out = Json::object();
  auto& members = out.get_ref<Json::object_t&>();
  bool ok = Count(2);
  for (int it = jv_object_iter(value); ok && jv_object_iter_valid(value, it);
       it = jv_object_iter_next(value, it)) {
    jv key = jv_object_iter_key(value, it);
    std::string name(jv_string_value(key), jv_string_length_bytes(jv_copy(key)));
    jv_free(key);
    jv member = jv_object_iter_value(value, it);
    Json converted;
    if (!Count(DumpedStringBytes(name) + (members.empty() ? 1 : 2))) {
      jv_free(member);
      ok = false;
    } else if ((ok = Read(member, depth + 1, converted))) {
      members.emplace(std::move(name), std::move(converted));
    }
  }
  jv_free(value);
  return ok;
}

bool ResultReader::Read(jv value, size_t depth, Json& out) {
  if (depth > limits::json_depth_max) {
    jv_free(value);
    error_ = "result nests deeper than " + std::to_string(limits::json_depth_max) + " levels";
    return false;
  }
  switch (jv_get_kind(value)) {
    case JV_KIND_NULL:
      out = nullptr;
      return Count(4);
    case JV_KIND_TRUE:
      out = true;
      return Count(4);
    case JV_KIND_FALSE:
      out = false;
      return Count(5);
    case JV_KIND_NUMBER: {
      double number = jv_number_value(value);
      jv_free(value);
      return Number(number, out);
    }
    case JV_KIND_STRING: {
      std::string text(jv_string_value(value), jv_string_length_bytes(jv_copy(value)));
      jv_free(value);
      bool ok = Count(DumpedStringBytes(text));
      out = std::move(text);
      return ok;
    }
    case JV_KIND_ARRAY:
      return Array(value, depth, out);
    case JV_KIND_OBJECT:
      return Object(value, depth, out);
    default:
      jv_free(value);
      error_ = "jq produced an invalid value";
      return false;
  }
}

bool IsAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Mirrors Read, member for member: the counts come in the same order, so a result is
// refused at the same point.
bool ResultReader::ReadJson(const Json& value, size_t depth, Json& out) {
  if (depth > limits::json_depth_max) return false;
  switch (value.type()) {
    case Json::value_t::null:
      out = nullptr;
      return Count(4);
    case Json::value_t::boolean: {
      const bool b = value.get<bool>();
      out = b;
      return Count(b ? 4 : 5);
    }
    case Json::value_t::number_integer:
      return Number(static_cast<double>(value.get<int64_t>()), out);
    case Json::value_t::number_unsigned:
      return Number(static_cast<double>(value.get<uint64_t>()), out);
    case Json::value_t::number_float:
      return Number(value.get<double>(), out);
    case Json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (!IsAscii(text)) return false;
      out = text;
      return Count(DumpedStringBytes(text));
    }
    case Json::value_t::array: {
      const size_t length = value.size();
      if (!Count(2 + (length == 0 ? 0 : length - 1))) return false;
      out = Json::array();
      auto& elements = out.get_ref<Json::array_t&>();
      elements.reserve(length);
      for (const Json& element : value) {
        Json converted;
        if (!ReadJson(element, depth + 1, converted)) return false;
        elements.push_back(std::move(converted));
      }
      return true;
    }
    case Json::value_t::object: {
      out = Json::object();
      auto& members = out.get_ref<Json::object_t&>();
      if (!Count(2)) return false;
      for (const auto& [key, member] : value.items()) {
        if (!IsAscii(key) || !Count(DumpedStringBytes(key) + (members.empty() ? 1 : 2))) {
          return false;
        }
        Json converted;
        if (!ReadJson(member, depth + 1, converted)) return false;
        members.emplace(key, std::move(converted));
      }
      return true;
    }
    default:
      return false;
  }
}

bool ResultReader::ReadMerge(const Json& base,
                             std::vector<std::pair<const std::string*, const Json*>> set,
                             Json& out) {
  // Sorted by key; of equal keys only the last given stays (stable sort, then the last of
  // each run).
  std::stable_sort(set.begin(), set.end(),
                   [](const auto& a, const auto& b) { return *a.first < *b.first; });
  size_t kept = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    if (i + 1 < set.size() && *set[i + 1].first == *set[i].first) continue;
    set[kept++] = set[i];
  }
  set.resize(kept);
  out = Json::object();
  auto& members = out.get_ref<Json::object_t&>();
  if (!Count(2)) return false;
  auto add = [&](const std::string& key, const Json& value) {
    if (!IsAscii(key) || !Count(DumpedStringBytes(key) + (members.empty() ? 1 : 2))) {
      return false;
    }
    Json converted;
    if (!ReadJson(value, 2, converted)) return false;
    members.emplace_hint(members.end(), key, std::move(converted));
    return true;
  };
  static const Json::object_t no_members;
  const Json::object_t& old = base.is_object() ? base.get_ref<const Json::object_t&>() : no_members;
  auto it = old.begin();
  size_t j = 0;
  while (it != old.end() || j < set.size()) {
    if (j == set.size() || (it != old.end() && it->first < *set[j].first)) {
      if (!add(it->first, it->second)) return false;
      ++it;
      continue;
    }
    if (it != old.end() && it->first == *set[j].first) ++it;  // replaced
    if (!add(*set[j].first, *set[j].second)) return false;
    ++j;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Path programs: `.`, `.a.b`, `$name`, `$name.a.b` (no spaces, ASCII field names) are most
// of the expressions workflows hold. jq runs them as field lookups (`.a` of an object is
// its member or null, of null is null, of anything else an error), so they are answered
// from the Json value directly, with jq's normalisation of the result (ReadJson); whatever
// that cannot decide exactly (an error, a non-ASCII string) goes to jq as before.

struct PathProgram {
  std::optional<size_t> variable;  // index into the evaluation's variables; none: the input
  std::vector<std::string> fields;
};

// `.a.b` from position `i` of `text` into `fields`; false unless it runs to the end.
bool ParseFields(std::string_view text, size_t i, std::vector<std::string>& fields) {
  while (i < text.size()) {
    if (text[i] != '.' || i + 1 >= text.size() || !IsIdentStart(text[i + 1])) return false;
    size_t end = i + 2;
    while (end < text.size() && IsIdentChar(text[end])) ++end;
    fields.emplace_back(text.substr(i + 1, end - i - 1));
    i = end;
  }
  return true;
}

// The path program `jq_text` is, if it is one. `names` are the variables it was compiled
// with (it compiled: the text is valid jq and names only these).
std::optional<PathProgram> ParsePathProgram(std::string_view jq_text,
                                            const std::vector<std::string_view>& names) {
  const std::string_view text = Trim(jq_text);
  PathProgram path;
  if (text == ".") return path;
  if (text.empty()) return std::nullopt;
  size_t i = 0;
  if (text[0] == '$') {
    size_t end = 1;
    if (end >= text.size() || !IsIdentStart(text[end])) return std::nullopt;
    while (end < text.size() && IsIdentChar(text[end])) ++end;
    const std::string_view name = text.substr(1, end - 1);
    auto found = std::find(names.begin(), names.end(), name);
    if (found == names.end()) return std::nullopt;
    path.variable = static_cast<size_t>(found - names.begin());
    i = end;
  }
  if (!ParseFields(text, i, path.fields)) return std::nullopt;
  if (!path.variable && path.fields.empty()) return std::nullopt;
  return path;
}

// `P + {k1: P1, k2: P2, ...}` (P, Pi path programs, ki names): how workflows add a task's
// result to its input (`output.as: '$input + { customer: . }'`). jq adds an object to null
// (the object) and to an object (the left one's members, then the right one's over them);
// anything else it refuses.
struct MergeProgram {
  PathProgram base;
  std::vector<std::pair<std::string, PathProgram>> members;
};

bool IsJqSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The merge program `jq_text` is, if it is one (see ParsePathProgram for `names`).
std::optional<MergeProgram> ParseMergeProgram(std::string_view jq_text,
                                              const std::vector<std::string_view>& names) {
  const std::string_view text = jq_text;
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && IsJqSpace(text[i])) ++i;
  };
  auto path = [&]() -> std::optional<PathProgram> {
    const size_t begin = i;
    while (i < text.size() && (text[i] == '.' || text[i] == '$' || IsIdentChar(text[i]))) ++i;
    return ParsePathProgram(text.substr(begin, i - begin), names);
  };
  auto expect = [&](char c) {
    skip();
    if (i >= text.size() || text[i] != c) return false;
    ++i;
    return true;
  };
  MergeProgram merge;
  skip();
  std::optional<PathProgram> base = path();
  if (!base || !expect('+') || !expect('{')) return std::nullopt;
  merge.base = std::move(*base);
  do {
    skip();
    const size_t begin = i;
    if (i >= text.size() || !IsIdentStart(text[i])) return std::nullopt;
    while (i < text.size() && IsIdentChar(text[i])) ++i;
    std::string key(text.substr(begin, i - begin));
    if (!expect(':')) return std::nullopt;
    skip();
    std::optional<PathProgram> value = path();
    if (!value) return std::nullopt;
    merge.members.emplace_back(std::move(key), std::move(*value));
    skip();
  } while (i < text.size() && text[i++] == ',');
  if (i == 0 || text[i - 1] != '}') return std::nullopt;
  skip();
  if (i != text.size()) return std::nullopt;
  return merge;
}

// ---------------------------------------------------------------------------------------
// Compiled programs.

struct JqStateDeleter {
  void operator()(jq_state* state) const { jq_teardown(&state); }
};

// One compiled wrapper program and the libjq state that runs it. Heap-allocated and never
// moved: libjq's error callback points at `errors`. Its variables are bound in name order,
// so that every use of one text binding the same names shares it.
struct CompiledJq {
  std::unique_ptr<jq_state, JqStateDeleter> state;
  std::vector<std::string> errors;  // what jq reported while compiling
};

// An expression text for one list of variable names.
struct Program {
  std::shared_ptr<CompiledJq> jq;  // null for a path or merge program until jq is needed
  std::string jq_key;  // the key `jq` is shared under (BoundKey)
  // The variables the program binds (see BoundVariables), as indices into the
  // evaluation's variables, in the order the program binds them (by name); and per
  // variable, whether it is bound.
  std::vector<size_t> bound;
  std::vector<bool> binds;
  // Set when the expression is a path or merge program, answered without running jq.
  std::optional<PathProgram> path;
  std::optional<MergeProgram> merge;
};

void OnJqError(void* data, jv message) {
  auto* errors = static_cast<std::vector<std::string>*>(data);
  if (jv_get_kind(message) != JV_KIND_STRING) message = jv_dump_string(message, 0);
  try {
    errors->emplace_back(jv_string_value(message));
  } catch (...) {  // nothing may unwind through libjq
  }
  jv_free(message);
}

// "syntax error, unexpected IDENT, expecting $end (line 1)" from jq's reports, which end
// in " at <top-level>, line N:\n<the wrapper's source line>" (dropped: it shows the
// wrapper) and are followed by a count ("jq: 1 compile error", dropped).
std::string FormatCompileErrors(const std::vector<std::string>& errors) {
  std::string joined;
  for (std::string_view error : errors) {
    if (error.starts_with("jq: ") && error.find("compile error") != std::string_view::npos &&
        error.size() > 4 && IsDigit(error[4])) {
      continue;
    }
    if (error.starts_with("jq: error: ")) error.remove_prefix(11);
    std::string line;
    if (size_t at = error.find(" at <top-level>, line "); at != std::string_view::npos) {
      std::string_view rest = error.substr(at + 22);
      line = " (line " + std::string(rest.substr(0, rest.find(':'))) + ")";
      error = error.substr(0, at);
    }
    if (size_t noise = error.find(" (Unix shell quoting issues?)"); noise != std::string::npos) {
      error = error.substr(0, noise);
    }
    if (!joined.empty()) joined += "; ";
    joined += std::string(Trim(error)) + line;
  }
  return joined.empty() ? "does not compile" : "does not compile: " + joined;
}

// The wrapper: the variables' values arrive with the input in one array, so a compiled
// program serves every evaluation (jq 1.6 would fold jq_compile_args values into the
// bytecode). The user's text goes in parentheses (top-level `def`s are fine there) and is
// followed by a newline, in case it ends in a comment.
std::string WrapExpression(std::string_view jq_text, const std::vector<std::string_view>& names) {
  std::string source = Prelude();
  source += ". as [$__cairn_input";
  for (std::string_view name : names) {
    source += ", $";
    source += name;
  }
  source += "] | null as $ENV | $__cairn_input | (";
  source += jq_text;
  source += "\n)";
  return source;
}

// The variables worth binding: those whose name occurs somewhere in the text. jq has no way
// to reach a variable other than writing `$name`, so the others can never be referenced and
// leaving them out changes no value and no message; it spares converting their values to
// jq at every evaluation (the scope holds the whole workflow input under $workflow and the
// task's input under $task, and most expressions read only `.`).
// Indices into `names`, ordered by name (the order the program binds them in).
std::vector<size_t> BoundVariables(std::string_view jq_text,
                                   const std::vector<std::string_view>& names) {
  std::vector<size_t> bound;
  for (size_t i = 0; i < names.size(); ++i) {
    if (jq_text.find(names[i]) != std::string_view::npos) bound.push_back(i);
  }
  std::sort(bound.begin(), bound.end(), [&](size_t a, size_t b) { return names[a] < names[b]; });
  return bound;
}

// What a compiled program depends on: the names it binds, in order, and the text.
std::string BoundKey(std::string_view jq_text, const std::vector<std::string_view>& names,
                     const std::vector<size_t>& bound) {
  std::string key;
  for (size_t i : bound) {
    key += names[i];
    key += ',';
  }
  key += '\n';
  key += jq_text;
  return key;
}

// Compiles the wrapper around `jq_text` binding `bound_names`, in that order.
Result<std::shared_ptr<CompiledJq>> CompileJq(std::string_view jq_text,
                                              const std::vector<std::string_view>& bound_names) {
  CAIRN_RETURN_IF_ERROR(CheckText(jq_text));
  CAIRN_RETURN_IF_ERROR(CheckNoHomeJqFile());
  auto compiled = std::make_shared<CompiledJq>();
  compiled->state.reset(jq_init());
  if (compiled->state == nullptr) return Status::ResourceExhausted("jq_init: out of memory");
  jq_state* state = compiled->state.get();
  jq_set_error_cb(state, &OnJqError, &compiled->errors);
  jq_set_attr(state, jv_string("JQ_LIBRARY_PATH"), jv_array());  // no module search path
  const std::string source = WrapExpression(jq_text, bound_names);
  if (!jq_compile(state, source.c_str())) {
    return ExpressionError(jq_text, FormatCompileErrors(compiled->errors));
  }
  compiled->errors.clear();
  return compiled;
}

// The program for `jq_text` with `names` (already checked by CheckVariableNames), its
// compiled part taken from `shared` (a compile of the same text binding the same names)
// or compiled now.
Result<std::unique_ptr<Program>> MakeProgram(
    std::string_view jq_text, const std::vector<std::string_view>& names,
    const std::function<std::shared_ptr<CompiledJq>(const std::string&)>& shared) {
  auto program = std::make_unique<Program>();
  program->bound = BoundVariables(jq_text, names);
  program->binds.assign(names.size(), false);
  std::vector<std::string_view> bound_names;
  bound_names.reserve(program->bound.size());
  for (size_t i : program->bound) {
    program->binds[i] = true;
    bound_names.push_back(names[i]);
  }
  program->jq_key = BoundKey(jq_text, names, program->bound);
  program->jq = shared ? shared(program->jq_key) : nullptr;
  program->path = ParsePathProgram(jq_text, names);
  if (!program->path) program->merge = ParseMergeProgram(jq_text, names);
  if (program->jq == nullptr && (program->path || program->merge)) {
    // Valid jq binding only `names` (every text the two parsers accept is: field names
    // after `.` and object keys may be any identifier, keywords included, in jq 1.6), and
    // answered without jq unless a value needs jq's judgement: compiled on first need
    // (CompileLazily). What a compile would check first is checked now.
    CAIRN_RETURN_IF_ERROR(CheckText(jq_text));
    CAIRN_RETURN_IF_ERROR(CheckNoHomeJqFile());
    return program;
  }
  if (program->jq == nullptr) {
    CAIRN_ASSIGN_OR_RETURN(program->jq, CompileJq(jq_text, bound_names));
  }
  return program;
}

// Runs `program` on `program_input` (consumed) and returns its first output.
Result<Json> RunProgram(Program& program, std::string_view jq_text, jv program_input) {
  jq_state* state = program.jq->state.get();
  jq_start(state, program_input, 0);
  jv output = jq_next(state);
  Status status;
  Json result;
  if (jv_is_valid(output)) {
    ResultReader reader;
    if (!reader.Read(output, 1, result)) status = ExpressionError(jq_text, reader.error());
  } else if (jq_halted(state)) {  // unreachable while halt and halt_error are refused
    jv_free(output);
    std::string code = TakeText(jq_get_exit_code(state));
    std::string message = TakeText(jq_get_error_message(state));
    status = ExpressionError(jq_text, "halted (exit code " + (code.empty() ? "0" : code) +
                                          "): " + Truncate(message, quoted_error_bytes_max));
  } else if (jv_invalid_has_msg(jv_copy(output))) {
    status = ExpressionError(jq_text, Truncate(TakeInvalidMessage(output), quoted_error_bytes_max));
  } else {
    jv_free(output);  // no output: null
  }
  // Restart on null so that the cached state holds no reference to this run's data.
  jq_start(state, jv_null(), 0);
  if (!status.ok()) return status;
  return result;
}

// The values of one call's input (slot 0) and variables (slot i + 1) as jq values,
// converted on first use (through the Evaluator's ConversionCache) and shared (jv_copy: jq
// copies on write) by the expressions of one template, which all see the same input and
// variables; and which of them are known to convert. The Evaluator reuses one from call to
// call (Begin, End), so that a call allocates nothing here. Not thread-safe.
class Conversions {
 public:
  explicit Conversions(ConversionCache& cache) : cache_(cache) {}
  ~Conversions() { End(); }
  Conversions(const Conversions&) = delete;
  Conversions& operator=(const Conversions&) = delete;

  // Starts a call on `input` and `variables`, none converted yet; checked are the
  // variables the caller vouches for (Variable::convertible) and an input that is one of
  // them.
  void Begin(const Json& input, const std::vector<Variable>& variables) {
    End();
    values_.resize(variables.size() + 1, jv_invalid());
    checked_.assign(variables.size() + 1, false);
    for (size_t i = 0; i < variables.size(); ++i) {
      if (!variables[i].convertible) continue;
      checked_[i + 1] = true;
      if (variables[i].value == &input) checked_[0] = true;
    }
  }
  // Drops the call's conversions (the cache may keep them).
  void End() {
    for (jv& value : values_) jv_free(value);
    values_.clear();
  }

  // `value` as a jq value (owned by the caller), or an invalid jv saying why it cannot be.
  jv Convert(size_t slot, const Json& value) {
    if (jv_is_valid(values_[slot])) return jv_copy(values_[slot]);
    jv converted = cache_.Convert(value);
    if (jv_is_valid(converted)) values_[slot] = jv_copy(converted);
    return converted;
  }
  // Why `value` could not be converted, for a variable the program does not bind.
  std::optional<std::string> Check(size_t slot, const Json& value) {
    if (checked_[slot] || jv_is_valid(values_[slot])) return std::nullopt;
    if (FitsJq(value, 1)) {
      checked_[slot] = true;
      return std::nullopt;
    }
    return ConversionError(value, 1);
  }

 private:
  ConversionCache& cache_;
  std::vector<jv> values_;  // jv_invalid() until converted
  std::vector<bool> checked_;
};

// Whether every value ProgramInput would convert can go to jq (it checks them first).
bool AllConvertible(const Json& input, const std::vector<Variable>& variables,
                    Conversions& conversions) {
  for (size_t i = 0; i <= variables.size(); ++i) {
    if (conversions.Check(i, i == 0 ? input : *variables[i - 1].value)) return false;
  }
  return true;
}

// The value a path leads to (null for a missing member), or null when jq raises an error
// (a field of something that is neither an object nor null).
const Json* Walk(const PathProgram& path, const Json& input,
                 const std::vector<Variable>& variables) {
  static const Json null_value;
  const Json* current = path.variable ? variables[*path.variable].value : &input;
  for (const std::string& field : path.fields) {
    if (current->is_object()) {
      auto found = current->find(field);
      current = found == current->end() ? &null_value : &*found;
    } else if (!current->is_null()) {
      return nullptr;  // jq's error: "Cannot index <type> with ..."
    }
  }
  return current;
}

// A path program's value, as jq would give it; nullopt when jq must decide (a value that
// cannot go to jq, an error, a result that ReadJson leaves to jq).
std::optional<Json> RunPath(const PathProgram& path, const Json& input,
                            const std::vector<Variable>& variables, Conversions& conversions) {
  if (!AllConvertible(input, variables, conversions)) return std::nullopt;
  const Json* value = Walk(path, input, variables);
  Json result;
  ResultReader reader;
  if (value == nullptr || !reader.ReadJson(*value, 1, result)) return std::nullopt;
  return result;
}

// A merge program's value, as jq would give it (the merge, then jq's normalisation: the
// normalisation of a merge is the merge of the normalised values); nullopt when jq must
// decide, as for RunPath, and when the left side is neither an object nor null.
std::optional<Json> RunMerge(const MergeProgram& merge, const Json& input,
                             const std::vector<Variable>& variables, Conversions& conversions) {
  if (!AllConvertible(input, variables, conversions)) return std::nullopt;
  const Json* base = Walk(merge.base, input, variables);
  if (base == nullptr || !(base->is_object() || base->is_null())) return std::nullopt;
  std::vector<std::pair<const std::string*, const Json*>> set;
  set.reserve(merge.members.size());
  for (const auto& [key, path] : merge.members) {
    const Json* value = Walk(path, input, variables);
    if (value == nullptr) return std::nullopt;
    set.emplace_back(&key, value);
  }
  Json result;
  ResultReader reader;
  if (!reader.ReadMerge(*base, std::move(set), result)) return std::nullopt;
  return result;
}

// [input, bound variable values...] for the wrapper, or the reason one cannot go to jq.
// Every variable is checked, bound or not, in order, so that the first value that cannot
// go to jq is reported whichever the expression reads.
Result<jv> ProgramInput(const Program& program, const Json& input,
                        const std::vector<Variable>& variables, Conversions& conversions) {
  for (size_t i = 0; i <= variables.size(); ++i) {
    const Json* value = i == 0 ? &input : variables[i - 1].value;
    CAIRN_ASSERT(value != nullptr, "Variable.value is null");
    std::string error;
    if (i == 0 || program.binds[i - 1]) {
      jv converted = conversions.Convert(i, *value);  // kept by `conversions`
      if (jv_is_valid(converted)) {
        jv_free(converted);
        continue;
      }
      error = TakeInvalidMessage(converted);
    } else if (std::optional<std::string> unconvertible = conversions.Check(i, *value)) {
      error = std::move(*unconvertible);
    } else {
      continue;
    }
    std::string what = i == 0 ? "input" : "variable `$" + variables[i - 1].name + "`";
    return Status::InvalidArgument("expression " + what + " " + error);
  }
  jv array = jv_array_sized(static_cast<int>(program.bound.size() + 1));
  array = jv_array_append(array, conversions.Convert(0, input));
  for (size_t i : program.bound) {
    array = jv_array_append(array, conversions.Convert(i + 1, *variables[i].value));
  }
  return array;
}

// Whether `value` dumps to at most `bytes_max` bytes of compact JSON. Iterative.
bool DumpsWithin(const Json& value, size_t bytes_max) {
  size_t bytes = 0;
  std::vector<const Json*> stack{&value};
  while (!stack.empty() && bytes <= bytes_max) {
    const Json* node = stack.back();
    stack.pop_back();
    switch (node->type()) {
      case Json::value_t::object:
        bytes += 2 + (node->empty() ? 0 : node->size() - 1);
        for (const auto& [key, member] : node->items()) {
          bytes += DumpedStringBytes(key) + 1;
          stack.push_back(&member);
        }
        break;
      case Json::value_t::array:
        bytes += 2 + (node->empty() ? 0 : node->size() - 1);
        for (const Json& element : *node) stack.push_back(&element);
        break;
      case Json::value_t::string:
        bytes += DumpedStringBytes(node->get_ref<const std::string&>());
        break;
      case Json::value_t::number_integer:
        bytes += DumpedNumberBytes(node->get<int64_t>());
        break;
      case Json::value_t::number_unsigned:
        bytes += DumpedNumberBytes(node->get<uint64_t>());
        break;
      case Json::value_t::number_float:
        bytes += DumpedNumberBytes(node->get<double>());
        break;
      default:
        bytes += 5;
        break;
    }
  }
  return bytes <= bytes_max;
}

// "/a/0/b~1c": where a template string sits, as a JSON pointer.
void AppendPointerToken(std::string& path, std::string_view token) {
  path += '/';
  for (char c : token) {
    if (c == '~') {
      path += "~0";
    } else if (c == '/') {
      path += "~1";
    } else {
      path += c;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public functions.

bool ConvertibleToJq(const Json& value, size_t depth) { return FitsJq(value, depth); }

bool IsRuntimeExpression(std::string_view text) {
  std::string_view trimmed = Trim(text);
  return trimmed.size() >= 3 && trimmed.starts_with("${") && trimmed.ends_with('}');
}

std::string_view StripRuntimeExpression(std::string_view text) {
  if (!IsRuntimeExpression(text)) return text;
  std::string_view trimmed = Trim(text);
  return Trim(trimmed.substr(2, trimmed.size() - 3));
}

Status CheckExpression(std::string_view jq_text, const std::vector<std::string>& variables) {
  std::vector<std::string_view> names(variables.begin(), variables.end());
  CAIRN_RETURN_IF_ERROR(CheckVariableNames(names));
  return MakeProgram(jq_text, names, nullptr).status();
}

struct Evaluator::Impl {
  struct Entry {
    std::string key;
    std::unique_ptr<Program> program;
  };

  // The cached program for (text, variable names), made on a miss.
  Result<Program*> Find(std::string_view jq_text, const std::vector<std::string_view>& names);
  Result<Program*> Find(std::string_view jq_text, const std::vector<Variable>& variables);
  // The entry under key_buffer (moved to the front), or null.
  Program* Hit();
  // Makes, caches and returns the program for a key_buffer that missed.
  Result<Program*> Miss(std::string_view jq_text, const std::vector<std::string_view>& names);
  // Compiles a path or merge program the first time a value needs jq (Program::jq).
  Status CompileLazily(Program& program, std::string_view jq_text,
                       const std::vector<Variable>& variables);
  Result<Json> Evaluate(std::string_view jq_text, const Json& input,
                        const std::vector<Variable>& variables, Conversions& conversions);

  std::list<Entry> entries;  // most recently used first
  std::string key_buffer;     // Find's lookup key
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index;  // views of Entry::key
  // Compiled programs by Program::jq_key: entries whose texts bind the same names (a
  // definition's check and the interpreter's evaluation list the variables differently)
  // share one compile. Each is alive while an entry holds it.
  std::unordered_map<std::string, std::weak_ptr<CompiledJq>> compiled;
  // Declared before `conversions`, which refers to it.
  ConversionCache conversion_cache;
  Conversions conversions{conversion_cache};  // the current call's (Begin ... End)
};

Program* Evaluator::Impl::Hit() {
  auto found = index.find(std::string_view(key_buffer));
  if (found == index.end()) return nullptr;
  entries.splice(entries.begin(), entries, found->second);
  return found->second->program.get();
}

Result<Program*> Evaluator::Impl::Miss(std::string_view jq_text,
                                       const std::vector<std::string_view>& names) {
  CAIRN_RETURN_IF_ERROR(CheckVariableNames(names));
  CAIRN_ASSIGN_OR_RETURN(
      std::unique_ptr<Program> program,
      MakeProgram(jq_text, names, [this](const std::string& jq_key) {
        auto shared = compiled.find(jq_key);
        return shared == compiled.end() ? nullptr : shared->second.lock();
      }));
  if (program->jq != nullptr) compiled[program->jq_key] = program->jq;
  if (entries.size() >= programs_cached_max) {
    Entry& last = entries.back();
    if (last.program->jq != nullptr && last.program->jq.use_count() == 1) {
      compiled.erase(last.program->jq_key);
    }
    index.erase(last.key);
    entries.pop_back();
  }
  entries.push_front(Entry{key_buffer, std::move(program)});
  index.emplace(entries.front().key, entries.begin());
  return entries.front().program.get();
}

Status Evaluator::Impl::CompileLazily(Program& program, std::string_view jq_text,
                                      const std::vector<Variable>& variables) {
  auto shared = compiled.find(program.jq_key);
  if (shared != compiled.end()) program.jq = shared->second.lock();
  if (program.jq == nullptr) {
    std::vector<std::string_view> bound_names;
    bound_names.reserve(program.bound.size());
    for (size_t i : program.bound) bound_names.push_back(variables[i].name);
    CAIRN_ASSIGN_OR_RETURN(program.jq, CompileJq(jq_text, bound_names));
  }
  compiled[program.jq_key] = program.jq;
  return Status::Ok();
}

Result<Program*> Evaluator::Impl::Find(std::string_view jq_text,
                                       const std::vector<std::string_view>& names) {
  key_buffer.clear();  // reused: a hit allocates nothing
  for (std::string_view name : names) {
    key_buffer += name;
    key_buffer += ',';
  }
  key_buffer += '\n';
  key_buffer += jq_text;
  if (Program* program = Hit()) return program;
  return Miss(jq_text, names);
}

Result<Program*> Evaluator::Impl::Find(std::string_view jq_text,
                                       const std::vector<Variable>& variables) {
  key_buffer.clear();
  for (const Variable& variable : variables) {
    key_buffer += variable.name;
    key_buffer += ',';
  }
  key_buffer += '\n';
  key_buffer += jq_text;
  if (Program* program = Hit()) return program;
  std::vector<std::string_view> names;
  names.reserve(variables.size());
  for (const Variable& variable : variables) names.push_back(variable.name);
  return Miss(jq_text, names);
}

Evaluator::Evaluator() : impl_(std::make_unique<Impl>()) {
  // libjq's regex builtins leave oniguruma to initialise itself on first use, which is not
  // thread-safe; do it once, before any Evaluator runs.
  static std::once_flag regex_library_initialised;
  std::call_once(regex_library_initialised, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}
Evaluator::~Evaluator() = default;

size_t Evaluator::cached_programs() const { return impl_->entries.size(); }

size_t Evaluator::compiled_programs() const { return impl_->compiled.size(); }

size_t Evaluator::cached_conversions() const { return impl_->conversion_cache.size(); }

size_t Evaluator::cached_conversion_nodes() const { return impl_->conversion_cache.nodes(); }

uint64_t Evaluator::conversion_cache_hits() const { return impl_->conversion_cache.hits(); }

Status Evaluator::Check(std::string_view jq_text, const std::vector<std::string>& variables) {
  std::vector<std::string_view> names(variables.begin(), variables.end());
  return impl_->Find(jq_text, names).status();
}

Result<Json> Evaluator::Impl::Evaluate(std::string_view jq_text, const Json& input,
                                       const std::vector<Variable>& variables,
                                       Conversions& conversions) {
  CAIRN_ASSIGN_OR_RETURN(Program * program, Find(jq_text, variables));
  if (program->path) {
    if (std::optional<Json> value = RunPath(*program->path, input, variables, conversions)) {
      return std::move(*value);
    }
  } else if (program->merge) {
    if (std::optional<Json> value = RunMerge(*program->merge, input, variables, conversions)) {
      return std::move(*value);
    }
  }
  if (program->jq == nullptr) CAIRN_RETURN_IF_ERROR(CompileLazily(*program, jq_text, variables));
  CAIRN_ASSIGN_OR_RETURN(jv program_input, ProgramInput(*program, input, variables, conversions));
  return RunProgram(*program, jq_text, program_input);
}

Result<Json> Evaluator::Evaluate(std::string_view jq_text, const Json& input,
                                 const std::vector<Variable>& variables) {
  impl_->conversions.Begin(input, variables);
  Result<Json> result = impl_->Evaluate(jq_text, input, variables, impl_->conversions);
  impl_->conversions.End();
  return result;
}

namespace {

// Depth-first over a template; `path` is the JSON pointer of `node`. `evaluate` runs one
// expression text (on the template's input and variables).
template <typename EvaluateText>
Result<Json> EvaluateNode(const EvaluateText& evaluate, const Json& node, size_t depth,
                          std::string& path) {
  if (depth > limits::json_depth_max) {
    return Status::InvalidArgument("template nests deeper than " +
                                   std::to_string(limits::json_depth_max) + " levels");
  }
  if (node.is_string()) {
    const auto& text = node.get_ref<const std::string&>();
    if (!IsRuntimeExpression(text)) return node;
    Result<Json> value = evaluate(StripRuntimeExpression(text));
    if (!value.ok() && !path.empty()) return value.status().WithContext("at " + path);
    return value;
  }
  if (!node.is_structured()) return node;
  Json out = node.is_array() ? Json::array() : Json::object();
  size_t index = 0;
  for (const auto& [key, child] : node.items()) {
    const size_t path_size = path.size();
    AppendPointerToken(path, node.is_array() ? std::to_string(index++) : key);
    CAIRN_ASSIGN_OR_RETURN(Json value,
                           EvaluateNode(evaluate, child, depth + 1, path));
    path.resize(path_size);
    if (node.is_array()) {
      out.push_back(std::move(value));
    } else {
      out.get_ref<Json::object_t&>().emplace(key, std::move(value));
    }
  }
  return out;
}

}  // namespace

Result<Json> Evaluator::EvaluateTemplate(const Json& value, const Json& input,
                                         const std::vector<Variable>& variables) {
  std::string path;
  // The template's expressions share one conversion of the input and variables.
  Conversions& conversions = impl_->conversions;
  conversions.Begin(input, variables);
  auto evaluate = [&](std::string_view jq_text) {
    return impl_->Evaluate(jq_text, input, variables, conversions);
  };
  Result<Json> evaluated = EvaluateNode(evaluate, value, 1, path);
  conversions.End();
  CAIRN_ASSIGN_OR_RETURN(Json result, std::move(evaluated));
  if (JsonDepth(result) > limits::json_depth_max) {
    return Status::InvalidArgument("evaluated template nests deeper than " +
                                   std::to_string(limits::json_depth_max) + " levels");
  }
  if (!DumpsWithin(result, limits::run_data_bytes_max)) {
    return Status::InvalidArgument("evaluated template is larger than " +
                                   std::to_string(limits::run_data_bytes_max) +
                                   " bytes of JSON (limits::run_data_bytes_max)");
  }
  return result;
}

Result<Json> Evaluator::EvaluateImplicit(const Json& expression, const Json& input,
                                         const std::vector<Variable>& variables) {
  if (expression.is_string()) {
    return Evaluate(StripRuntimeExpression(expression.get_ref<const std::string&>()), input,
                    variables);
  }
  return EvaluateTemplate(expression, input, variables);
}

// ---------------------------------------------------------------------------------------
// EvaluatorPool.

EvaluatorPool::Lease::Lease(EvaluatorPool* pool, std::unique_ptr<Evaluator> evaluator)
    : pool_(pool), evaluator_(std::move(evaluator)) {}

EvaluatorPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), evaluator_(std::move(other.evaluator_)) {}

EvaluatorPool::Lease::~Lease() {
  if (evaluator_ == nullptr) return;  // moved from
  std::lock_guard<std::mutex> lock(pool_->mutex_);
  pool_->free_.push_back(std::move(evaluator_));
}

EvaluatorPool::Lease EvaluatorPool::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      std::unique_ptr<Evaluator> evaluator = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(evaluator));
    }
  }
  return Lease(this, std::make_unique<Evaluator>());
}

}  // namespace cairn::engine
