#include "tools/cairn/policy_command.h"

#include <CLI/CLI.hpp>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/limits.h"
#include "engine/core/engine.h"
#include "policy/policy.h"

namespace cairn::cli {
namespace {

// --arguments: one JSON document, as large as a run's data may be.
constexpr size_t kArgumentsBytesMax = limits::run_data_bytes_max;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// "1d2h", "90s", "500ms": the largest units first, as policy files write durations.
std::string FormatDuration(uint64_t ms) {
  if (ms == 0) return "0";
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  std::string text;
  for (const auto& [size, unit] : kUnits) {
    if (ms >= size) {
      text += std::to_string(ms / size) + unit;
      ms %= size;
    }
  }
  return text;
}

// A policy file read and loaded; `exit_code` says why not when `policy` is null (the
// problems are already on stderr).
struct Loaded {
  std::shared_ptr<const policy::Policy> policy;
  std::vector<std::string> problems;
  int exit_code = kExitOk;
};

// Reads `file` (an unreadable one: kExitError) and loads it (an invalid one: kExitFailed,
// each problem as a "cairn: FILE:LINE:COL: ..." line on stderr).
Loaded LoadPolicyFile(const GlobalOptions& global, const std::string& file) {
  Loaded loaded;
  auto text = ReadTextFile(file, "policy", limits::policy_bytes_max);
  if (!text.ok()) {
    loaded.exit_code = Fail(global, text.status());
    return loaded;
  }
  auto policy = policy::Policy::Load(*text, file);
  if (!policy.ok()) {
    loaded.problems = Lines(policy.status().message());
    for (const std::string& line : loaded.problems) Fail(global, line);
    loaded.exit_code = kExitFailed;
    return loaded;
  }
  loaded.policy = std::move(policy).value();
  return loaded;
}

// ---- policy validate ----

struct ValidateOptions {
  std::vector<std::string> files;
};

int RunValidate(const GlobalOptions& global, const ValidateOptions& options) {
  int code = kExitOk;
  for (const std::string& file : options.files) {
    const Loaded loaded = LoadPolicyFile(global, file);
    if (loaded.exit_code == kExitError) {
      code = kExitError;
      continue;
    }
    if (!loaded.policy && code == kExitOk) code = kExitFailed;
    if (global.output == OutputFormat::kJson) {
      nlohmann::json line = {{"file", file}, {"ok", loaded.policy != nullptr}};
      if (loaded.policy) {
        line["name"] = loaded.policy->name();
        line["rules"] = loaded.policy->rule_count();
        line["hash"] = loaded.policy->hash().Hex();
      }
      line["problems"] = loaded.problems;
      *global.out << JsonLine(line) << '\n';
    } else if (loaded.policy) {
      const size_t rules = loaded.policy->rule_count();
      *global.out << file << ": ok \u2014 " << rules << (rules == 1 ? " rule" : " rules")
                  << ", policy sha256:" << loaded.policy->hash().Hex() << '\n';
    }
  }
  return code;
}

void AddValidate(CLI::App& group, GlobalOptions& global) {
  auto options = std::make_shared<ValidateOptions>();
  CLI::App* validate = group.add_subcommand(
      "validate", "Check policy files; exit 1 if one is invalid (its problems on stderr)");
  validate->add_option("files", options->files, "Policy files (YAML)")
      ->type_name("FILE...")
      ->required();
  SetAction(validate, global, [&global, options] { return RunValidate(global, *options); });
}

// ---- policy apply / show ----

struct ApplyOptions {
  std::string file;
};

int RunApplyPolicy(const GlobalOptions& global, const ApplyOptions& options) {
  const Loaded loaded = LoadPolicyFile(global, options.file);
  if (!loaded.policy) {
    *global.err << "cairn: nothing applied\n";
    return loaded.exit_code == kExitError ? kExitError : kExitFailed;
  }
  auto tools = LoadToolCatalog(global);
  if (!tools.ok()) return Fail(global, tools.status());
  auto engine =
      OpenEngine(global, *tools, EngineUse::kRecord, /*must_exist=*/false, "cairn policy apply");
  if (!engine.ok()) return Fail(global, engine.status());
  Result<Sha256> applied = (*engine)->ApplyPolicy(loaded.policy->text(), options.file);
  Status closed = (*engine)->Close();
  if (!applied.ok()) return Fail(global, applied.status());
  if (!closed.ok()) return Fail(global, closed.WithContext("closing " + global.data_dir));
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"file", options.file},
                             {"hash", applied->Hex()},
                             {"rules", loaded.policy->rule_count()}})
                << '\n';
  } else {
    *global.out << options.file << ": applied policy sha256:" << applied->Hex()
                << " (new runs are governed by it; runs already started keep theirs)\n";
  }
  return kExitOk;
}

