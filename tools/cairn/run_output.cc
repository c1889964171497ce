#include "tools/cairn/run_output.h"

#include <algorithm>
#include <ostream>
#include <utility>

#include "engine/definition/duration.h"
#include "storage/event.h"
#include "storage/event_json.h"

namespace cairn::cli {
namespace {

using std::chrono::milliseconds;

// Text output shortens JSON values to this many bytes (-o json prints them whole).
constexpr size_t kDescribeValueBytesMax = 2000;
constexpr size_t kShowValueBytesMax = 80;

// ---- reading the JSON forms (a missing or mistyped member reads as empty) ----

const Json& Member(const Json& object, const char* key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string Str(const Json& object, const char* key) { return JsonText(object, key); }

int64_t Int(const Json& object, const char* key) {
  const Json& value = Member(object, key);
  if (value.is_number_unsigned()) return static_cast<int64_t>(value.get<uint64_t>());
  return value.is_number_integer() ? value.get<int64_t>() : 0;
}

std::vector<std::string> Strings(const Json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const Json& item : list) out.push_back(item.is_string() ? item.get<std::string>() : "");
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// RFC 3339 to the millisecond, from "2026-11-21T08:05:00.123456789Z".
std::string TimeTextToMillis(std::string text) {
  if (text.size() > 7 && text.back() == 'Z') text.erase(text.size() - 7, 6);
  return text;
}
std::string TimeToMillis(int64_t ns) { return TimeTextToMillis(storage::FormatTimeRfc3339(ns)); }

std::string Shorten(std::string text, size_t bytes_max) {
  if (text.size() <= bytes_max) return text;
  const size_t full = text.size();
  return TruncateUtf8(std::move(text), bytes_max) + "… (" + std::to_string(full) + " bytes)";
}

std::string ShortJson(const Json& value, size_t bytes_max) {
  return Shorten(DumpJson(value), bytes_max);
}

// An error object {type, status, title, detail, instance}.
std::string ErrorText(const Json& e) {
  std::string text = Str(e, "title").empty() ? Str(e, "type") : Str(e, "title");
  if (Int(e, "status") != 0) text += " (" + std::to_string(Int(e, "status")) + ")";
  if (!Str(e, "detail").empty()) text += ": " + Str(e, "detail");
  if (!Str(e, "instance").empty()) text += " at " + Str(e, "instance");
  return text;
}

// "steps 4/200, tool calls 2/20, cost 0.0012/5": spent against each cap, for the
// dimensions that are capped or were spent on ("" when none). Money in decimal units.
std::string BudgetText(const Json& budget) {
  const Json& cap = Member(budget, "limits");
  const Json& spent = Member(budget, "spent");
  std::string text;
  auto add = [&text](const char* name, const std::string& used, const std::string& limit,
                     bool show) {
    if (!show) return;
    text += (text.empty() ? "" : ", ") + std::string(name) + " " + used;
    if (!limit.empty()) text += "/" + limit;
  };
  auto count = [&](const char* key) {
    add(key == std::string_view("tool_calls") ? "tool calls" : key, std::to_string(Int(spent, key)),
        Int(cap, key) != 0 ? std::to_string(Int(cap, key)) : "",
        Int(cap, key) != 0 || Int(spent, key) != 0);
  };
  count("steps");
  count("tool_calls");
  count("tokens");
  const int64_t cost_cap = Int(cap, "cost_micros");
  const int64_t cost_spent = Int(spent, "cost_micros");
  add("cost", FormatMoney(cost_spent), cost_cap != 0 ? FormatMoney(cost_cap) : "",
      cost_cap != 0 || cost_spent != 0);
  if (Int(cap, "wall_ms") != 0) {
    text += (text.empty() ? "" : ", ") + std::string("wall clock ") +
            engine::FormatDurationMs(static_cast<uint64_t>(Int(cap, "wall_ms")));
  }
  return text;
}

void ApprovalRows(const Json& a, std::vector<std::pair<std::string, std::string>>& rows) {
  std::string text = Str(a, "approval_id") + " to call " + Str(a, "tool");
  if (!Str(a, "rule_id").empty()) text += " (rule " + Str(a, "rule_id") + ")";
  rows.emplace_back("approval", std::move(text));
  rows.emplace_back("  arguments", ShortJson(Member(a, "arguments"), kDescribeValueBytesMax));
  if (!Str(a, "reason").empty()) rows.emplace_back("  why", Str(a, "reason"));
  const std::string who = Join(Strings(Member(a, "approvers")));
  rows.emplace_back("  approvers", who.empty() ? "anyone" : who);
  if (!Str(a, "expires").empty()) {
    const std::string on_expiry = Str(a, "on_expiry");
    rows.emplace_back("  expires", TimeTextToMillis(Str(a, "expires")) +
                                       " (unanswered by then: " + on_expiry +
                                       (on_expiry == "approved" ? ")" : ", the call is not made)"));
  }
}

void PrintRunViewText(std::ostream& out, const Json& v) {
  const std::string started_by = Str(Member(v, "started_by"), "name");
  std::vector<std::pair<std::string, std::string>> rows = {
      {"run", Str(v, "run_id")},
      {"status", StatusLabelOf(v)},
      {"workflow", ViewWorkflowLabel(v) + " (sha256:" + Str(Member(v, "workflow"), "hash") + ")"},
      {"started",
       TimeTextToMillis(Str(v, "created")) + (started_by.empty() ? "" : " by " + started_by)},
      {"updated", TimeTextToMillis(Str(v, "updated"))},
      {"events", std::to_string(Int(v, "events"))}};
  if (const std::string waiting_on = Str(v, "waiting_on"); !waiting_on.empty()) {
    const std::vector<std::string> types = Strings(Member(v, "awaited_types"));
    rows.emplace_back("waiting on",
                      waiting_on + (types.empty() ? "" : " (type " + Join(types) + ")"));
  }
  for (const Json& t : Member(v, "timers")) {
    rows.emplace_back("timer", Str(t, "timer_id") + " (" + Str(t, "purpose") + ") due " +
                                   TimeToMillis(Int(t, "due_at_ns")));
  }
  if (Member(v, "approval").is_object()) ApprovalRows(Member(v, "approval"), rows);
  if (std::string budget = BudgetText(Member(v, "budget")); !budget.empty()) {
    rows.emplace_back("budget", budget);
  }
  rows.emplace_back("input", ShortJson(Member(v, "input"), kDescribeValueBytesMax));
  // A completed run has an output, null included.
  if (Str(v, "status") == "completed") {
    rows.emplace_back("output", ShortJson(Member(v, "output"), kDescribeValueBytesMax));
  }
  if (Member(v, "error").is_object()) rows.emplace_back("error", ErrorText(Member(v, "error")));
  if (!Str(v, "stop_detail").empty()) rows.emplace_back("detail", Str(v, "stop_detail"));
  if (const std::string by = Str(Member(v, "stopped_by"), "name"); !by.empty()) {
    rows.emplace_back("stopped by", by);
  }
  for (const auto& [key, value] : rows) {
    out << key << std::string(12 - std::min<size_t>(key.size(), 11), ' ') << value << '\n';
  }
}

// What to say about a run that has not stopped, and which command moves it on.
std::string ParkedNote(const GlobalOptions& global, const Json& view) {
  const std::string run = Str(view, "run_id");
  const std::string waiting_on = Str(view, "waiting_on");
  std::string note = "run " + run + " is " + Str(view, "status");
  if (!waiting_on.empty()) note += " on " + waiting_on;
  const std::vector<std::string> types = Strings(Member(view, "awaited_types"));
  const Json& timers = Member(view, "timers");
  if (waiting_on.rfind("event", 0) == 0) {
    note += "; deliver it with '" + global.program + " run signal " + run + " --type " +
            (types.size() == 1 ? types.front() : "TYPE") + "'";
  } else if (Member(view, "approval").is_object()) {
    note += "; an approver answers with '" + global.program + " run approve " + run +
            " --as NAME' or '" + global.program + " run reject " + run +
            " --as NAME --reason TEXT'";
  } else if (waiting_on.rfind("indeterminate_effect", 0) == 0 ||
             Str(view, "stop_reason") == "indeterminate_effect") {
    note += "; an operator decides with '" + global.program + " run resolve " + run +
            " --outcome ok|failed|abandon'";
  } else if (timers.is_array() && !timers.empty()) {
    const std::string due = TimeToMillis(Int(timers.front(), "due_at_ns"));
    note += global.address.empty() ? "; it goes on when an engine runs after " + due + " ('" +
                                         global.program + " run resume')"
                                   : "; the server goes on with it after " + due;
  }
  return note;
}

bool IsTerminalStatus(const std::string& status) {
  auto parsed = storage::ParseRunStatus(status);
  return parsed.ok() && storage::IsTerminal(*parsed);
}

}  // namespace

std::string StatusLabelOf(const Json& run) {
  std::string label = Str(run, "status");
  // "failed (approval_denied)" says more than "failed"; "completed (completed)" does not.
  const std::string reason = Str(run, "stop_reason");
  if (!reason.empty() && reason != "none" && reason != label) label += " (" + reason + ")";
  return label;
}

std::string ViewWorkflowLabel(const Json& view) {
  const Json& w = Member(view, "workflow");
  std::string label =
      Str(w, "namespace").empty() ? Str(w, "name") : Str(w, "namespace") + "/" + Str(w, "name");
  if (!Str(w, "version").empty()) label += ":" + Str(w, "version");
  return label.empty() ? "-" : label;
}

void PrintRunView(const GlobalOptions& global, const Json& view) {
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine(view) << '\n';
  } else {
    PrintRunViewText(*global.out, view);
  }
}

int ReportState(const GlobalOptions& global, const Json& view, bool timed_out, milliseconds waited,
                Expect expect) {
  PrintRunView(global, view);
  global.out->flush();
  const std::string status = Str(view, "status");
  if (IsTerminalStatus(status)) {
    if (status == "completed" || expect == Expect::kStop) return kExitOk;
    return kExitFailed;
  }
  if (timed_out) {
    *global.err << "run " << Str(view, "run_id") << " is still " << status
                << (waited.count() > 0 ? " after " + engine::FormatDurationMs(
                                                         static_cast<uint64_t>(waited.count()))
                                       : std::string())
                << (global.address.empty()
                        ? "; it goes on when an engine next runs ('" + global.program +
                              " run resume')\n"
                        : "; the server goes on with it ('" + global.program + " run describe " +
                              Str(view, "run_id") + "' shows where it got to)\n");
    return expect == Expect::kCompletion ? kExitFailed : kExitOk;
  }
  *global.err << ParkedNote(global, view) << '\n';
  return kExitOk;
}

void PrintRunTable(const GlobalOptions& global, const std::vector<Json>& headers) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(headers.size());
  for (const Json& h : headers) {
    std::string workflow = Str(h, "workflow_namespace").empty()
                               ? Str(h, "workflow_name")
                               : Str(h, "workflow_namespace") + "/" + Str(h, "workflow_name");
    if (!Str(h, "workflow_version").empty()) workflow += ":" + Str(h, "workflow_version");
    rows.push_back({Str(h, "run_id"), StatusLabelOf(h), workflow.empty() ? "-" : workflow,
                    std::to_string(Int(h, "next_seq")), TimeToMillis(Int(h, "created_at_ns")),
                    Str(h, "waiting_on").empty() ? "-" : Str(h, "waiting_on")});
  }
  PrintTable(*global.out, {"RUN", "STATUS", "WORKFLOW", "EVENTS", "STARTED", "WAITING ON"}, rows);
}

