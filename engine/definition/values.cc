// Loader: typed property access, runtime expressions, templates, durations and schemas.
#include <algorithm>
#include <cctype>
#include <string>

#include "base/limits.h"
#include "engine/definition/duration.h"
#include "engine/definition/loader_impl.h"
#include "engine/expr/expression.h"
#include "engine/schema/json_schema.h"

namespace cairn::engine::definition_impl {
namespace {

constexpr size_t kIdentifierBytesMax = 128;
constexpr size_t kQuotedExpressionBytes = 80;

// Variables the runtime binds itself: a loop or catch variable may not shadow them.
constexpr std::string_view kReservedVariables[] = {
    "context", "input",    "output",  "secrets", "authorization",
    "task",    "workflow", "runtime", "ENV",     "__loc__",
};
// jq keywords cannot name a variable.
constexpr std::string_view kJqKeywords[] = {
    "and",    "as",      "catch", "def", "elif", "else",   "end",  "foreach", "if",
    "import", "include", "label", "not", "or",   "reduce", "then", "try",
};

std::string JoinList(Properties names) {
  std::vector<std::string_view> sorted(names.begin(), names.end());
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  for (std::string_view name : sorted) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

bool MentionsVariable(std::string_view text, std::string_view name) {
  std::string needle = "$" + std::string(name);
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + 1)) {
    size_t end = at + needle.size();
    if (end == text.size()) return true;
    char c = text[end];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return true;
  }
  return false;
}

std::string QuoteExpression(std::string_view text) {
  if (text.size() <= kQuotedExpressionBytes) return "`" + std::string(text) + "`";
  return "`" + std::string(text.substr(0, kQuotedExpressionBytes)) + "...`";
}

std::string VariableList(const std::vector<std::string>& variables) {
  std::string out;
  for (const std::string& name : variables) {
    if (!out.empty()) out += ", ";
    out += "$" + name;
  }
  return out;
}

}  // namespace

std::string Child(std::string_view path, std::string_view key) {
  return std::string(path) + "/" + EscapePointerToken(key);
}

std::string Child(std::string_view path, size_t index) {
  return std::string(path) + "/" + std::to_string(index);
}

void Loader::Error(SourcePos pos, std::string_view path, std::string_view message) {
  ++error_count_;
  diagnostics_.Add(pos, path, message);
}

bool Loader::Expect(const SourceNode& node, std::string_view path, SourceNode::Kind kind) {
  if (node.kind == kind) return true;
  std::string_view expected = kind == SourceNode::Kind::kMapping    ? "a mapping"
                              : kind == SourceNode::Kind::kSequence ? "a sequence"
                                                                    : "a scalar";
  Error(node, path,
        "expected " + std::string(expected) + ", got " + std::string(DescribeNode(node)));
  return false;
}

std::optional<std::string> Loader::String(const SourceNode& node, std::string_view path) {
  if (node.IsString()) return node.scalar.get<std::string>();
  std::string message = "expected a string, got " + std::string(DescribeNode(node));
  if (node.kind == SourceNode::Kind::kScalar && !node.IsNull()) {
    message += " (quote it: '" + DumpJson(node.scalar) + "')";
  }
  Error(node, path, message);
  return std::nullopt;
}

std::optional<bool> Loader::Bool(const SourceNode& node, std::string_view path) {
  if (node.kind == SourceNode::Kind::kScalar && node.scalar.is_boolean()) {
    return node.scalar.get<bool>();
  }
  Error(node, path, "expected a boolean, got " + std::string(DescribeNode(node)));
  return std::nullopt;
}

std::optional<std::string> Loader::Identifier(const SourceNode& node, std::string_view path) {
  auto name = String(node, path);
  if (!name) return std::nullopt;
  bool valid = !name->empty() && name->size() <= kIdentifierBytesMax &&
               !std::isdigit(static_cast<unsigned char>((*name)[0])) &&
               std::all_of(name->begin(), name->end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
               });
  if (!valid) {
    Error(node, path,
          "'" + *name +
              "' is not a valid variable name (expected letters, digits and _, "
              "not starting with a digit, at most 128 bytes)");
    return std::nullopt;
  }
  for (std::string_view reserved : kReservedVariables) {
    if (*name == reserved) {
      Error(node, path,
            "'" + *name + "' would hide the runtime's $" + *name + " (choose another name)");
      return std::nullopt;
    }
  }
  for (std::string_view keyword : kJqKeywords) {
    if (*name == keyword) {
      Error(node, path, "'" + *name + "' is a jq keyword and cannot name a variable");
      return std::nullopt;
    }
  }
  if (name->rfind("__cairn", 0) == 0) {
    Error(node, path, "names starting with __cairn are reserved");
    return std::nullopt;
  }
  return name;
}