int RunShowPolicy(const GlobalOptions& global) {
  auto tools = LoadToolCatalog(global);
  if (!tools.ok()) return Fail(global, tools.status());
  auto engine =
      OpenEngine(global, *tools, EngineUse::kRecord, /*must_exist=*/true, "cairn policy show");
  if (!engine.ok()) return Fail(global, engine.status());
  std::shared_ptr<const policy::Policy> current = (*engine)->CurrentPolicy();
  const std::vector<engine::KillSwitch> kills = (*engine)->KillSwitches();
  Status closed = (*engine)->Close();
  if (!closed.ok()) return Fail(global, closed.WithContext("closing " + global.data_dir));
  const bool builtin = current->hash() == policy::Policy::Default()->hash();
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"hash", current->hash().Hex()},
                             {"name", current->name()},
                             {"builtin", builtin},
                             {"rules", current->rule_count()},
                             {"kill_switches", kills.size()},
                             {"text", current->text()}})
                << '\n';
    return kExitOk;
  }
  *global.out << "# policy sha256:" << current->hash().Hex()
              << (builtin ? " (built-in default: reads allowed, writes denied)" : "") << '\n'
              << current->text();
  if (!current->text().empty() && current->text().back() != '\n') *global.out << '\n';
  return kExitOk;
}

void AddApply(CLI::App& group, GlobalOptions& global) {
  auto options = std::make_shared<ApplyOptions>();
  CLI::App* apply = group.add_subcommand(
      "apply",
      "Check a policy and make it the one new runs get (runs already started keep theirs)");
  apply->add_option("file", options->file, "Policy file (YAML)")->type_name("FILE")->required();
  SetAction(apply, global, [&global, options] { return RunApplyPolicy(global, *options); });
}

void AddShow(CLI::App& group, GlobalOptions& global) {
  CLI::App* show = group.add_subcommand("show", "Print the policy new runs get");
  SetAction(show, global, [&global] { return RunShowPolicy(global); });
}

// ---- policy explain ----

struct ExplainOptions {
  std::string file;
  std::string workflow;
  std::string tool;
  std::string effect = "write";
  std::string risk = "critical";
  std::string arguments;
  bool for_agent = false;
  std::string run_id;
  std::string task_path;
};

// --arguments: the JSON text itself, `@FILE` (the file's contents) or `@-` (stdin).
Result<Json> ParseArguments(const GlobalOptions& global, const std::string& text) {
  if (text.empty()) return Json::object();
  if (text[0] != '@') return ParseJson(text, "--arguments", kArgumentsBytesMax);
  const std::string path = text.substr(1);
  std::string content;
  if (path == "-") {
    content.assign(std::istreambuf_iterator<char>(*global.in), std::istreambuf_iterator<char>());
    if (content.size() > kArgumentsBytesMax) {
      return Status::InvalidArgument("--arguments @-: more than " +
                                     std::to_string(kArgumentsBytesMax) + " bytes on stdin");
    }
  } else {
    CAIRN_ASSIGN_OR_RETURN(content, ReadTextFile(path, "--arguments file", kArgumentsBytesMax));
  }
  return ParseJson(content, "--arguments " + text, kArgumentsBytesMax);
}

storage::RiskLevel RiskFromName(const std::string& name) {
  return storage::ParseRiskLevel(name).value_or(storage::RiskLevel::kCritical);
}

// The question the flags ask; kInvalidArgument for a malformed --workflow or --arguments.
Result<policy::ToolUse> UseFromOptions(const GlobalOptions& global, const ExplainOptions& options) {
  policy::ToolUse use;
  const size_t slash = options.workflow.find('/');
  if (slash == std::string::npos) {
    use.workflow_name = options.workflow;
  } else {
    use.workflow_namespace = options.workflow.substr(0, slash);
    use.workflow_name = options.workflow.substr(slash + 1);
  }
  if (use.workflow_name.empty() || (slash != std::string::npos && use.workflow_namespace.empty()) ||
      use.workflow_name.find('/') != std::string::npos) {
    return Status::InvalidArgument("--workflow: '" + options.workflow +
                                   "' is not a workflow (expected NAMESPACE/NAME or NAME)");
  }
  use.tool = options.tool;
  use.effect = options.effect == "read" ? storage::EffectKind::kRead : storage::EffectKind::kWrite;
  use.risk = RiskFromName(options.risk);
  CAIRN_ASSIGN_OR_RETURN(use.arguments, ParseArguments(global, options.arguments));
  use.for_agent = options.for_agent;
  use.run_id = options.run_id;
  use.task_path = options.task_path;
  return use;
}

nlohmann::json BudgetsJson(const policy::BudgetCaps& caps) {
  return {{"steps", caps.steps},
          {"wall_ms", caps.wall_ms},
          {"tokens", caps.tokens},
          {"cost_micros", caps.cost_micros},
          {"tool_calls", caps.tool_calls}};
}

// "steps 200, wall_clock 2h, cost 2.50" (set caps only), or "no caps".
std::string BudgetsText(const policy::BudgetCaps& caps) {
  std::vector<std::string> parts;
  if (caps.steps != 0) parts.push_back("steps " + std::to_string(caps.steps));
  if (caps.wall_ms != 0) parts.push_back("wall_clock " + FormatDuration(caps.wall_ms));
  if (caps.tokens != 0) parts.push_back("tokens " + std::to_string(caps.tokens));
  if (caps.cost_micros != 0) parts.push_back("cost " + FormatMoney(caps.cost_micros));
  if (caps.tool_calls != 0) parts.push_back("tool_calls " + std::to_string(caps.tool_calls));
  if (parts.empty()) return "no caps";
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : ", ") + part;
  return text;
}

