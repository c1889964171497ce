#include "storage/event_json.h"

#include <array>
#include <cstdio>
#include <string_view>
#include <vector>

namespace cairn::storage {
namespace {

using nlohmann::json;

// Inline JSON nested deeper than this is exported as unparsed text: rendering it would
// recurse once per level, and a payload may come from outside.
constexpr size_t kPayloadDepthMax = 256;

template <typename Enum, size_t N>
std::string_view Lookup(const std::array<std::string_view, N>& names, Enum v) {
  const auto i = static_cast<size_t>(v);
  return i < N ? names[i] : std::string_view("unknown");
}

// Names of the enums nested in event structs, in schema order.
std::string_view Name(TaskRouted::Mode v) {
  static constexpr std::array<std::string_view, 2> kNames = {"deterministic", "agentic"};
  return Lookup(kNames, v);
}
std::string_view Name(PolicyVerdict::Decision v) {
  static constexpr std::array<std::string_view, 3> kNames = {"allow", "require_approval", "deny"};
  return Lookup(kNames, v);
}
std::string_view Name(PolicyVerdict::Stage v) {
  static constexpr std::array<std::string_view, 2> kNames = {"before_call", "before_commit"};
  return Lookup(kNames, v);
}
std::string_view Name(EffectOutcome::Status v) {
  static constexpr std::array<std::string_view, 4> kNames = {"ok", "failed", "indeterminate",
                                                             "timed_out"};
  return Lookup(kNames, v);
}
std::string_view Name(TaskCompleted::Status v) {
  static constexpr std::array<std::string_view, 3> kNames = {"completed", "faulted", "skipped"};
  return Lookup(kNames, v);
}
std::string_view Name(BudgetCharged::Phase v) {
  static constexpr std::array<std::string_view, 3> kNames = {"reserve", "settle", "release"};
  return Lookup(kNames, v);
}
std::string_view Name(ControlRequested::Action v) {
  static constexpr std::array<std::string_view, 5> kNames = {"cancel", "kill", "resume",
                                                             "resolve_effect", "signal"};
  return Lookup(kNames, v);
}

// Every enum, nested or not, renders as its name.
template <typename Enum>
json EnumJson(Enum v) {
  return std::string(Name(v));
}

json HashJson(const Sha256& digest) { return digest.IsZero() ? json(nullptr) : json(digest.Hex()); }

// True if `text` has more than `max_depth` unclosed brackets at some point, ignoring
// brackets inside strings. A cheap bound checked before parsing.
bool NestsDeeperThan(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

json ToJson(const ErrorInfo& v) {
  if (v == ErrorInfo{}) return nullptr;
  return {{"type", v.type},
          {"status", v.status},
          {"title", v.title},
          {"detail", v.detail},
          {"instance", v.instance}};
}

json ToJson(const Actor& v) {
  if (v == Actor{}) return nullptr;
  return {{"name", v.name}, {"role", v.role}};
}

json ToJson(const Usage& v) {
  return {{"prompt_tokens", v.prompt_tokens},
          {"completion_tokens", v.completion_tokens},
          {"cost_micros", v.cost_micros},
          {"cost_known", v.cost_known},
          {"calls", v.calls}};
}

json ToJson(const BudgetAmounts& v) {
  return {{"steps", v.steps},
          {"tokens", v.tokens},
          {"cost_micros", v.cost_micros},
          {"wall_ms", v.wall_ms},
          {"tool_calls", v.tool_calls}};
}

json ToJson(const RunStarted& v) {
  return {{"workflow_namespace", v.workflow_namespace},
          {"workflow_name", v.workflow_name},
          {"workflow_version", v.workflow_version},
          {"definition_hash", HashJson(v.definition_hash)},
          {"input", PayloadToJson(v.input)},
          {"policy_hash", HashJson(v.policy_hash)},
          {"start_key", v.start_key},
          {"started_by", ToJson(v.started_by)},
          {"parent_run_id", v.parent_run_id},
          {"budget_limits", ToJson(v.budget_limits)},
          {"agent_config_hash", HashJson(v.agent_config_hash)},
          {"tool_catalog_hash", HashJson(v.tool_catalog_hash)}};
}

json ToJson(const TaskRouted& v) {
  return {{"task_name", v.task_name},
          {"task_kind", v.task_kind},
          {"mode", EnumJson(v.mode)},
          {"input", PayloadToJson(v.input)},
          {"attempt", v.attempt}};
}

json ToJson(const AgentDecided& v) {
  return {{"agent", v.agent},
          {"model", v.model},
          {"reason_code", v.reason_code},
          {"option", v.option},
          {"rationale", v.rationale},
          {"confidence", v.has_confidence ? json(v.confidence) : json(nullptr)},
          {"steps_used", v.steps_used},
          {"usage", ToJson(v.usage)},
          {"options", v.options},
          {"request_blob", HashJson(v.request_blob)},
          {"response_blob", HashJson(v.response_blob)},
          {"duration_ms", v.duration_ms},
          {"detail", v.detail},
          {"goal", v.goal},
          {"decision_key", v.decision_key}};
}

json ToJson(const PolicyVerdict& v) {
  return {{"policy_hash", HashJson(v.policy_hash)},
          {"rule_id", v.rule_id},
          {"decision", EnumJson(v.decision)},
          {"reason_code", v.reason_code},
          {"tool", v.tool},
          {"risk", EnumJson(v.risk)},
          {"arguments_hash", HashJson(v.arguments_hash)},
          {"stage", EnumJson(v.stage)},
          {"detail", v.detail}};
}

json ToJson(const ApprovalRequested& v) {
  return {{"approval_id", v.approval_id},
          {"tool", v.tool},
          {"binding_hash", HashJson(v.binding_hash)},
          {"arguments", PayloadToJson(v.arguments)},
          {"expires_at_ns", v.expires_at_ns},
          {"on_expiry", EnumJson(v.on_expiry)},
          {"rule_id", v.rule_id},
          {"reason", v.reason},
          {"approvers", v.approvers}};
}

json ToJson(const ApprovalResolved& v) {
  return {{"approval_id", v.approval_id},
          {"resolution", EnumJson(v.resolution)},
          {"actor", ToJson(v.actor)},
          {"reason", v.reason},
          {"binding_hash", HashJson(v.binding_hash)}};
}

json ToJson(const EffectIntent& v) {
  return {{"idempotency_key", v.idempotency_key},
          {"tool", v.tool},
          {"effect", EnumJson(v.effect)},
          {"risk", EnumJson(v.risk)},
          {"arguments", PayloadToJson(v.arguments)},
          {"attempt", v.attempt},
          {"executor", v.executor},
          {"idempotent", v.idempotent}};
}

json ToJson(const EffectOutcome& v) {
  return {{"idempotency_key", v.idempotency_key}, {"status", EnumJson(v.status)},
          {"result", PayloadToJson(v.result)},    {"error", ToJson(v.error)},
          {"duration_ms", v.duration_ms},         {"attempt", v.attempt},
          {"resolved_by", ToJson(v.resolved_by)}};
}

json ToJson(const TimerScheduled& v) {
  return {{"timer_id", v.timer_id}, {"due_at_ns", v.due_at_ns}, {"purpose", EnumJson(v.purpose)}};
}

json ToJson(const TimerFired& v) {
  return {{"timer_id", v.timer_id}, {"due_at_ns", v.due_at_ns}, {"purpose", EnumJson(v.purpose)}};
}

json ToJson(const TimerCancelled& v) {
  return {{"timer_id", v.timer_id}, {"due_at_ns", v.due_at_ns}};
}

json ToJson(const EventReceived& v) {
  return {{"event_type", v.event_type},
          {"source", v.source},
          {"event_id", v.event_id},
          {"payload", PayloadToJson(v.payload)},
          {"actor", ToJson(v.actor)}};
}

json ToJson(const TaskCompleted& v) {
  return {{"task_name", v.task_name},
          {"status", EnumJson(v.status)},
          {"output", PayloadToJson(v.output)},
          {"error", ToJson(v.error)},
          {"then", v.then},
          {"attempt", v.attempt}};
}

json ToJson(const BudgetCharged& v) {
  return {{"phase", EnumJson(v.phase)},
          {"reservation_id", v.reservation_id},
          {"amounts", ToJson(v.amounts)},
          {"cost_known", v.cost_known},
          {"spent_after", ToJson(v.spent_after)},
          {"reserved_after", ToJson(v.reserved_after)},
          {"purpose", v.purpose}};
}

json ToJson(const RunStopped& v) {
  return {{"reason", EnumJson(v.reason)},
          {"output", PayloadToJson(v.output)},
          {"error", ToJson(v.error)},
          {"detail", v.detail},
          {"actor", ToJson(v.actor)}};
}

json ToJson(const ControlRequested& v) {
  return {{"action", EnumJson(v.action)},
          {"actor", ToJson(v.actor)},
          {"reason", v.reason},
          {"argument", PayloadToJson(v.argument)}};
}

json ToJson(const ValueRecorded& v) {
  return {{"name", v.name}, {"value", PayloadToJson(v.value)}};
}

json ToJson(const UnknownBody& v) { return {{"which", v.which}}; }

json ToJson(const std::vector<TimerRef>& timers) {
  json out = json::array();
  for (const TimerRef& t : timers) {
    out.push_back({{"timer_id", t.timer_id},
                   {"due_at_ns", t.due_at_ns},
                   {"due", FormatTimeRfc3339(t.due_at_ns)},
                   {"purpose", EnumJson(t.purpose)}});
  }
  return out;
}

}  // namespace

json PayloadToJson(const Payload& payload) {
  switch (payload.kind) {
    case Payload::Kind::kNone:
      return nullptr;
    case Payload::Kind::kJson: {
      if (!NestsDeeperThan(payload.json, kPayloadDepthMax)) {
        json parsed = json::parse(payload.json, /*cb=*/nullptr, /*allow_exceptions=*/false);
        if (!parsed.is_discarded()) return parsed;
      }
      return {{"unparsed_json", payload.json}};
    }
    case Payload::Kind::kBlob:
      return {{"blob", payload.blob.Hex()}};
  }
  return nullptr;
}

json EventToJson(const Event& event) {
  json body = event.body.valueless_by_exception()
                  ? json(nullptr)
                  : std::visit([](const auto& v) { return ToJson(v); }, event.body);
  return {{"run_id", event.run_id.str()},
          {"seq", event.seq.value()},
          {"time", FormatTimeRfc3339(event.time_ns)},
          {"time_ns", event.time_ns},
          {"prev_hash", HashJson(event.prev_hash)},
          {"task_path", event.task_path},
          {"kind", std::string(KindName(event.body))},
          {"body", std::move(body)}};
}

json RunHeaderToJson(const RunHeader& h) {
  return {{"run_id", h.run_id.str()},
          {"status", EnumJson(h.status)},
          {"stop_reason", EnumJson(h.stop_reason)},
          {"workflow_namespace", h.workflow_namespace},
          {"workflow_name", h.workflow_name},
          {"workflow_version", h.workflow_version},
          {"definition_hash", HashJson(h.definition_hash)},
          {"policy_hash", HashJson(h.policy_hash)},
          {"created_at_ns", h.created_at_ns},
          {"updated_at_ns", h.updated_at_ns},
          {"next_seq", h.next_seq},
          {"chain_head", HashJson(h.chain_head)},
          {"start_key", h.start_key},
          {"parent_run_id", h.parent_run_id},
          {"budget_limits", ToJson(h.budget_limits)},
          {"budget_spent", ToJson(h.budget_spent)},
          {"budget_reserved", ToJson(h.budget_reserved)},
          {"waiting_on", h.waiting_on},
          {"engine_state_bytes", h.engine_state.size()},
          {"timers", ToJson(h.timers)}};
}

std::string FormatTimeRfc3339(int64_t ns) {
  constexpr int64_t kNanosPerSecond = 1'000'000'000;
  constexpr int64_t kSecondsPerDay = 86'400;
  // Floor division, so that times before 1970 count back from the epoch.
  int64_t seconds = ns / kNanosPerSecond;
  int64_t nanos = ns % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    --seconds;
  }
  int64_t days = seconds / kSecondsPerDay;
  int64_t second_of_day = seconds % kSecondsPerDay;
  if (second_of_day < 0) {
    second_of_day += kSecondsPerDay;
    --days;
  }
  // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
  days += 719'468;
  const int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
  const int64_t day_of_era = days - era * 146'097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36'524 - day_of_era / 146'096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t shifted_month = (5 * day_of_year + 2) / 153;  // March = 0
  const int64_t day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
  const int64_t month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);

  char buf[160];  // room for any int64 in every field, as the compiler checks
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09lldZ",
                static_cast<long long>(year), static_cast<long long>(month),
                static_cast<long long>(day), static_cast<long long>(second_of_day / 3600),
                static_cast<long long>(second_of_day / 60 % 60),
                static_cast<long long>(second_of_day % 60), static_cast<long long>(nanos));
  return buf;
}

}  // namespace cairn::storage