// ---- run show ----

namespace {

std::string Value(const Json& value) {
  if (value.is_null()) return "null";
  if (value.is_object() && value.size() == 1 && value.contains("blob") &&
      value["blob"].is_string()) {
    return "(blob " + value["blob"].get<std::string>().substr(0, 12) + "…)";
  }
  return Shorten(JsonLine(value), kShowValueBytesMax);
}

std::string ErrorSummary(const Json& error) {
  if (!error.is_object()) return "";
  return Shorten(ErrorText(Json{{"type", Member(error, "type")},
                                {"title", Member(error, "title")},
                                {"status", Member(error, "status")},
                                {"detail", Member(error, "detail")}}),
                 kShowValueBytesMax);
}

std::string ActorSuffix(const Json& actor) {
  return actor.is_object() && !Str(actor, "name").empty() ? " by " + Str(actor, "name") : "";
}

std::string TimerSummary(const Json& b) {
  return Str(b, "timer_id") + " (" + Str(b, "purpose") + ") due " +
         TimeToMillis(Int(b, "due_at_ns"));
}

// One line on what an event says, from its export form (storage/event_json.h).
std::string Summary(const std::string& kind, const Json& b) {
  if (kind == "run_started") {
    std::string label = Str(b, "workflow_name");
    if (!Str(b, "workflow_namespace").empty()) label = Str(b, "workflow_namespace") + "/" + label;
    if (!Str(b, "workflow_version").empty()) label += ":" + Str(b, "workflow_version");
    return label + ActorSuffix(Member(b, "started_by")) + ", input " + Value(Member(b, "input"));
  }
  if (kind == "task_routed") {
    std::string text = Str(b, "task_name") + " (" + Str(b, "task_kind") + ")";
    if (Int(b, "attempt") > 1) text += " attempt " + Str(b, "attempt");
    return text;
  }
  if (kind == "task_completed") {
    std::string text = Str(b, "task_name") + " " + Str(b, "status");
    if (Str(b, "status") == "faulted") return text + ": " + ErrorSummary(Member(b, "error"));
    if (!Str(b, "then").empty()) text += " then " + Str(b, "then");
    return text + " → " + Value(Member(b, "output"));
  }
  if (kind == "effect_intent") {
    return Str(b, "tool") + " key " + Str(b, "idempotency_key") + " (" + Str(b, "effect") + ", " +
           Str(b, "risk") + (Member(b, "idempotent") == Json(true) ? ", idempotent" : "") +
           ") args " + Value(Member(b, "arguments"));
  }
  if (kind == "effect_outcome") {
    std::string text = "key " + Str(b, "idempotency_key") + " " + Str(b, "status") + " in " +
                       Str(b, "duration_ms") + "ms" + ActorSuffix(Member(b, "resolved_by"));
    return text + (Str(b, "status") == "ok" ? " → " + Value(Member(b, "result"))
                                            : ": " + ErrorSummary(Member(b, "error")));
  }
  if (kind == "timer_scheduled" || kind == "timer_fired") return TimerSummary(b);
  if (kind == "timer_cancelled") return Str(b, "timer_id");
  if (kind == "event_received") {
    return Str(b, "event_type") + " from " + Str(b, "source") + ActorSuffix(Member(b, "actor")) +
           ": " + Value(Member(b, "payload"));
  }
  if (kind == "run_stopped") {
    std::string text = Str(b, "reason") + ActorSuffix(Member(b, "actor"));
    // A detail may already start with the reason ("budget_exhausted: tool_calls").
    std::string detail = Str(b, "detail");
    if (detail.rfind(Str(b, "reason") + ": ", 0) == 0) detail.erase(0, Str(b, "reason").size() + 2);
    if (!detail.empty()) text += ": " + detail;
    if (Member(b, "error").is_object()) return text + ": " + ErrorSummary(Member(b, "error"));
    return text + (Member(b, "output").is_null() ? "" : " → " + Value(Member(b, "output")));
  }
  if (kind == "control_requested") {
    return Str(b, "action") + ActorSuffix(Member(b, "actor")) +
           (Str(b, "reason").empty() ? "" : ": " + Str(b, "reason"));
  }
  if (kind == "agent_decided") {
    return Str(b, "agent") + " chose " + Str(b, "option") + " (" + Str(b, "reason_code") + ")";
  }
  if (kind == "policy_verdict") {
    return Str(b, "decision") + " " + Str(b, "tool") + " (rule " + Str(b, "rule_id") +
           (Str(b, "stage") == "before_commit" ? ", checked again before the commit)" : ")");
  }
  if (kind == "approval_requested") return Str(b, "approval_id") + " for " + Str(b, "tool");
  if (kind == "approval_resolved") {
    return Str(b, "approval_id") + " " + Str(b, "resolution") + ActorSuffix(Member(b, "actor"));
  }
  if (kind == "budget_charged") return Str(b, "phase") + " " + Str(b, "purpose");
  if (kind == "value_recorded") return Str(b, "name") + " = " + Value(Member(b, "value"));
  return Shorten(JsonLine(b), kShowValueBytesMax);
}

}  // namespace

std::vector<std::string> TimelineRow(const Json& event) {
  const std::string kind = Str(event, "kind");
  const std::string task = Str(event, "task_path");
  return {std::to_string(Int(event, "seq")), TimeToMillis(Int(event, "time_ns")),
          task.empty() ? "-" : task, kind, Summary(kind, Member(event, "body"))};
}

int PrintStarted(const GlobalOptions& global, const std::string& run_id, bool created,
                 const std::string& workflow, const std::string& server) {
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"run_id", run_id}, {"created", created}, {"workflow", workflow}})
                << '\n';
  } else {
    *global.out << run_id << '\n';
  }
  global.out->flush();
  if (!created) {
    *global.err << "run " << run_id << " was started before with this --id: nothing new started\n";
  } else if (server.empty()) {
    *global.err << "recorded run " << run_id << " of " << workflow
                << "; it runs when an engine next runs ('" << global.program << " run resume')\n";
  } else {
    *global.err << "started run " << run_id << " of " << workflow << " on " << server << '\n';
  }
  return kExitOk;
}

}  // namespace cairn::cli
