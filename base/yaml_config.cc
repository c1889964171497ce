#include "base/yaml_config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "base/limits.h"

namespace cairn {

void YamlProblems::Add(const YAML::Mark& mark, std::string_view subject, std::string_view message) {
  ++count_;
  if (lines_.size() >= kShownMax) return;
  std::string line(source_);
  if (!mark.is_null()) {
    line += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  line += ": ";
  if (!subject.empty()) {
    line += subject;
    line += ": ";
  }
  line += message;
  lines_.push_back(std::move(line));
}

Status YamlProblems::ToStatus() const {
  std::string message;
  for (const std::string& line : lines_) {
    if (!message.empty()) message += '\n';
    message += line;
  }
  if (count_ > lines_.size()) {
    message +=
        "\n" + source_ + ": and " + std::to_string(count_ - lines_.size()) + " more problems";
  }
  return Status::InvalidArgument(std::move(message));
}

std::string DescribeYamlNode(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  std::string text = node.Scalar();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return "'" + text + "'";
}

namespace {

// True when the document has at most `max` nodes with its aliases expanded. Iterative, and
// it stops as soon as the bound is passed: a cyclic or exponential alias costs at most
// `max` steps.
bool ExpandedSizeWithin(const YAML::Node& root, size_t max) {
  std::vector<YAML::Node> pending{root};
  size_t seen = 0;
  while (!pending.empty()) {
    const YAML::Node node = pending.back();
    pending.pop_back();
    ++seen;
    if (node.IsSequence()) {
      for (const YAML::Node& item : node) {
        pending.push_back(item);
        if (seen + pending.size() > max) return false;
      }
    } else if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        pending.push_back(it->first);
        pending.push_back(it->second);
        if (seen + pending.size() > max) return false;
      }
    }
    if (seen > max) return false;
  }
  return true;
}

}  // namespace

std::optional<YAML::Node> ParseYamlText(YamlProblems& problems, std::string_view text,
                                        std::string_view what, size_t bytes_max) {
  if (text.size() > bytes_max) {
    problems.Add(YAML::Mark::null_mark(), "",
                 std::string(what) + " of " + std::to_string(text.size()) +
                     " bytes is more than the limit of " + std::to_string(bytes_max));
    return std::nullopt;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    problems.Add(e.mark, "", "invalid YAML: " + e.msg);
    return std::nullopt;
  }
  // yaml-cpp expands aliases lazily and accepts cyclic ones: bound the document before any
  // reader walks it (depth limits do not bound width).
  if (!ExpandedSizeWithin(root, limits::yaml_expanded_nodes_max)) {
    problems.Add(root.Mark(), "",
                 "the document expands (through YAML aliases) to more than " +
                     std::to_string(limits::yaml_expanded_nodes_max) + " nodes");
    return std::nullopt;
  }
  return root;
}