bool Loader::CheckProperties(const SourceNode& map, std::string_view path, std::string_view what,
                             Properties allowed, Refusals refused) {
  bool ok = true;
  for (const SourceNode::Entry& entry : map.entries) {
    if (std::find(allowed.begin(), allowed.end(), entry.key) != allowed.end()) continue;
    ok = false;
    std::string where = Child(path, entry.key);
    auto refusal = std::find_if(refused.begin(), refused.end(),
                                [&](const auto& r) { return r.first == entry.key; });
    if (refusal != refused.end()) {
      Error(entry.key_pos, where, refusal->second);
      continue;
    }
    Error(entry.key_pos, where,
          "unknown property '" + entry.key + "' in " + std::string(what) +
              " (expected one of: " + JoinList(allowed) + ")");
  }
  return ok;
}

bool Loader::Require(const SourceNode& map, std::string_view path, std::string_view what,
                     Properties required) {
  bool ok = true;
  for (std::string_view key : required) {
    if (map.FindEntry(key) != nullptr) continue;
    Error(map, path, std::string(what) + " is missing its '" + std::string(key) + "' property");
    ok = false;
  }
  return ok;
}

bool Loader::CheckDepth(const SourceNode& node, std::string_view path) {
  if (node.height <= limits::json_depth_max) return true;
  Error(node, path,
        "value nests " + std::to_string(node.height) + " levels deep (at most " +
            std::to_string(limits::json_depth_max) + ")");
  return false;
}

