#include "tests/crash/run_facts.h"

#include <utility>
#include <variant>

#include "base/limits.h"

namespace cairn::crash {
namespace {

Result<Json> PayloadJson(const storage::Store& store, const storage::Payload& payload) {
  switch (payload.kind) {
    case storage::Payload::Kind::kNone:
      return Json();
    case storage::Payload::Kind::kJson:
      return ParseJson(payload.json, "payload");
    case storage::Payload::Kind::kBlob: {
      CAIRN_ASSIGN_OR_RETURN(std::string text, store.GetBlob(payload.blob));
      return ParseJson(text, "blob payload", limits::blob_bytes_max);
    }
  }
  return Status::Internal("unknown payload kind");
}

}  // namespace

Result<RunFacts> ReadFacts(const storage::Store& store, const RunId& id) {
  RunFacts facts;
  Status payload_error;
  auto json = [&](const storage::Payload& p) {
    Result<Json> j = PayloadJson(store, p);
    if (!j.ok()) {
      if (payload_error.ok()) payload_error = j.status();
      return Json();
    }
    return std::move(j).value();
  };
  Status scanned = store.ScanHistory(id, 0, [&](const storage::StoredEvent& stored) {
    const storage::EventBody& body = stored.event.body;
    const uint64_t seq = stored.event.seq.value();
    ++facts.events;
    facts.last_is_run_stopped = std::holds_alternative<storage::RunStopped>(body);
    if (const auto* started = std::get_if<storage::RunStarted>(&body)) {
      facts.workflow = started->workflow_namespace + "/" + started->workflow_name;
      facts.input = json(started->input);
    } else if (const auto* intent = std::get_if<storage::EffectIntent>(&body)) {
      facts.intents.push_back({seq, intent->idempotency_key, intent->tool, json(intent->arguments),
                               intent->idempotent, intent->executor});
    } else if (const auto* outcome = std::get_if<storage::EffectOutcome>(&body)) {
      facts.outcomes[outcome->idempotency_key].push_back({outcome->status, outcome->error.status});
    } else if (const auto* decided = std::get_if<storage::AgentDecided>(&body)) {
      facts.decisions.push_back({seq, *decided});
    } else if (const auto* asked = std::get_if<storage::ApprovalRequested>(&body)) {
      RecordedApproval a;
      a.seq = seq;
      a.approval_id = asked->approval_id;
      a.tool = asked->tool;
      a.arguments = json(asked->arguments);
      facts.approvals_requested.push_back(std::move(a));
    } else if (const auto* resolved = std::get_if<storage::ApprovalResolved>(&body)) {
      RecordedApproval a;
      a.seq = seq;
      a.approval_id = resolved->approval_id;
      a.resolution = resolved->resolution;
      a.actor = resolved->actor.name;
      facts.approvals_resolved.push_back(std::move(a));
    } else if (const auto* charged = std::get_if<storage::BudgetCharged>(&body)) {
      facts.charges.push_back(*charged);
    } else if (const auto* control = std::get_if<storage::ControlRequested>(&body)) {
      facts.kills_requested += control->action == storage::ControlRequested::Action::kKill;
    } else if (const auto* stopped = std::get_if<storage::RunStopped>(&body)) {
      ++facts.run_stopped;
      facts.stop_reason = stopped->reason;
    }
    return true;
  });
  CAIRN_RETURN_IF_ERROR(scanned);
  CAIRN_RETURN_IF_ERROR(payload_error);
  return facts;
}

}  // namespace cairn::crash