namespace yaml {
namespace {

std::string Field(std::string_view field) { return std::string(field); }

bool AllDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

std::optional<std::string> String(const YamlContext& ctx, const YAML::Node& node,
                                  std::string_view field) {
  if (!node.IsScalar()) {
    ctx.Add(node, Field(field) + ": expected a string, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::string> NonEmptyString(const YamlContext& ctx, const YAML::Node& node,
                                          std::string_view field) {
  auto text = String(ctx, node, field);
  if (text && text->empty()) {
    ctx.Add(node, Field(field) + ": must not be empty");
    return std::nullopt;
  }
  return text;
}

std::optional<std::string> OneOf(const YamlContext& ctx, const YAML::Node& node,
                                 std::string_view field,
                                 std::initializer_list<std::string_view> names) {
  auto text = String(ctx, node, field);
  if (!text) return std::nullopt;
  std::string expected;
  for (std::string_view name : names) {
    if (*text == name) return text;
    expected += expected.empty() ? "" : ", ";
    expected += name;
  }
  ctx.Add(node, Field(field) + ": unknown value '" + *text + "' (expected " + expected + ")");
  return std::nullopt;
}

std::optional<bool> Bool(const YamlContext& ctx, const YAML::Node& node, std::string_view field) {
  if (!node.IsScalar()) {
    ctx.Add(node, Field(field) + ": expected true or false, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  ctx.Add(node, Field(field) + ": expected true or false, found '" + text + "'");
  return std::nullopt;
}

std::optional<uint64_t> Unsigned(const YamlContext& ctx, const YAML::Node& node,
                                 std::string_view field, uint64_t min, uint64_t max) {
  const std::string range =
      " (expected an integer from " + std::to_string(min) + " to " + std::to_string(max) + ")";
  if (!node.IsScalar() || !AllDigits(node.Scalar()) || node.Scalar().size() > 19) {
    ctx.Add(node, Field(field) + ": " + DescribeYamlNode(node) + " is not a whole number" + range);
    return std::nullopt;
  }
  const uint64_t value = std::stoull(node.Scalar());
  if (value < min || value > max) {
    ctx.Add(node, Field(field) + ": " + node.Scalar() + " is out of range" + range);
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> Micros(const YamlContext& ctx, const YAML::Node& node,
                              std::string_view field, int64_t max_micros) {
  const std::string expected = " (expected a number such as 12 or 12.50, at most 6 decimals)";
  if (!node.IsScalar()) {
    ctx.Add(node, Field(field) + ": expected a number, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  const size_t dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  const std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
  if (!AllDigits(whole) || whole.size() > 12 || (dot != std::string::npos && !AllDigits(frac)) ||
      frac.size() > 6) {
    ctx.Add(node, Field(field) + ": '" + text + "' is not an amount" + expected);
    return std::nullopt;
  }
  int64_t micros = std::stoll(whole) * 1'000'000;
  if (!frac.empty()) micros += std::stoll(frac + std::string(6 - frac.size(), '0'));
  if (micros > max_micros) {
    ctx.Add(node, Field(field) + ": " + text + " is more than the limit of " +
                      std::to_string(max_micros / 1'000'000));
    return std::nullopt;
  }
  return micros;
}

std::optional<uint64_t> ParseDurationMs(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (AllDigits(text)) {
    if (text.size() > 12) return std::nullopt;
    return std::stoull(std::string(text));
  }
  uint64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits = i;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
      ++digits;
    }
    if (digits == i || digits - i > 9) return std::nullopt;
    const uint64_t number = std::stoull(std::string(text.substr(i, digits - i)));
    size_t unit_end = digits;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    const std::string_view unit = text.substr(digits, unit_end - digits);
    uint64_t scale = 0;
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60'000;
    } else if (unit == "h") {
      scale = 3'600'000;
    } else if (unit == "d") {
      scale = 86'400'000;
    } else {
      return std::nullopt;
    }
    if (number > (std::numeric_limits<uint64_t>::max() - total) / scale) return std::nullopt;
    total += number * scale;
    i = unit_end;
  }
  return total;
}

std::optional<uint64_t> DurationMs(const YamlContext& ctx, const YAML::Node& node,
                                   std::string_view field, uint64_t max_ms) {
  auto text = String(ctx, node, field);
  if (!text) return std::nullopt;
  auto ms = ParseDurationMs(*text);
  if (!ms) {
    ctx.Add(node, Field(field) + ": '" + *text +
                      "' is not a duration (expected e.g. 500ms, 10s, 2m, 1h, 1d, 1m30s, or an "
                      "integer of milliseconds)");
    return std::nullopt;
  }
  if (*ms == 0) {
    ctx.Add(node, Field(field) + ": must be positive");
    return std::nullopt;
  }
  if (*ms > max_ms) {
    ctx.Add(node, Field(field) + ": '" + *text + "' is longer than the limit of " +
                      std::to_string(max_ms) + " ms");
    return std::nullopt;
  }
  return ms;
}

std::optional<std::vector<std::string>> StringList(const YamlContext& ctx, const YAML::Node& node,
                                                   std::string_view field, size_t max_entries) {
  if (!node.IsSequence()) {
    ctx.Add(node, Field(field) + ": expected a list of strings, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  if (node.size() > max_entries) {
    ctx.Add(node, Field(field) + ": " + std::to_string(node.size()) +
                      " entries is more than the limit of " + std::to_string(max_entries));
    return std::nullopt;
  }
  std::vector<std::string> list;
  bool ok = true;
  for (const YAML::Node& item : node) {
    auto text = String(ctx, item, field);
    if (text) {
      list.push_back(std::move(*text));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return list;
}

std::optional<Json> StringMap(const YamlContext& ctx, const YAML::Node& node,
                              std::string_view field, size_t max_entries) {
  if (!node.IsMap()) {
    ctx.Add(node, Field(field) + ": expected a map of strings, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  if (node.size() > max_entries) {
    ctx.Add(node, Field(field) + ": " + std::to_string(node.size()) +
                      " entries is more than the limit of " + std::to_string(max_entries));
    return std::nullopt;
  }
  Json map = Json::object();
  bool ok = true;
  ForEachEntry(ctx, node, field,
               [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
                 auto text = String(ctx, value, Field(field) + "." + key);
                 if (text) {
                   map[key] = *text;
                 } else {
                   ok = false;
                 }
               });
  if (!ok) return std::nullopt;
  return map;
}

namespace {

// YAML 1.2 core schema typing of a plain scalar.
Json TypedScalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: always a string
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  const bool looks_numeric =
      std::all_of(text.begin(), text.end(),
                  [](unsigned char c) {
                    return std::isdigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' ||
                           c == 'E';
                  }) &&
      std::any_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
  if (looks_numeric) {
    Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_number()) return parsed;
  }
  return text;
}

std::optional<Json> ToJsonAt(const YamlContext& ctx, const YAML::Node& node, std::string_view field,
                             size_t depth_left) {
  if (depth_left == 0) {
    ctx.Add(node, Field(field) + ": nested too deeply");
    return std::nullopt;
  }
  if (!node.IsDefined() || node.IsNull()) return Json(nullptr);
  if (node.IsScalar()) return TypedScalar(node);
  if (node.IsSequence()) {
    Json list = Json::array();
    for (const YAML::Node& item : node) {
      auto value = ToJsonAt(ctx, item, field, depth_left - 1);
      if (!value) return std::nullopt;
      list.push_back(std::move(*value));
    }
    return list;
  }
  Json map = Json::object();
  bool ok = true;
  ForEachEntry(ctx, node, field,
               [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
                 auto converted = ToJsonAt(ctx, value, field, depth_left - 1);
                 if (converted) {
                   map[key] = std::move(*converted);
                 } else {
                   ok = false;
                 }
               });
  if (!ok) return std::nullopt;
  return map;
}

}  // namespace

std::optional<Json> ToJson(const YamlContext& ctx, const YAML::Node& node, std::string_view field,
                           size_t depth_max) {
  return ToJsonAt(ctx, node, field, depth_max);
}

std::optional<std::vector<Condition>> Conditions(const YamlContext& ctx, const YAML::Node& node,
                                                 std::string_view field, size_t max_entries) {
  const std::string shape =
      " (expected a list of {path: /pointer, OP: value}, OP one of eq, "
      "ne, gt, gte, lt, lte, in, not_in, exists)";
  if (!node.IsSequence()) {
    ctx.Add(node, Field(field) + ": expected a list of conditions, found " +
                      DescribeYamlNode(node) + shape);
    return std::nullopt;
  }
  if (node.size() > max_entries) {
    ctx.Add(node, Field(field) + ": " + std::to_string(node.size()) +
                      " conditions is more than the limit of " + std::to_string(max_entries));
    return std::nullopt;
  }
  std::vector<Condition> conditions;
  bool ok = true;
  for (const YAML::Node& item : node) {
    if (!item.IsMap()) {
      ctx.Add(item,
              Field(field) + ": expected a condition, found " + DescribeYamlNode(item) + shape);
      ok = false;
      continue;
    }
    Condition condition;
    int ops = 0;
    bool item_ok = true;
    ForEachEntry(ctx, item, field,
                 [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
                   if (key == "path") {
                     auto path = String(ctx, value, Field(field) + ".path");
                     if (path) {
                       condition.path = *path;
                     } else {
                       item_ok = false;
                     }
                     return;
                   }
                   auto op = ConditionOpFromName(key);
                   if (!op) {
                     ctx.Add(key_node, Field(field) + ": unknown key '" + key + "'" + shape);
                     item_ok = false;
                     return;
                   }
                   ++ops;
                   condition.op = *op;
                   auto operand = ToJson(ctx, value, Field(field) + "." + key, 16);
                   if (operand) {
                     condition.operand = std::move(*operand);
                   } else {
                     item_ok = false;
                   }
                 });
    if (!item["path"]) {
      ctx.Add(item, Field(field) + ": missing 'path'" + shape);
      item_ok = false;
    }
    if (ops != 1) {
      ctx.Add(item, Field(field) + ": expected exactly one operator, found " + std::to_string(ops) +
                        shape);
      item_ok = false;
    }
    if (item_ok) {
      if (Status valid = ValidateCondition(condition); !valid.ok()) {
        ctx.Add(item, Field(field) + ": " + valid.message());
        item_ok = false;
      }
    }
    if (item_ok) {
      conditions.push_back(std::move(condition));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return conditions;
}

void ForEachEntry(const YamlContext& ctx, const YAML::Node& map, std::string_view what,
                  const std::function<void(const std::string& key, const YAML::Node& key_node,
                                           const YAML::Node& value)>& visit) {
  std::set<std::string, std::less<>> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // yaml-cpp's iterator hands out a proxy: copy the nodes (cheap handles) rather than
    // binding references into a temporary.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      ctx.Add(key, Field(what) + ": keys must be strings, found " + DescribeYamlNode(key));
      continue;
    }
    if (!seen.insert(key.Scalar()).second) {
      ctx.Add(key, Field(what) + ": '" + key.Scalar() + "' appears twice");
      continue;
    }
    visit(key.Scalar(), key, value);
  }
}

void RefuseUnknownKeys(const YamlContext& ctx, const YAML::Node& map, std::string_view what,
                       std::initializer_list<std::string_view> known) {
  std::string expected;
  for (std::string_view name : known) {
    expected += expected.empty() ? "" : ", ";
    expected += name;
  }
  ForEachEntry(ctx, map, what,
               [&](const std::string& key, const YAML::Node& key_node, const YAML::Node&) {
                 if (std::find(known.begin(), known.end(), key) == known.end()) {
                   ctx.Add(key_node,
                           Field(what) + ": unknown key '" + key + "' (expected " + expected + ")");
                 }
               });
}

bool Require(const YamlContext& ctx, const YAML::Node& map, std::string_view what,
             std::string_view key, std::string_view hint) {
  if (map[std::string(key)]) return true;
  std::string message = Field(what) + ": missing '" + std::string(key) + "'";
  if (!hint.empty()) message += " (" + std::string(hint) + ")";
  ctx.Add(map, message);
  return false;
}

std::optional<std::string> ResolveProgram(const YamlContext& ctx, const YAML::Node& node,
                                          const std::string& program, std::string_view field) {
  if (program.find('/') == std::string::npos) return program;  // looked up in PATH
  std::filesystem::path path(program);
  if (path.is_relative() && ctx.base_dir != nullptr) {
    path = (*ctx.base_dir / path).lexically_normal();
  }
  const std::string resolved = path.string();
  const std::string shown =
      resolved == program ? "'" + program + "'" : "'" + program + "' (" + resolved + ")";
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    ctx.Add(node, Field(field) + ": " + shown + " is not a file");
    return std::nullopt;
  }
  if (::access(resolved.c_str(), X_OK) != 0) {
    ctx.Add(node, Field(field) + ": " + shown + " is not executable: " + std::strerror(errno));
    return std::nullopt;
  }
  return resolved;
}

std::string ShellWord(const std::string& text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || (c != 0 && std::strchr("/._-+:@%,=", c) != nullptr);
  });
  if (safe) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::optional<std::string> ResolveShellCommand(const YamlContext& ctx, const YAML::Node& node,
                                               const std::string& command, std::string_view field) {
  const size_t start = command.find_first_not_of(" \t");
  if (start == std::string::npos || command[start] == '\'' || command[start] == '"') {
    return command;
  }
  const size_t end = std::min(command.find_first_of(" \t", start), command.size());
  const std::string program = command.substr(start, end - start);
  if (program.find('/') == std::string::npos) return command;
  auto resolved = ResolveProgram(ctx, node, program, field);
  if (!resolved) return std::nullopt;
  return ShellWord(*resolved) + command.substr(end);
}

}  // namespace yaml
}  // namespace cairn
