#include "tools/serve/run_view.h"

#include <string_view>
#include <utility>
#include <variant>

#include "base/limits.h"
#include "engine/definition/definition.h"
#include "storage/event_json.h"

namespace cairn::serve {

// A payload's JSON value, fetching blobs. Text that does not parse is shown as stored.
Result<Json> PayloadValue(const storage::Store& store, const storage::Payload& payload) {
  switch (payload.kind) {
    case storage::Payload::Kind::kNone:
      return Json(nullptr);
    case storage::Payload::Kind::kJson: {
      auto value = ParseJson(payload.json, "stored payload", limits::blob_bytes_max);
      return value.ok() ? std::move(value).value() : Json{{"unparsed_json", payload.json}};
    }
    case storage::Payload::Kind::kBlob: {
      CAIRN_ASSIGN_OR_RETURN(std::string text, store.GetBlob(payload.blob));
      auto value = ParseJson(text, "stored payload", limits::blob_bytes_max);
      return value.ok() ? std::move(value).value() : Json{{"unparsed_json", text}};
    }
  }
  return Json(nullptr);
}

namespace {

Status ReadStart(const storage::Store& store, RunView& view) {
  auto first = store.ReadHistory(view.header.run_id, 0, 1);
  if (!first.ok()) return first.status();
  if (first->empty()) return Status::Ok();
  const auto* started = std::get_if<storage::RunStarted>(&first->front().body);
  if (started == nullptr) return Status::Ok();
  view.started_by = started->started_by;
  CAIRN_ASSIGN_OR_RETURN(view.input, PayloadValue(store, started->input));
  return Status::Ok();
}

Status ReadStop(const storage::Store& store, RunView& view) {
  if (!storage::IsTerminal(view.header.status) || view.header.next_seq == 0) return Status::Ok();
  auto last = store.ReadHistory(view.header.run_id, view.header.next_seq - 1, 1);
  if (!last.ok()) return last.status();
  if (last->empty()) return Status::Ok();
  const auto* stopped = std::get_if<storage::RunStopped>(&last->front().body);
  if (stopped == nullptr) return Status::Ok();
  view.error = stopped->error;
  view.stop_detail = stopped->detail;
  view.stopped_by = stopped->actor;
  if (view.header.status == storage::RunStatus::kCompleted) {
    CAIRN_ASSIGN_OR_RETURN(Json output, PayloadValue(store, stopped->output));
    view.output = std::move(output);
  }
  return Status::Ok();
}

// The event types the listen task at `path` accepts ("event for /do/0/approval"), read
// from the run's definition. Empty when any type will do or it cannot be told.
std::vector<std::string> AwaitedTypes(const storage::Store& store, const storage::RunHeader& h) {
  constexpr std::string_view kPrefix = "event for ";
  std::vector<std::string> types;
  if (h.waiting_on.rfind(kPrefix, 0) != 0) return types;
  const std::string path = h.waiting_on.substr(kPrefix.size());
  auto canonical = store.GetDefinition(h.definition_hash);
  if (!canonical.ok()) return types;
  auto definition = engine::LoadCanonicalDefinition(*canonical);
  if (!definition.ok()) return types;
  for (const engine::Task* task : (*definition)->tasks) {
    if (task == nullptr || task->path != path) continue;
    const auto* listen = std::get_if<engine::ListenBody>(&task->body);
    if (listen == nullptr) break;
    for (const engine::EventFilter& filter : listen->filters) {
      auto type = filter.with.find("type");
      if (type != filter.with.end() && type->is_string()) types.push_back(type->get<std::string>());
    }
  }
  return types;
}

// A run waiting on an approval ("approval ID of TOOL until TIME"): the request it waits on, found
// by reading its history backwards a page at a time (it is nearly always among the last few
// events).
Status ReadApproval(const storage::Store& store, RunView& view) {
  constexpr std::string_view kPrefix = "approval ";
  const storage::RunHeader& h = view.header;
  if (storage::IsTerminal(h.status) || h.waiting_on.rfind(kPrefix, 0) != 0) return Status::Ok();
  // "approval ID of TOOL until TIME"
  std::string id = h.waiting_on.substr(kPrefix.size());
  id = id.substr(0, id.find(' '));
  constexpr uint64_t kPage = 32;
  for (uint64_t end = h.next_seq; end > 0;) {
    const uint64_t from = end > kPage ? end - kPage : 0;
    CAIRN_ASSIGN_OR_RETURN(std::vector<storage::Event> events,
                           store.ReadHistory(h.run_id, from, end - from));
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      const auto* asked = std::get_if<storage::ApprovalRequested>(&it->body);
      if (asked == nullptr || asked->approval_id != id) continue;
      CAIRN_ASSIGN_OR_RETURN(view.approval_arguments, PayloadValue(store, asked->arguments));
      view.approval = *asked;
      return Status::Ok();
    }
    end = from;
  }
  return Status::Ok();
}

}  // namespace

