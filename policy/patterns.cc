// The selectors of rules and kill switches: parsing and matching (pure).
#include <algorithm>
#include <string>

#include "policy/policy_data.h"

namespace cairn::policy {
namespace {

constexpr size_t kPatternBytesMax = 256;

constexpr const char* kWorkflowForms =
    " (expected namespace/name, name, namespace/*, a name prefix ending in '*' such as "
    "billing/plan-*, or *)";
constexpr const char* kToolForms =
    " (expected an exact tool name, a prefix ending in '*' such as billing.*, or *)";

// Control characters and spaces never belong in a name.
bool HasBadCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

// Why `text` is not a pattern at all (empty, too long, bad characters, a misplaced '*'), or
// "" when its shape is fine.
std::string ShapeProblem(std::string_view text) {
  if (text.empty()) return "an empty pattern";
  if (text.size() > kPatternBytesMax) {
    return "a pattern of " + std::to_string(text.size()) + " bytes (at most " +
           std::to_string(kPatternBytesMax) + ")";
  }
  if (HasBadCharacter(text)) return "a pattern with spaces or control characters";
  const size_t star = text.find('*');
  if (star != std::string_view::npos && star + 1 != text.size()) {
    return "'" + std::string(text) + "': '*' may only end a pattern";
  }
  return "";
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

bool WorkflowPattern::Matches(std::string_view workflow_namespace,
                              std::string_view workflow_name) const {
  if (!namespace_.empty() && workflow_namespace != namespace_) return false;
  return prefix ? StartsWith(workflow_name, name) : workflow_name == name;
}

bool ToolPattern::Matches(std::string_view tool) const {
  return prefix ? StartsWith(tool, text) : tool == text;
}

std::optional<WorkflowPattern> ParseWorkflowPattern(std::string_view text, std::string* why) {
  std::string problem = ShapeProblem(text);
  const size_t slash = text.find('/');
  if (problem.empty() && slash != std::string_view::npos) {
    if (text.find('/', slash + 1) != std::string_view::npos) {
      problem = "'" + std::string(text) + "': more than one '/'";
    } else if (slash == 0) {
      problem = "'" + std::string(text) + "': the namespace before '/' is empty";
    } else if (slash + 1 == text.size()) {
      problem = "'" + std::string(text) + "': the name after '/' is empty";
    }
  }
  if (!problem.empty()) {
    *why = "not a workflow pattern: " + problem + kWorkflowForms;
    return std::nullopt;
  }
  WorkflowPattern pattern;
  pattern.text = std::string(text);
  std::string_view name = text;
  if (slash != std::string_view::npos) {
    pattern.namespace_ = std::string(text.substr(0, slash));
    name = text.substr(slash + 1);
  }
  pattern.prefix = !name.empty() && name.back() == '*';
  if (pattern.prefix) name.remove_suffix(1);
  pattern.name = std::string(name);
  return pattern;
}

std::optional<ToolPattern> ParseToolPattern(std::string_view text, std::string* why) {
  const std::string problem = ShapeProblem(text);
  if (!problem.empty()) {
    *why = "not a tool pattern: " + problem + kToolForms;
    return std::nullopt;
  }
  ToolPattern pattern;
  pattern.prefix = text.back() == '*';
  pattern.text = std::string(pattern.prefix ? text.substr(0, text.size() - 1) : text);
  return pattern;
}

}  // namespace cairn::policy
