// Reading operators' YAML configuration files (tool catalogs, policies, agents) with
// precise errors.
//
// Each file is checked whole before anything is used, and every problem found is
// reported (up to YamlProblems::kShownMax, then a count), one per line, as
//   "FILE:LINE:COL: SUBJECT: what is wrong (expected ...)"
// where SUBJECT names the entry being read ("tool 'crm.get'", "rule 'big-refunds'") and
// may be empty. Unknown keys are refused by name; duplicate keys are refused (yaml-cpp
// keeps them); scalars are YAML 1.2 typed ("yes" is a string, not true).
//
// Built on yaml-cpp; a library of its own (cairn_yaml) so that base itself does not need
// it. Thread-compatible: one YamlProblems per load.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/condition.h"
#include "base/json.h"
#include "base/status.h"
#include "base/text_file.h"

namespace cairn {

// Collects "FILE:LINE:COL: SUBJECT: message" lines.
class YamlProblems {
 public:
  static constexpr size_t kShownMax = 20;

  explicit YamlProblems(std::string_view source) : source_(source) {}

  void Add(const YAML::Mark& mark, std::string_view subject, std::string_view message);
  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  const std::string& source() const { return source_; }
  // kInvalidArgument listing the problems (do not call when empty()).
  Status ToStatus() const;

 private:
  std::string source_;
  std::vector<std::string> lines_;
  size_t count_ = 0;
};

// Where the problems about one entry go, and how its relative paths resolve.
struct YamlContext {
  YamlProblems& problems;
  std::string subject;                    // e.g. "tool 'crm.get'"; may be empty
  const std::filesystem::path* base_dir;  // null: keep relative paths as written

  void Add(const YAML::Node& node, std::string_view message) const {
    problems.Add(node.Mark(), subject, message);
  }
};

// "nothing", "a list", "a map" or the scalar quoted: for "found ..." in messages.
std::string DescribeYamlNode(const YAML::Node& node);

// Parses YAML text; a syntax error, a text over `bytes_max` or a document that expands
// (through aliases) past limits::yaml_expanded_nodes_max nodes is added to `problems` and
// gives nullopt. `what` names the document in the size error.
std::optional<YAML::Node> ParseYamlText(YamlProblems& problems, std::string_view text,
                                        std::string_view what, size_t bytes_max);

namespace yaml {

std::optional<std::string> String(const YamlContext& ctx, const YAML::Node& node,
                                  std::string_view field);
std::optional<std::string> NonEmptyString(const YamlContext& ctx, const YAML::Node& node,
                                          std::string_view field);
// One of `names`, exactly as written.
std::optional<std::string> OneOf(const YamlContext& ctx, const YAML::Node& node,
                                 std::string_view field,
                                 std::initializer_list<std::string_view> names);
// true/false (YAML 1.2: also True/TRUE/False/FALSE; never yes/no/on/off).
std::optional<bool> Bool(const YamlContext& ctx, const YAML::Node& node, std::string_view field);
// A non-negative integer in [min, max].
std::optional<uint64_t> Unsigned(const YamlContext& ctx, const YAML::Node& node,
                                 std::string_view field, uint64_t min, uint64_t max);
// A decimal number (e.g. money: "12.50", 3), as millionths, in [0, max_micros].
std::optional<int64_t> Micros(const YamlContext& ctx, const YAML::Node& node,
                              std::string_view field, int64_t max_micros);
// A duration: "500ms", "10s", "2m", "1h", "1d", "1h30m", or an integer of milliseconds;
// positive and at most `max_ms`.
std::optional<uint64_t> DurationMs(const YamlContext& ctx, const YAML::Node& node,
                                   std::string_view field, uint64_t max_ms);
// Parses the text form of DurationMs; nullopt when malformed.
std::optional<uint64_t> ParseDurationMs(std::string_view text);

std::optional<std::vector<std::string>> StringList(const YamlContext& ctx, const YAML::Node& node,
                                                   std::string_view field, size_t max_entries);
// A map of string to string, as a JSON object.
std::optional<Json> StringMap(const YamlContext& ctx, const YAML::Node& node,
                              std::string_view field, size_t max_entries);
// Any YAML value as JSON (scalars typed by the YAML 1.2 core schema), at most `depth_max`
// deep.
std::optional<Json> ToJson(const YamlContext& ctx, const YAML::Node& node, std::string_view field,
                           size_t depth_max = 64);

// A list of conditions (base/condition.h), each a map {path: POINTER, OP: OPERAND} with
// exactly one operator; at most `max_entries`.
std::optional<std::vector<Condition>> Conditions(const YamlContext& ctx, const YAML::Node& node,
                                                 std::string_view field, size_t max_entries);

// Calls `visit(key, key_node, value)` for each entry of a map, refusing keys that are not
// strings or that repeat.
void ForEachEntry(const YamlContext& ctx, const YAML::Node& map, std::string_view what,
                  const std::function<void(const std::string& key, const YAML::Node& key_node,
                                           const YAML::Node& value)>& visit);
// Refuses keys of `map` that are not in `known`, naming them and the expected ones.
void RefuseUnknownKeys(const YamlContext& ctx, const YAML::Node& map, std::string_view what,
                       std::initializer_list<std::string_view> known);
// Adds "WHAT: missing 'KEY'" and returns false when `map` lacks `key`.
bool Require(const YamlContext& ctx, const YAML::Node& map, std::string_view what,
             std::string_view key, std::string_view hint = {});

// Programs named in configuration. A path (containing '/') is resolved against
// ctx.base_dir when relative and checked to be an executable file; a bare name is kept
// (looked up in PATH when it runs). `field` names the key in messages.
std::optional<std::string> ResolveProgram(const YamlContext& ctx, const YAML::Node& node,
                                          const std::string& program, std::string_view field);
// A shell command line whose first word, when a path, is resolved like ResolveProgram
// (and shell-quoted if need be). A line that starts with a quote is kept as written.
std::optional<std::string> ResolveShellCommand(const YamlContext& ctx, const YAML::Node& node,
                                               const std::string& command, std::string_view field);
// `text` as one word for /bin/sh: as is when it holds only safe characters, else quoted.
std::string ShellWord(const std::string& text);

}  // namespace yaml
}  // namespace cairn