Result<RunView> ReadRunView(const storage::Store& store, const RunId& run_id) {
  RunView view;
  CAIRN_ASSIGN_OR_RETURN(view.header, store.GetRun(run_id));
  CAIRN_RETURN_IF_ERROR(ReadStart(store, view).WithContext("reading run " + run_id.str()));
  CAIRN_RETURN_IF_ERROR(ReadStop(store, view).WithContext("reading run " + run_id.str()));
  CAIRN_RETURN_IF_ERROR(ReadApproval(store, view).WithContext("reading run " + run_id.str()));
  view.awaited_types = AwaitedTypes(store, view.header);
  return view;
}

Json ActorJson(const storage::Actor& actor) {
  if (actor.name.empty() && actor.role.empty()) return nullptr;
  return {{"name", actor.name}, {"role", actor.role}};
}

Json ErrorJson(const storage::ErrorInfo& error) {
  if (error.empty() && error.instance.empty()) return nullptr;
  return {{"type", error.type},
          {"status", error.status},
          {"title", error.title},
          {"detail", error.detail},
          {"instance", error.instance}};
}

namespace {

Json ApprovalJson(const RunView& v) {
  if (!v.approval) return nullptr;
  const storage::ApprovalRequested& a = *v.approval;
  return {{"approval_id", a.approval_id},
          {"tool", a.tool},
          {"arguments", v.approval_arguments},
          {"binding_hash", a.binding_hash.Hex()},
          {"expires", a.expires_at_ns == 0 ? Json(nullptr)
                                           : Json(storage::FormatTimeRfc3339(a.expires_at_ns))},
          {"on_expiry", storage::Name(a.on_expiry)},
          {"rule_id", a.rule_id},
          {"reason", a.reason},
          {"approvers", a.approvers}};
}

}  // namespace

Json RunViewToJson(const RunView& v) {
  const storage::RunHeader& h = v.header;
  Json header = storage::RunHeaderToJson(h);
  return {{"run_id", h.run_id.str()},
          {"status", storage::Name(h.status)},
          {"stop_reason", h.stop_reason == storage::StopReason::kNone
                              ? Json(nullptr)
                              : Json(storage::Name(h.stop_reason))},
          {"workflow",
           {{"namespace", h.workflow_namespace},
            {"name", h.workflow_name},
            {"version", h.workflow_version},
            {"hash", h.definition_hash.Hex()}}},
          {"started_by", ActorJson(v.started_by)},
          {"created", storage::FormatTimeRfc3339(h.created_at_ns)},
          {"updated", storage::FormatTimeRfc3339(h.updated_at_ns)},
          {"events", h.next_seq},
          {"waiting_on", h.waiting_on.empty() ? Json(nullptr) : Json(h.waiting_on)},
          {"timers", std::move(header["timers"])},
          {"awaited_types", v.awaited_types},
          {"approval", ApprovalJson(v)},
          {"policy_hash", h.policy_hash.IsZero() ? Json(nullptr) : Json(h.policy_hash.Hex())},
          {"budget",
           {{"limits", std::move(header["budget_limits"])},
            {"spent", std::move(header["budget_spent"])},
            {"reserved", std::move(header["budget_reserved"])}}},
          {"input", v.input},
          {"output", v.output ? *v.output : Json(nullptr)},
          {"error", ErrorJson(v.error)},
          {"stop_detail", v.stop_detail},
          {"stopped_by", ActorJson(v.stopped_by)}};
}

std::string_view KillScopeName(engine::KillSwitch::Scope scope) {
  switch (scope) {
    case engine::KillSwitch::Scope::kAll:
      return "all";
    case engine::KillSwitch::Scope::kWorkflow:
      return "workflow";
    case engine::KillSwitch::Scope::kRun:
      return "run";
  }
  return "all";
}

Json KillSwitchJson(const engine::KillSwitch& kill) {
  return {
      {"scope", KillScopeName(kill.scope)},
      {"target", kill.scope == engine::KillSwitch::Scope::kAll ? Json(nullptr) : Json(kill.target)},
      {"reason", kill.reason},
      {"engaged_by", kill.actor.name},
      {"engaged", kill.engaged_at_ns == 0 ? Json(nullptr)
                                          : Json(storage::FormatTimeRfc3339(kill.engaged_at_ns))}};
}

std::optional<engine::EffectResolution::Outcome> ParseResolutionOutcome(std::string_view text) {
  using Outcome = engine::EffectResolution::Outcome;
  if (text == "ok") return Outcome::kOk;
  if (text == "failed") return Outcome::kFailed;
  if (text == "abandon") return Outcome::kAbandon;
  return std::nullopt;
}

bool MatchesWorkflow(const engine::ParsedWorkflowRef& ref, const storage::RunHeader& h) {
  if (ref.hash) return h.definition_hash == *ref.hash;
  if (!ref.namespace_.empty() && ref.namespace_ != h.workflow_namespace) return false;
  if (ref.name != h.workflow_name) return false;
  return ref.version.empty() || ref.version == h.workflow_version;
}

}  // namespace cairn::serve
