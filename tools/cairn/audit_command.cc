#include "tools/cairn/audit_command.h"

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "engine/http/encoding.h"
#include "storage/event.h"
#include "storage/event_json.h"
#include "tools/cairn/log_command.h"

namespace cairn::cli {
namespace {

using nlohmann::json;

constexpr size_t kTraceTextBytesMax = 160;

std::string S(const json& body, const char* key) { return JsonText(body, key); }

std::string Cut(std::string text, size_t bytes_max = kTraceTextBytesMax) {
  if (text.size() <= bytes_max) return text;
  return TruncateUtf8(std::move(text), bytes_max) + "…";
}

std::string ValueText(const json& value) {
  if (value.is_object() && value.size() == 1 && value.contains("blob")) {
    return "(blob " + value["blob"].get<std::string>().substr(0, 12) + "…)";
  }
  return Cut(JsonLine(value), 80);
}

std::string Who(const json& actor, std::string otherwise) {
  if (actor.is_object() && !S(actor, "name").empty()) return S(actor, "name");
  return otherwise;
}

std::string ErrorText(const json& error) {
  if (!error.is_object()) return "";
  std::string text = S(error, "title").empty() ? S(error, "type") : S(error, "title");
  if (!S(error, "detail").empty()) text += ": " + S(error, "detail");
  return text;
}

// One timeline entry: what happened, who or what decided it, and why.
struct TraceEntry {
  std::string what;
  std::string by;
  std::string summary;
  std::string why;
};

TraceEntry Describe(const std::string& kind, const json& b) {
  if (kind == "run_started") {
    std::string label = S(b, "workflow_name");
    if (!S(b, "workflow_namespace").empty()) label = S(b, "workflow_namespace") + "/" + label;
    if (!S(b, "workflow_version").empty()) label += ":" + S(b, "workflow_version");
    return {"start", Who(b["started_by"], "-"), label + " with input " + ValueText(b["input"]),
            "policy sha256:" + S(b, "policy_hash").substr(0, 12)};
  }
  if (kind == "task_routed") {
    return {"route", "workflow", S(b, "task_name") + " (" + S(b, "task_kind") + ")",
            b.value("attempt", 0) > 1 ? "attempt " + S(b, "attempt") : ""};
  }
  if (kind == "task_completed") {
    const bool faulted = S(b, "status") == "faulted";
    return {faulted ? "fault" : "done", "workflow", S(b, "task_name") + " " + S(b, "status"),
            faulted ? ErrorText(b["error"]) : (S(b, "then").empty() ? "" : "then " + S(b, "then"))};
  }
  if (kind == "agent_decided") {
    const json& usage = b["usage"];
    std::string spent =
        std::to_string(usage.value("prompt_tokens", 0) + usage.value("completion_tokens", 0)) +
        " tokens, cost " +
        (usage.value("cost_known", false) ? FormatMoney(usage.value("cost_micros", int64_t{0}))
                                          : std::string("unknown"));
    const bool decided = S(b, "reason_code") == "decided";
    return {"decision",
            "agent " + S(b, "agent") + (S(b, "model").empty() ? "" : " (" + S(b, "model") + ")"),
            decided ? "chose " + S(b, "option") + " of " + JsonLine(b["options"])
                    : "no decision: " + S(b, "reason_code"),
            (decided ? S(b, "rationale") : S(b, "detail")) + " [" + spent + ", " +
                S(b, "steps_used") + " steps]"};
  }
  if (kind == "policy_verdict") {
    std::string why = S(b, "reason_code");
    if (!S(b, "detail").empty()) why += ": " + S(b, "detail");
    if (S(b, "stage") == "before_commit") why += " (checked again before the commit)";
    return {
        "verdict",
        "policy rule " + S(b, "rule_id") + " (sha256:" + S(b, "policy_hash").substr(0, 12) + ")",
        S(b, "decision") + " " + S(b, "tool") + " (risk " + S(b, "risk") + ")", why};
  }
  if (kind == "approval_requested") {
    std::string approvers;
    for (const json& name : b.value("approvers", json::array())) {
      approvers += (approvers.empty() ? "" : ", ") + name.get<std::string>();
    }
    return {"approval", "policy rule " + S(b, "rule_id"),
            "asked " + S(b, "approval_id") + " for " + S(b, "tool") + " " +
                ValueText(b["arguments"]) + " of " + (approvers.empty() ? "anyone" : approvers) +
                ", until " + storage::FormatTimeRfc3339(b.value("expires_at_ns", int64_t{0})),
            S(b, "reason")};
  }
  if (kind == "approval_resolved") {
    return {"approval", Who(b["actor"], "timer"), S(b, "approval_id") + " " + S(b, "resolution"),
            S(b, "reason")};
  }
  if (kind == "effect_intent") {
    const bool write = S(b, "effect") == "write";
    return {
        write ? "commit" : "read", "workflow", S(b, "tool") + " " + ValueText(b["arguments"]),
        "key " + S(b, "idempotency_key") + (b.value("idempotent", false) ? ", idempotent" : "")};
  }
  if (kind == "effect_outcome") {
    const bool ok = S(b, "status") == "ok";
    return {"outcome", Who(b["resolved_by"], "tool"),
            "key " + S(b, "idempotency_key") + " " + S(b, "status") + " in " + S(b, "duration_ms") +
                "ms",
            ok ? ValueText(b["result"]) : ErrorText(b["error"])};
  }
  if (kind == "budget_charged") {
    const json& a = b["amounts"];
    std::string amounts;
    for (const char* key : {"steps", "tool_calls", "tokens"}) {
      if (a.value(key, 0) != 0)
        amounts += std::string(amounts.empty() ? "" : ", ") + key + " " + S(a, key);
    }
    if (a.value("cost_micros", int64_t{0}) != 0) {
      amounts += (amounts.empty() ? "" : ", ") + std::string("cost ") +
                 FormatMoney(a.value("cost_micros", int64_t{0}));
    }
    return {
        "budget", "ledger", S(b, "phase") + " " + S(b, "purpose"),
        amounts.empty() ? "" : amounts + (b.value("cost_known", true) ? "" : " (cost unknown)")};
  }
  if (kind == "timer_scheduled" || kind == "timer_fired" || kind == "timer_cancelled") {
    std::string verb = kind.substr(std::string_view("timer_").size());
    return {"timer", kind == "timer_fired" ? "clock" : "workflow",
            S(b, "timer_id") + " " + verb +
                (S(b, "purpose").empty() ? "" : " (" + S(b, "purpose") + ")"),
            b.value("due_at_ns", int64_t{0}) == 0
                ? ""
                : "due " + storage::FormatTimeRfc3339(b.value("due_at_ns", int64_t{0}))};
  }
  if (kind == "event_received") {
    return {"event", Who(b["actor"], S(b, "source")), S(b, "event_type"), ValueText(b["payload"])};
  }
  if (kind == "control_requested") {
    return {"control", Who(b["actor"], "-"), S(b, "action"), S(b, "reason")};
  }
  if (kind == "run_stopped") {
    std::string why = S(b, "detail");
    if (b["error"].is_object()) why += (why.empty() ? "" : "; ") + ErrorText(b["error"]);
    if (why.empty() && !b["output"].is_null()) why = "output " + ValueText(b["output"]);
    return {"stop", Who(b["actor"], "workflow"), S(b, "reason"), why};
  }
  return {kind, "-", Cut(JsonLine(b)), ""};
}

Result<RunId> ParseRun(const std::string& text) {
  auto run = RunId::Parse(text);
  if (!run.ok()) return run.status().WithContext("run id '" + text + "'");
  return run;
}

// ---- trace ----

int Trace(const GlobalOptions& global, const std::string& run_text) {
  auto run = ParseRun(run_text);
  if (!run.ok()) return Fail(global, run.status());
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  std::vector<std::vector<std::string>> rows;
  Status scanned = (*store)->ScanHistory(*run, 0, [&](const storage::StoredEvent& e) {
    const json event = storage::EventToJson(e.event);
    const std::string kind = event["kind"].get<std::string>();
    TraceEntry entry = Describe(kind, event["body"]);
    if (global.output == OutputFormat::kJson) {
      *global.out << JsonLine({{"seq", e.event.seq.value()},
                               {"time", event["time"]},
                               {"task_path", e.event.task_path},
                               {"kind", kind},
                               {"what", entry.what},
                               {"by", entry.by},
                               {"summary", entry.summary},
                               {"why", entry.why}})
                  << '\n';
    } else {
      std::string text = entry.summary;
      if (!entry.why.empty()) text += " — " + Cut(entry.why);
      rows.push_back({std::to_string(e.event.seq.value()), event["time"].get<std::string>(),
                      e.event.task_path.empty() ? "-" : e.event.task_path, entry.what, entry.by,
                      text});
    }
    return true;
  });
  if (!scanned.ok()) {
    global.out->flush();
    return Fail(global, scanned);
  }
  if (global.output == OutputFormat::kText) {
    PrintTable(*global.out, {"SEQ", "TIME", "TASK", "WHAT", "BY", "WHAT HAPPENED AND WHY"}, rows);
  }
  return kExitOk;
}

// ---- export ----

struct ExportOptions {
  std::vector<std::string> runs;
  bool all = false;
  std::string workflow;
  std::string format = "jsonl";
  bool bytes = false;
};

Status ExportRun(const GlobalOptions& global, const storage::Store& store, const RunId& run,
                 bool with_bytes) {
  return store.ScanHistory(run, 0, [&](const storage::StoredEvent& e) {
    json line = storage::EventToJson(e.event);
    // hash(n) = SHA-256(prev_hash(n) ‖ bytes(n)) (storage/FORMAT.md): the next event's
    // prev_hash, and the run header's chain head for the last one.
    const Sha256 hash = Sha256::Of(e.event.prev_hash.view(), e.bytes);
    line["hash"] = hash.Hex();
    if (with_bytes) line["bytes_base64"] = engine::http::Base64Encode(e.bytes);
    *global.out << JsonLine(line) << '\n';
    return true;
  });
}

int Export(const GlobalOptions& global, const ExportOptions& options) {
  if (options.all == !options.runs.empty()) {
    return Fail(global, "name the runs to export, or --all (not both)");
  }
  if (!options.workflow.empty() && !options.all) return Fail(global, "--workflow goes with --all");
  std::vector<RunId> runs;
  for (const std::string& text : options.runs) {
    auto run = ParseRun(text);
    if (!run.ok()) return Fail(global, run.status());
    runs.push_back(std::move(run).value());
  }
  auto store = OpenStoreReadOnly(global);
  if (!store.ok()) return Fail(global, store.status());
  const storage::Store& reader = **store;
  if (options.all) {
    std::string after;
    for (;;) {
      auto page = reader.ListRuns(std::nullopt, after, limits::list_runs_max);
      if (!page.ok()) return Fail(global, page.status());
      for (const storage::RunSummary& summary : *page) {
        if (!options.workflow.empty()) {
          auto header = reader.GetRun(summary.run_id);
          if (!header.ok()) return Fail(global, header.status());
          if (header->workflow_namespace + "/" + header->workflow_name != options.workflow) {
            continue;
          }
        }
        runs.push_back(summary.run_id);
      }
      if (page->size() < limits::list_runs_max) break;
      after = page->back().run_id.str();
    }
  }
  for (const RunId& run : runs) {
    Status exported = ExportRun(global, reader, run, options.bytes);
    if (!exported.ok()) {
      global.out->flush();
      return Fail(global, exported.WithContext("exporting run " + run.str()));
    }
  }
  global.out->flush();
  return kExitOk;
}

}  // namespace

void AddAuditCommands(CLI::App& app, GlobalOptions& global) {
  auto run_text = std::make_shared<std::string>();
  CLI::App* trace = app.add_subcommand(
      "trace",
      "A run's timeline for an audit: each transition's time, task, what happened, who or "
      "what decided it, and why (read-only)");
  trace->add_option("run", *run_text, "Run id")->type_name("RUN")->required();
  SetAction(trace, global, [&global, run_text] { return Trace(global, *run_text); });

  CLI::App* audit = app.add_subcommand("audit", "Audit the log (read-only)");
  audit->require_subcommand(1);
  auto verify_runs = std::make_shared<std::vector<std::string>>();
  auto verify_all = std::make_shared<bool>(false);
  CLI::App* verify = audit->add_subcommand(
      "verify",
      "Check every hash chain and run header (or the named runs'); on failure name the run "
      "and its first bad sequence number; exit 1 if one fails");
  verify->add_option("runs", *verify_runs, "Run ids")->type_name("RUN...");
  verify->add_flag("--all", *verify_all, "Every run (the default without run ids)");
  SetAction(verify, global, [&global, verify_runs, verify_all] {
    if (*verify_all && !verify_runs->empty()) return Fail(global, "run ids or --all, not both");
    return VerifyCommand(global, *verify_runs, /*check_headers=*/true);
  });

  auto options = std::make_shared<ExportOptions>();
  CLI::App* exporter = app.add_subcommand(
      "export",
      "Every event of the named runs (or --all) as JSON lines with stable field names and "
      "each event's chain hash (tools/README.md lists them)");
  exporter->add_option("runs", options->runs, "Run ids")->type_name("RUN...");
  exporter->add_flag("--all", options->all, "Every run");
  exporter->add_option("--workflow", options->workflow, "With --all: only this workflow's runs")
      ->type_name("NS/NAME");
  exporter->add_option("--format", options->format, "jsonl: one JSON object per event")
      ->check(CLI::IsMember({"jsonl", "json"}))
      ->capture_default_str();
  exporter->add_flag("--bytes", options->bytes,
                     "Also each event's stored bytes (base64), to re-check the chain elsewhere");
  SetAction(exporter, global, [&global, options] { return Export(global, *options); });
}

}  // namespace cairn::cli
