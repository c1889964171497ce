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
#include "tools/cairn/remote.h"

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
  // Local whatever the address: it needs neither data nor a server.
  SetAction(
      validate, global, [&global, options] { return RunValidate(global, *options); },
      Reach::kRemoteToo);
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

// One applied file: "FILE: applied ns/name:1.0.0 (sha256:...)", or "unchanged ...,
// applied before" (-o json: {"file", "namespace", "name", "version", "hash", "created"}).
void PrintApplied(const GlobalOptions& global, const std::string& file,
                  const std::string& namespace_, const std::string& name,
                  const std::string& version, const std::string& hash, bool created) {
  const std::string label = RefLabel(namespace_, name, version);
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"file", file},
                             {"namespace", namespace_},
                             {"name", name},
                             {"version", version},
                             {"hash", hash},
                             {"created", created}})
                << '\n';
  } else {
    *global.out << file << ": " << (created ? "applied " : "unchanged ") << label
                << " (sha256:" << hash << ")" << (created ? "" : ", applied before") << '\n';
  }
}

// Apply refusals: an invalid definition or another definition under an applied
// namespace/name/version is the data's problem (exit 1); anything else, exit 2.
int ApplyFailureCode(const Status& status) {
  const StatusCode sc = status.code();
  return sc == StatusCode::kInvalidArgument || sc == StatusCode::kAlreadyExists ? kExitFailed
                                                                                : kExitError;
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
      code = Fail(global, ref.status().WithContext(c.file), ApplyFailureCode(ref.status()));
      continue;
    }
    const std::string label = RefLabel(ref->namespace_, ref->name, ref->version);
    const bool created = known.insert(label + " " + ref->hash.Hex()).second;
    PrintApplied(global, c.file, ref->namespace_, ref->name, ref->version, ref->hash.Hex(),
                 created);
  }
  return code;
}

// Remote mode: POST /v1/workflows per file. The server checks `call:` names against its
// own catalog; the files were checked here as far as that can be done without it.
int RemoteApplyAll(const GlobalOptions& global, const std::vector<Checked>& checked) {
  auto client = ConnectRemote(global);
  if (!client.ok()) return Fail(global, client.status());
  auto listed = (*client)->Get("/v1/workflows");
  if (!listed.ok()) return Fail(global, listed.status().WithContext("listing workflows"));
  std::set<std::string> known;  // as ApplyAll
  for (const Json& w : (*listed)["workflows"]) {
    known.insert(RefLabel(JsonText(w, "namespace"), JsonText(w, "name"), JsonText(w, "version")) +
                 " " + JsonText(w, "hash"));
  }
  int code = kExitOk;
  for (const Checked& c : checked) {
    auto ref = (*client)->Call("POST", "/v1/workflows", c.text, "application/yaml");
    if (!ref.ok()) {
      // The server names the definition "request body"; here it is the file.
      std::string message = ref.status().message();
      for (size_t at = message.find("request body:"); at != std::string::npos;
           at = message.find("request body:", at + c.file.size())) {
        message.replace(at, std::string_view("request body").size(), c.file);
      }
      // 409: another definition under an applied version (kAlreadyExists embedded).
      const Status refused(ref.status().code() == StatusCode::kFailedPrecondition
                               ? StatusCode::kAlreadyExists
                               : ref.status().code(),
                           c.file + ": " + message);
      code = Fail(global, refused, ApplyFailureCode(refused));
      continue;
    }
    const std::string ns = JsonText(*ref, "namespace");
    const std::string name = JsonText(*ref, "name");
    const std::string version = JsonText(*ref, "version");
    const std::string hash = JsonText(*ref, "hash");
    const bool created = known.insert(RefLabel(ns, name, version) + " " + hash).second;
    PrintApplied(global, c.file, ns, name, version, hash, created);
  }
  return code;
}

int RunApply(const GlobalOptions& global, const FilesOptions& options) {
  // Remote: the server's catalog is the one that counts, not a local one.
  auto tools =
      IsRemote(global) ? Result<LoadedCatalog>(LoadedCatalog{}) : LoadCatalogOrFail(global);
  if (!tools.ok()) return Fail(global, tools.status());
  // Every file is checked before anything is stored: an invalid one stores none.
  const std::vector<Checked> checked = CheckFiles(global, options.files, *tools);
  if (int code = ReportInvalid(global, checked); code != kExitOk) {
    *global.err << "cairn: nothing applied\n";
    return code;
  }
  if (IsRemote(global)) return RemoteApplyAll(global, checked);
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
  SetAction(
      apply, global, [&global, options] { return RunApply(global, *options); }, Reach::kRemoteToo);
}

// ---- workflow list ----

// The applied versions as {"namespace", "name", "version", "hash", "applied"} (the form
// of GET /v1/workflows), from the data directory or the server.
Result<std::vector<Json>> ListVersions(const GlobalOptions& global, std::string* where) {
  std::vector<Json> out;
  if (IsRemote(global)) {
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<serve::Client> client, ConnectRemote(global));
    *where = client->address().url;
    CAIRN_ASSIGN_OR_RETURN(Json listed, client->Get("/v1/workflows"));
    for (Json& w : listed["workflows"]) out.push_back(std::move(w));
    return out;
  }
  *where = global.data_dir;
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store, OpenStoreReadOnly(global));
  auto versions = store->ListWorkflowVersions();
  if (!versions.ok()) return versions.status().WithContext("listing workflows in " + *where);
  for (const storage::WorkflowVersion& v : *versions) {
    out.push_back({{"namespace", v.namespace_},
                   {"name", v.name},
                   {"version", v.version},
                   {"hash", v.hash.Hex()},
                   {"applied", storage::FormatTimeRfc3339(v.applied_at_ns)}});
  }
  return out;
}

int RunListWorkflows(const GlobalOptions& global) {
  std::string where;
  auto versions = ListVersions(global, &where);
  if (!versions.ok()) return Fail(global, versions.status());
  if (global.output == OutputFormat::kJson) {
    for (const Json& v : *versions) *global.out << JsonLine(v) << '\n';
    return kExitOk;
  }
  if (versions->empty()) {
    *global.err << "no workflows in " << where << " ('cairn workflow apply FILE' adds one)\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const Json& v : *versions) {
    rows.push_back({RefLabel(JsonText(v, "namespace"), JsonText(v, "name"), ""),
                    JsonText(v, "version"), "sha256:" + JsonText(v, "hash"),
                    JsonText(v, "applied").substr(0, 19) + "Z"});
  }
  PrintTable(*global.out, {"WORKFLOW", "VERSION", "HASH", "APPLIED"}, rows);
  return kExitOk;
}

void AddList(CLI::App& workflow, GlobalOptions& global) {
  CLI::App* list = workflow.add_subcommand(
      "list", "List applied workflow versions: name, version, hash, when applied");
  SetAction(
      list, global, [&global] { return RunListWorkflows(global); }, Reach::kRemoteToo);
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
