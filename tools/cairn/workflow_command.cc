#include "tools/cairn/workflow_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/limits.h"
#include "engine/definition/definition.h"
#include "storage/event_json.h"

namespace cairn::cli {
namespace {

struct FilesOptions {
  std::vector<std::string> files;
};

// "namespace/name:version"
std::string RefLabel(std::string_view namespace_, std::string_view name, std::string_view version) {
  std::string label =
      namespace_.empty() ? std::string(name) : std::string(namespace_) + "/" + std::string(name);
  if (!version.empty()) label += ":" + std::string(version);
  return label;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

engine::LoadOptions LoadOptionsFor(const LoadedCatalog& tools) {
  engine::LoadOptions options;
  if (!tools.source.empty()) {
    options.tool_exists = [&tools](std::string_view name) { return tools.catalog.Contains(name); };
  }
  return options;
}

Result<LoadedCatalog> LoadCatalogOrFail(const GlobalOptions& global) {
  auto tools = LoadToolCatalog(global);
  if (!tools.ok()) {
    // A catalog's problems come one per line; the CLI's errors are one line.
    std::string message;
    for (const std::string& line : Lines(tools.status().message())) {
      message += (message.empty() ? "" : "; ") + line;
    }
    return Status(tools.status().code(), "tool catalog: " + message);
  }
  return tools;
}

// ---- workflow validate ----

struct Checked {
  std::string file;
  std::string text;
  bool readable = false;
  std::shared_ptr<const engine::Definition> definition;  // null when invalid
  std::vector<std::string> problems;
};

// Reads and loads every file; an unreadable one is reported on stderr at once.
std::vector<Checked> CheckFiles(const GlobalOptions& global, const std::vector<std::string>& files,
                                const LoadedCatalog& tools) {
  std::vector<Checked> checked;
  const engine::LoadOptions options = LoadOptionsFor(tools);
  for (const std::string& file : files) {
    Checked c;
    c.file = file;
    auto text = ReadTextFile(file, "workflow", limits::definition_bytes_max);
    if (!text.ok()) {
      Fail(global, text.status());
      checked.push_back(std::move(c));
      continue;
    }
    c.readable = true;
    c.text = std::move(text).value();
    auto definition = engine::LoadDefinition(c.text, file, options);
    if (definition.ok()) {
      c.definition = std::move(definition).value();
    } else {
      c.problems = Lines(definition.status().message());
    }
    checked.push_back(std::move(c));
  }
  return checked;
}

nlohmann::json CheckedToJson(const Checked& c) {
  if (c.definition) {
    const engine::Definition& d = *c.definition;
    return {{"file", c.file},
            {"ok", true},
            {"namespace", d.namespace_},
            {"name", d.name},
            {"version", d.version},
            {"hash", d.hash.Hex()},
            {"problems", nlohmann::json::array()}};
  }
  return {{"file", c.file}, {"ok", false}, {"problems", c.problems}};
}

int RunValidate(const GlobalOptions& global, const FilesOptions& options) {
  auto tools = LoadCatalogOrFail(global);
  if (!tools.ok()) return Fail(global, tools.status());
  const std::vector<Checked> checked = CheckFiles(global, options.files, *tools);
  int code = kExitOk;
  for (const Checked& c : checked) {
    if (!c.readable) {
      code = kExitError;
      continue;
    }
    if (!c.definition && code == kExitOk) code = kExitFailed;
    if (global.output == OutputFormat::kJson) {
      *global.out << JsonLine(CheckedToJson(c)) << '\n';
    } else if (c.definition) {
      const engine::Definition& d = *c.definition;
      *global.out << c.file << ": ok (" << RefLabel(d.namespace_, d.name, d.version)
                  << ", sha256:" << d.hash.Hex() << ")\n";
    } else {
      for (const std::string& line : c.problems) *global.out << line << '\n';
    }
  }
  return code;
}

void AddValidate(CLI::App& workflow, GlobalOptions& global) {
  auto options = std::make_shared<FilesOptions>();
  CLI::App* validate = workflow.add_subcommand(
      "validate",
      "Check workflow definitions (YAML or JSON) without storing them; exit 1 if one is "
      "invalid");
  validate->add_option("files", options->files, "Definition files")
      ->type_name("FILE...")
      ->required();
  SetAction(validate, global, [&global, options] { return RunValidate(global, *options); });
}

// ---- workflow apply ----

// Prints every problem of the invalid files as "cairn: FILE:LINE:COL: ..." lines;
// returns the exit code so far.
int ReportInvalid(const GlobalOptions& global, const std::vector<Checked>& checked) {
  int code = kExitOk;
  for (const Checked& c : checked) {
    if (!c.readable) {
      code = kExitError;
    } else if (!c.definition) {
      for (const std::string& line : c.problems) Fail(global, line);
      if (code == kExitOk) code = kExitFailed;
    }
  }
  return code;
}

int ApplyAll(const GlobalOptions& global, engine::Engine& engine,
             const std::vector<Checked>& checked) {
  std::set<std::string> known;  // hashes applied under the same namespace/name/version
  auto existing = engine.ListWorkflows();
  if (!existing.ok()) return Fail(global, existing.status().WithContext("listing workflows"));
  for (const engine::WorkflowRef& ref : *existing) {
    known.insert(RefLabel(ref.namespace_, ref.name, ref.version) + " " + ref.hash.Hex());
  }
  int code = kExitOk;
  for (const Checked& c : checked) {
    auto ref = engine.ApplyDefinition(c.text, c.file);
    if (!ref.ok()) {
      const StatusCode sc = ref.status().code();
      code =
          Fail(global, ref.status().WithContext(c.file),
               sc == StatusCode::kInvalidArgument || sc == StatusCode::kAlreadyExists ? kExitFailed
                                                                                      : kExitError);
      continue;
    }
    const std::string label = RefLabel(ref->namespace_, ref->name, ref->version);
    const bool created = known.insert(label + " " + ref->hash.Hex()).second;
    if (global.output == OutputFormat::kJson) {
      *global.out << JsonLine({{"file", c.file},
                               {"namespace", ref->namespace_},
                               {"name", ref->name},
                               {"version", ref->version},
                               {"hash", ref->hash.Hex()},
                               {"created", created}})
                  << '\n';
    } else {
      *global.out << c.file << ": " << (created ? "applied " : "unchanged ") << label
                  << " (sha256:" << ref->hash.Hex() << ")" << (created ? "" : ", applied before")
                  << '\n';
    }
  }
  return code;
}

int RunApply(const GlobalOptions& global, const FilesOptions& options) {
  auto tools = LoadCatalogOrFail(global);
  if (!tools.ok()) return Fail(global, tools.status());
  // Every file is checked before anything is stored: an invalid one stores none.
  const std::vector<Checked> checked = CheckFiles(global, options.files, *tools);
  if (int code = ReportInvalid(global, checked); code != kExitOk) {
    *global.err << "cairn: nothing applied\n";
    return code;
  }
  auto engine =
      OpenEngine(global, *tools, EngineUse::kRecord, /*must_exist=*/false, "cairn workflow apply");
  if (!engine.ok()) return Fail(global, engine.status());
  const int code = ApplyAll(global, **engine, checked);
  global.out->flush();
  Status closed = (*engine)->Close();
  if (!closed.ok()) return Fail(global, closed.WithContext("closing " + global.data_dir));
  return code;
}

void AddApply(CLI::App& workflow, GlobalOptions& global) {
  auto options = std::make_shared<FilesOptions>();
  CLI::App* apply = workflow.add_subcommand(
      "apply",
      "Store workflow definitions in the data directory (creating it) and make each the "
      "newest version of its name; idempotent");
  apply->add_option("files", options->files, "Definition files")->type_name("FILE...")->required();
  SetAction(apply, global, [&global, options] { return RunApply(global, *options); });
}

// ---- workflow list ----

int RunListWorkflows(const GlobalOptions& global) {
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  auto versions = (*store)->ListWorkflowVersions();
  if (!versions.ok()) {
    return Fail(global, versions.status().WithContext("listing workflows in " + global.data_dir));
  }
  if (global.output == OutputFormat::kJson) {
    for (const storage::WorkflowVersion& v : *versions) {
      *global.out << JsonLine({{"namespace", v.namespace_},
                               {"name", v.name},
                               {"version", v.version},
                               {"hash", v.hash.Hex()},
                               {"applied", storage::FormatTimeRfc3339(v.applied_at_ns)}})
                  << '\n';
    }
    return kExitOk;
  }
  if (versions->empty()) {
    *global.err << "no workflows in " << global.data_dir
                << " ('cairn workflow apply FILE' adds one)\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const storage::WorkflowVersion& v : *versions) {
    rows.push_back({RefLabel(v.namespace_, v.name, ""), v.version, "sha256:" + v.hash.Hex(),
                    storage::FormatTimeRfc3339(v.applied_at_ns).substr(0, 19) + "Z"});
  }
  PrintTable(*global.out, {"WORKFLOW", "VERSION", "HASH", "APPLIED"}, rows);
  return kExitOk;
}

void AddList(CLI::App& workflow, GlobalOptions& global) {
  CLI::App* list = workflow.add_subcommand(
      "list", "List applied workflow versions: name, version, hash, when applied");
  SetAction(list, global, [&global] { return RunListWorkflows(global); });
}

}  // namespace

void AddWorkflowCommand(CLI::App& app, GlobalOptions& global) {
  CLI::App* workflow =
      app.add_subcommand("workflow", "Validate, apply and list workflow definitions");
  workflow->require_subcommand(1);
  AddValidate(*workflow, global);
  AddApply(*workflow, global);
  AddList(*workflow, global);
}

}  // namespace cairn::cli