std::vector<std::string> Loader::Variables(Place place, const Scope& scope) const {
  std::vector<std::string> names;
  switch (place) {
    case Place::kWorkflowInputFrom:
      names = {"workflow", "runtime"};
      break;
    case Place::kWorkflowOutputAs:
      names = {"context", "workflow", "runtime"};
      break;
    case Place::kTaskIf:
    case Place::kTaskInputFrom:
      names = {"context", "task", "workflow", "runtime"};
      break;
    case Place::kTaskBody:
    case Place::kTaskOutputAs:
      names = {"context", "input", "task", "workflow", "runtime"};
      break;
    case Place::kTaskExportAs:
      names = {"context", "input", "output", "task", "workflow", "runtime"};
      break;
  }
  for (const std::string& name : scope.names) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

void Loader::CheckExpressionText(const SourceNode& at, std::string_view path, std::string_view text,
                                 const std::vector<std::string>& variables) {
  if (text.size() > limits::expression_bytes_max) {
    Error(at, path,
          "expression is " + std::to_string(text.size()) + " bytes (at most " +
              std::to_string(limits::expression_bytes_max) + ")");
    return;
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    Error(at, path, "empty runtime expression");
    return;
  }
  if (MentionsVariable(text, "secrets")) {
    Error(at, path,
          "expression " + QuoteExpression(text) +
              " uses $secrets, which is not supported (cairn has no secret store: pass "
              "values in the input or let a tool read them)");
    return;
  }
  if (MentionsVariable(text, "authorization")) {
    Error(at, path,
          "expression " + QuoteExpression(text) +
              " uses $authorization, which is not supported (authentication policies "
              "are not supported)");
    return;
  }
  std::string key = std::string(text);
  key += '\0';
  key += VariableList(variables);
  auto cached = expression_cache_.find(key);
  if (cached == expression_cache_.end()) {
    cached = expression_cache_
                 .emplace(key, options_.evaluator != nullptr
                                   ? options_.evaluator->Check(text, variables)
                                   : CheckExpression(text, variables))
                 .first;
  }
  if (!cached->second.ok() && cached->second.code() != StatusCode::kInvalidArgument) {
    // Not the expression's fault (e.g. $HOME/.jq exists): the load fails with this status.
    if (fatal_.ok()) fatal_ = cached->second;
    return;
  }
  if (!cached->second.ok()) {
    Error(at, path,
          "invalid expression " + QuoteExpression(text) + ": " + cached->second.message() +
              " (variables here: " + VariableList(variables) + ")");
  }
}

void Loader::CheckImplicit(const SourceNode& node, std::string_view path,
                           const std::vector<std::string>& variables) {
  if (node.IsString()) {
    const std::string& text = node.scalar.get_ref<const std::string&>();
    CheckExpressionText(node, path, StripRuntimeExpression(text), variables);
    return;
  }
  if (CheckDepth(node, path)) CheckTemplate(node, path, variables);
}

void Loader::CheckTemplate(const SourceNode& node, std::string_view path,
                           const std::vector<std::string>& variables) {
  switch (node.kind) {
    case SourceNode::Kind::kScalar:
      if (node.IsString()) {
        const std::string& text = node.scalar.get_ref<const std::string&>();
        if (IsRuntimeExpression(text)) {
          CheckExpressionText(node, path, StripRuntimeExpression(text), variables);
        }
      }
      return;
    case SourceNode::Kind::kSequence:
      for (size_t i = 0; i < node.items.size(); ++i) {
        CheckTemplate(*node.items[i], Child(path, i), variables);
      }
      return;
    case SourceNode::Kind::kMapping:
      for (const SourceNode::Entry& entry : node.entries) {
        CheckTemplate(*entry.value, Child(path, entry.key), variables);
      }
      return;
  }
}

std::optional<Template> Loader::TemplateValue(const SourceNode& node, std::string_view path,
                                              const std::vector<std::string>& variables) {
  if (!CheckDepth(node, path)) return std::nullopt;
  CheckTemplate(node, path, variables);
  return ToJson(node);
}

std::optional<Json> Loader::LiteralValue(const SourceNode& node, std::string_view path) {
  if (!CheckDepth(node, path)) return std::nullopt;
  return ToJson(node);
}

std::optional<Duration> Loader::ParseDuration(const SourceNode& node, std::string_view path,
                                              uint64_t ms_max) {
  Result<uint64_t> ms = Status::InvalidArgument("");
  if (node.IsString()) {
    const std::string& text = node.scalar.get_ref<const std::string&>();
    if (IsRuntimeExpression(text)) {
      Error(node, path,
            "a duration given as a runtime expression is not supported (give ISO 8601 "
            "text such as PT30S, or {days, hours, minutes, seconds, milliseconds})");
      return std::nullopt;
    }
    ms = ParseIsoDuration(text, ms_max);
  } else if (node.IsMapping()) {
    if (!CheckDepth(node, path)) return std::nullopt;
    ms = DurationFromObject(ToJson(node), ms_max);
  } else {
    Error(node, path,
          "expected a duration (ISO 8601 text or {days, hours, minutes, seconds, "
          "milliseconds}), got " +
              std::string(DescribeNode(node)));
    return std::nullopt;
  }
  if (!ms.ok()) {
    Error(node, path, ms.status().message());
    return std::nullopt;
  }
  return Duration{*ms};
}

std::optional<SchemaSpec> Loader::ParseSchema(const SourceNode& node, std::string_view path) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  bool ok = CheckProperties(
      node, path, "schema", {"format", "document"},
      {{"resource",
        "external schemas (schema.resource) are not supported: inline the schema as "
        "`document`"}});
  if (const SourceNode* format = node.Find("format")) {
    auto text = String(*format, Child(path, "format"));
    if (text && *text != "json") {
      Error(*format, Child(path, "format"),
            "schema format '" + *text + "' is not supported (expected json)");
      ok = false;
    }
  }
  const SourceNode* document = node.Find("document");
  if (document == nullptr) {
    if (node.Find("resource") == nullptr) {
      Error(node, path, "schema is missing its 'document' property");
    }
    return std::nullopt;
  }
  std::string document_path = Child(path, "document");
  if (!document->IsMapping() &&
      !(document->kind == SourceNode::Kind::kScalar && document->scalar.is_boolean())) {
    Error(*document, document_path,
          "expected a JSON Schema (a mapping or a boolean), got " +
              std::string(DescribeNode(*document)));
    return std::nullopt;
  }
  auto json = LiteralValue(*document, document_path);
  if (!json) return std::nullopt;
  Result<CompiledSchema> compiled = CompiledSchema::Compile(*json);
  if (!compiled.ok()) {
    Error(*document, document_path, "invalid schema: " + compiled.status().message());
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  return SchemaSpec{std::move(*json), std::move(compiled).value()};
}

std::optional<DataFilter> Loader::ParseDataFilter(const SourceNode& node, std::string_view path,
                                                  std::string_view what,
                                                  std::string_view transform_key, Place place,
                                                  const Scope& scope) {
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return std::nullopt;
  bool ok = CheckProperties(node, path, what, {"schema", transform_key});
  DataFilter filter;
  if (const SourceNode* schema = node.Find("schema")) {
    auto spec = ParseSchema(*schema, Child(path, "schema"));
    if (spec) {
      filter.schema = std::move(*spec);
    } else {
      ok = false;
    }
  }
  if (const SourceNode* transform = node.Find(transform_key)) {
    std::string transform_path = Child(path, transform_key);
    if (!transform->IsString() && !transform->IsMapping()) {
      Error(*transform, transform_path,
            "expected a runtime expression (a string) or an object template, got " +
                std::string(DescribeNode(*transform)));
      return std::nullopt;
    }
    size_t errors_before = error_count_;
    CheckImplicit(*transform, transform_path, Variables(place, scope));
    if (error_count_ != errors_before) return std::nullopt;
    filter.transform = ToJson(*transform);
  }
  if (!ok) return std::nullopt;
  return filter;
}

}  // namespace cairn::engine::definition_impl