void PrintVerdictJson(const GlobalOptions& global, const ExplainOptions& options,
                      const policy::Policy& policy, const policy::Verdict& verdict,
                      const policy::BudgetCaps& caps) {
  nlohmann::json line = {{"policy", options.file},
                         {"hash", policy.hash().Hex()},
                         {"decision", policy::DecisionName(verdict.decision)},
                         {"rule_id", verdict.rule_id},
                         {"reason_code", verdict.reason_code},
                         {"detail", verdict.detail},
                         {"approval", nullptr},
                         {"budgets", BudgetsJson(caps)}};
  if (verdict.decision == policy::Decision::kRequireApproval) {
    line["approval"] = {{"expires_after_ms", verdict.approval_expires_after_ms},
                        {"approvers", verdict.approvers}};
  }
  *global.out << JsonLine(line) << '\n';
}

void PrintVerdictText(const GlobalOptions& global, const ExplainOptions& options,
                      const policy::Policy& policy, const policy::Verdict& verdict,
                      const policy::BudgetCaps& caps) {
  std::vector<std::pair<std::string, std::string>> rows = {
      {"decision", std::string(policy::DecisionName(verdict.decision))},
      {"rule", verdict.rule_id},
      {"reason", verdict.reason_code},
      {"detail", verdict.detail},
  };
  if (verdict.decision == policy::Decision::kRequireApproval) {
    std::string approvers;
    for (const std::string& name : verdict.approvers) {
      approvers += (approvers.empty() ? "" : ", ") + name;
    }
    rows.emplace_back("expires after", FormatDuration(verdict.approval_expires_after_ms) + " (" +
                                           std::to_string(verdict.approval_expires_after_ms) +
                                           " ms)");
    rows.emplace_back("approvers", approvers.empty() ? "anyone with the approver role" : approvers);
  }
  rows.emplace_back("budgets", BudgetsText(caps));
  rows.emplace_back("policy", options.file + " (sha256:" + policy.hash().Hex() + ")");
  for (const auto& [label, value] : rows) {
    *global.out << label << std::string(15 - label.size(), ' ') << value << '\n';
  }
}

int RunExplain(const GlobalOptions& global, const ExplainOptions& options) {
  auto use = UseFromOptions(global, options);
  if (!use.ok()) return Fail(global, use.status());
  const Loaded loaded = LoadPolicyFile(global, options.file);
  if (!loaded.policy) return loaded.exit_code;
  const policy::Verdict verdict = loaded.policy->Evaluate(*use);
  const policy::BudgetCaps caps =
      loaded.policy->BudgetsFor(use->workflow_namespace, use->workflow_name);
  if (global.output == OutputFormat::kJson) {
    PrintVerdictJson(global, options, *loaded.policy, verdict, caps);
  } else {
    PrintVerdictText(global, options, *loaded.policy, verdict, caps);
  }
  return kExitOk;
}

void AddExplain(CLI::App& group, GlobalOptions& global) {
  auto options = std::make_shared<ExplainOptions>();
  CLI::App* explain = group.add_subcommand(
      "explain", "Show the verdict a policy file gives one tool use, and the workflow's budgets");
  explain->add_option("file", options->file, "Policy file (YAML)")->type_name("FILE")->required();
  explain
      ->add_option("--workflow", options->workflow, "The workflow asking: NAMESPACE/NAME or NAME")
      ->type_name("WORKFLOW")
      ->required();
  explain->add_option("--tool", options->tool, "The tool's name (or http, mcp, shell)")
      ->type_name("NAME")
      ->required();
  explain->add_option("--effect", options->effect, "The tool's effect")
      ->check(CLI::IsMember({"read", "write"}))
      ->capture_default_str();
  explain->add_option("--risk", options->risk, "The tool's risk level")
      ->check(CLI::IsMember({"low", "medium", "high", "critical"}))
      ->capture_default_str();
  explain
      ->add_option("--arguments", options->arguments,
                   "The call's arguments: JSON, @FILE or @- (stdin); default {}")
      ->type_name("JSON");
  explain->add_flag("--for-agent", options->for_agent,
                    "The tool is offered to an agent (rules with agent_tools: true)");
  explain->add_option("--run", options->run_id, "The run's id (kill switches by run, /run_id)")
      ->type_name("ID");
  explain->add_option("--task-path", options->task_path, "The task's path (/task_path)")
      ->type_name("PATH");
  SetAction(explain, global, [&global, options] { return RunExplain(global, *options); });
}

}  // namespace

void AddPolicyCommand(CLI::App& app, GlobalOptions& global) {
  CLI::App* group =
      app.add_subcommand("policy", "Check, apply and show policies, and see their verdicts");
  group->require_subcommand(1);
  AddValidate(*group, global);
  AddExplain(*group, global);
  AddApply(*group, global);
  AddShow(*group, global);
}

}  // namespace cairn::cli
