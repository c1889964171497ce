// LoadDefinition: parse, check, build, index, hash.
#include <algorithm>
#include <string>

#include "base/json.h"
#include "base/limits.h"
#include "engine/definition/definition.h"
#include "engine/definition/loader_impl.h"
#include "engine/definition/yaml_source.h"

namespace cairn::engine {
namespace {

using definition_impl::Loader;
using definition_impl::SourceNode;

// YAML nesting allowed for the whole document: every task list level costs at most four
// levels (list, entry, task, catch), and the leaves hold values up to json_depth_max.
constexpr size_t kDocumentDepthMax = 4 * limits::definition_depth_max + limits::json_depth_max + 8;

// Expanded content (scalar bytes plus a little per node) the document may reach through
// aliases; a document without aliases stays far below it.
constexpr uint64_t kExpandedBytesMax = 2 * uint64_t{limits::definition_bytes_max};

void IndexTasks(TaskList& tasks, Definition* definition) {
  for (Task& task : tasks) {
    task.id = static_cast<uint32_t>(definition->tasks.size());
    definition->tasks.push_back(&task);
    if (auto* block = std::get_if<DoBody>(&task.body)) {
      IndexTasks(block->tasks, definition);
    } else if (auto* loop = std::get_if<ForBody>(&task.body)) {
      IndexTasks(loop->tasks, definition);
    } else if (auto* attempt = std::get_if<TryBody>(&task.body)) {
      IndexTasks(attempt->tasks, definition);
      IndexTasks(attempt->catch_.do_, definition);
    }
  }
}

// Letters, digits and '-', 1 to 63 of them, not starting or ending with '-' (the DSL's
// pattern for namespaces and names).
bool IsDnsLabel(std::string_view text) {
  if (text.empty() || text.size() > 63 || text.front() == '-' || text.back() == '-') {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

bool IsSemverIdentifier(std::string_view part, bool numeric_rules) {
  if (part.empty()) return false;
  bool all_digits = true;
  for (char c : part) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    all_digits &= std::isdigit(static_cast<unsigned char>(c)) != 0;
  }
  return !(numeric_rules && all_digits && part.size() > 1 && part[0] == '0');
}

bool IsDotSeparated(std::string_view text, bool numeric_rules) {
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    if (!IsSemverIdentifier(text.substr(start, dot - start), numeric_rules)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Semantic version 2.0.0; `major`/`minor` receive the first two numbers.
bool IsSemver(std::string_view text, uint64_t* major, uint64_t* minor) {
  size_t plus = text.find('+');
  if (plus != std::string_view::npos && !IsDotSeparated(text.substr(plus + 1), false)) {
    return false;
  }
  std::string_view core = text.substr(0, plus);
  size_t dash = core.find('-');
  if (dash != std::string_view::npos && !IsDotSeparated(core.substr(dash + 1), true)) {
    return false;
  }
  core = core.substr(0, dash);
  uint64_t numbers[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    size_t dot = core.find('.');
    std::string_view number = core.substr(0, dot);
    if (number.empty() || number.size() > 9 || (number.size() > 1 && number[0] == '0') ||
        !std::all_of(number.begin(), number.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      return false;
    }
    for (char c : number) numbers[i] = numbers[i] * 10 + static_cast<uint64_t>(c - '0');
    if ((i < 2) == (dot == std::string_view::npos)) return false;
    core = i < 2 ? core.substr(dot + 1) : core;
  }
  *major = numbers[0];
  *minor = numbers[1];
  return true;
}

}  // namespace

namespace definition_impl {

void Diagnostics::Add(SourcePos pos, std::string_view path, std::string_view message) {
  std::string text = source_name_;
  if (pos.line != 0) text += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  text += ": ";
  if (!path.empty()) {
    text += path;
    text += ": ";
  }
  text += message;
  if (seen_.count(text) != 0) return;
  if (lines_.size() >= kErrorsMax) {
    truncated_ = true;
    return;
  }
  seen_.insert(text);
  lines_.push_back(Line{pos, lines_.size(), std::move(text)});
}

Status Diagnostics::ToStatus() const {
  if (lines_.empty()) return Status::Ok();
  std::vector<const Line*> sorted;
  for (const Line& line : lines_) sorted.push_back(&line);
  std::sort(sorted.begin(), sorted.end(), [](const Line* a, const Line* b) {
    if (a->pos.line != b->pos.line) return a->pos.line < b->pos.line;
    if (a->pos.column != b->pos.column) return a->pos.column < b->pos.column;
    return a->order < b->order;
  });
  std::string message;
  for (const Line* line : sorted) {
    if (!message.empty()) message += "\n";
    message += line->text;
  }
  if (truncated_) {
    message += "\n" + source_name_ + ": more errors not shown (stopped after " +
               std::to_string(kErrorsMax) + ")";
  }
  return Status::InvalidArgument(std::move(message));
}

void Loader::LoadDocument(const SourceNode& root, Definition* out) {
  if (!Expect(root, "", SourceNode::Kind::kMapping)) return;
  CheckProperties(root, "", "the workflow",
                  {"document", "input", "use", "do", "timeout", "output", "evaluate"},
                  {{"schedule", "`schedule` is not supported (start runs through cairn's API)"}});
  if (!Require(root, "", "the workflow", {"document", "do"})) {
    if (const SourceNode* header = root.Find("document")) LoadHeader(*header, out);
    return;
  }
  LoadHeader(*root.Find("document"), out);
  if (const SourceNode* use = root.Find("use")) LoadUse(*use, out);
  if (const SourceNode* evaluate = root.Find("evaluate")) LoadEvaluate(*evaluate);
  if (const SourceNode* input = root.Find("input")) {
    auto filter = ParseDataFilter(*input, "/input", "the workflow input", "from",
                                  Place::kWorkflowInputFrom, Scope{});
    if (filter) out->input = std::move(*filter);
  }
  if (const SourceNode* output = root.Find("output")) {
    auto filter = ParseDataFilter(*output, "/output", "the workflow output", "as",
                                  Place::kWorkflowOutputAs, Scope{});
    if (filter) out->output = std::move(*filter);
  }
  if (const SourceNode* timeout = root.Find("timeout")) {
    out->timeout = ParseTimeout(*timeout, "/timeout");
  }
  out->do_ = ParseTaskList(*root.Find("do"), "/do", Scope{}, 1);
  CheckUnusedComponents();
}

void Loader::LoadHeader(const SourceNode& node, Definition* out) {
  const std::string path = "/document";
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return;
  CheckProperties(node, path, "document",
                  {"dsl", "namespace", "name", "version", "title", "summary", "tags", "metadata"});
  Require(node, path, "document", {"dsl", "namespace", "name", "version"});
  for (const SourceNode::Entry& entry : node.entries) {
    std::string entry_path = Child(path, entry.key);
    if (entry.key == "tags" || entry.key == "metadata") {
      if (Expect(*entry.value, entry_path, SourceNode::Kind::kMapping)) {
        CheckDepth(*entry.value, entry_path);
      }
      continue;
    }
    auto text = String(*entry.value, entry_path);
    if (!text) continue;
    uint64_t major = 0;
    uint64_t minor = 0;
    if (entry.key == "dsl") {
      if (!IsSemver(*text, &major, &minor)) {
        Error(*entry.value, entry_path, "dsl '" + *text + "' is not a semantic version");
      } else if (major != 1 || minor != 0) {
        Error(*entry.value, entry_path,
              "dsl '" + *text + "' is not supported (expected 1.0.x, e.g. '1.0.3')");
      }
      out->dsl = *text;
    } else if (entry.key == "namespace" || entry.key == "name") {
      if (!IsDnsLabel(*text)) {
        Error(*entry.value, entry_path,
              "invalid " + entry.key + " '" + *text +
                  "' (expected 1 to 63 letters, digits or '-', not starting or ending with "
                  "'-')");
      }
      (entry.key == "name" ? out->name : out->namespace_) = *text;
    } else if (entry.key == "version") {
      if (!IsSemver(*text, &major, &minor)) {
        Error(*entry.value, entry_path,
              "version '" + *text + "' is not a semantic version (expected e.g. '1.0.0')");
      }
      out->version = *text;
    } else if (entry.key == "title") {
      out->title = *text;
    } else if (entry.key == "summary") {
      out->summary = *text;
    }
  }
}

void Loader::LoadEvaluate(const SourceNode& node) {
  const std::string path = "/evaluate";
  if (!Expect(node, path, SourceNode::Kind::kMapping)) return;
  CheckProperties(node, path, "evaluate", {"language", "mode"});
  if (const SourceNode* language = node.Find("language")) {
    auto text = String(*language, Child(path, "language"));
    if (text && *text != "jq") {
      Error(*language, Child(path, "language"),
            "evaluate.language '" + *text + "' is not supported (expected jq)");
    }
  }
  if (const SourceNode* mode = node.Find("mode")) {
    auto text = String(*mode, Child(path, "mode"));
    if (text && *text != "strict") {
      Error(*mode, Child(path, "mode"),
            "evaluate.mode '" + *text + "' is not supported (expected strict)");
    }
  }
}

}  // namespace definition_impl

std::string_view Task::KindName() const {
  static constexpr std::string_view kNames[] = {"do",  "set",   "switch", "call",   "run",
                                                "try", "raise", "wait",   "listen", "for"};
  static_assert(std::size(kNames) == std::variant_size_v<TaskBody>);
  return kNames[body.index()];
}

Result<std::shared_ptr<const Definition>> LoadDefinition(std::string_view text,
                                                         std::string_view source_name,
                                                         const LoadOptions& options) {
  std::string name =
      source_name.empty() ? "definition" : definition_impl::SanitizeUtf8(source_name);
  definition_impl::SourceLimits limits;
  limits.bytes_max = limits::definition_bytes_max;
  limits.nodes_max = limits::definition_nodes_max;
  limits.depth_max = kDocumentDepthMax;
  limits.expanded_bytes_max = kExpandedBytesMax;
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const SourceNode> root,
                         definition_impl::ParseSource(text, name, limits));
  auto definition = std::make_shared<Definition>();
  Loader loader(name, options);
  loader.LoadDocument(*root, definition.get());
  if (!loader.fatal().ok()) return loader.fatal().WithContext(name);
  CAIRN_RETURN_IF_ERROR(loader.diagnostics().ToStatus());
  definition->source_name = name;
  definition->canonical = DumpJson(definition_impl::ToJson(*root));
  definition->hash = Sha256::Of(definition->canonical);
  IndexTasks(definition->do_, definition.get());
  for (auto& [function_name, task] : definition->functions) {
    task.id = static_cast<uint32_t>(definition->tasks.size());
    definition->tasks.push_back(&task);
  }
  return std::shared_ptr<const Definition>(std::move(definition));
}

Result<std::shared_ptr<const Definition>> LoadCanonicalDefinition(std::string_view canonical,
                                                                  const LoadOptions& options) {
  std::string name = "sha256:" + Sha256::Of(canonical).Hex().substr(0, 16);
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Definition> definition,
                         LoadDefinition(canonical, name, options));
  if (definition->canonical != canonical) {
    return Status::InvalidArgument(name +
                                   ": the bytes are a valid definition but not in canonical "
                                   "form (sorted keys, no insignificant whitespace)");
  }
  return definition;
}

}  // namespace cairn::engine
