// CheckRunHeader: what a run header says about its history (store.h).
#include <string>
#include <utility>
#include <variant>

#include "storage/store.h"

namespace cairn::storage {
namespace {

std::string WorkflowOf(std::string_view ns, std::string_view name, std::string_view version) {
  return std::string(ns) + "/" + std::string(name) + ":" + std::string(version);
}

}  // namespace

void CheckRunHeader(const Store& store, VerifyReport& report) {
  if (!report.ok) return;
  auto fail = [&report](uint64_t seq, std::string problem) {
    report.ok = false;
    report.first_bad_seq = seq;
    report.problem = "run header: " + std::move(problem);
  };
  Result<RunHeader> header = store.GetRun(report.run_id);
  if (!header.ok()) return fail(0, header.status().message());
  const RunHeader& h = *header;
  if (h.next_seq == 0) return fail(0, "the run has no events");
  Result<std::vector<Event>> first = store.ReadHistory(h.run_id, 0, 1);
  if (!first.ok() || first->empty()) return fail(0, "event 0 cannot be read");
  const auto* started = std::get_if<RunStarted>(&first->front().body);
  if (started == nullptr) {
    return fail(0,
                "event 0 is " + std::string(KindName(first->front().body)) + ", not run_started");
  }
  if (started->workflow_namespace != h.workflow_namespace ||
      started->workflow_name != h.workflow_name ||
      started->workflow_version != h.workflow_version) {
    return fail(0, "names workflow " +
                       WorkflowOf(h.workflow_namespace, h.workflow_name, h.workflow_version) +
                       " but run_started names " +
                       WorkflowOf(started->workflow_namespace, started->workflow_name,
                                  started->workflow_version));
  }
  if (started->definition_hash != h.definition_hash) {
    return fail(0, "definition sha256:" + h.definition_hash.Hex() +
                       " differs from run_started's sha256:" + started->definition_hash.Hex());
  }
  if (started->policy_hash != h.policy_hash) {
    return fail(0, "policy sha256:" + h.policy_hash.Hex() +
                       " differs from run_started's sha256:" + started->policy_hash.Hex());
  }
  if (Result<std::string> def = store.GetDefinition(h.definition_hash); !def.ok()) {
    return fail(0, "definition sha256:" + h.definition_hash.Hex() +
                       (def.status().code() == StatusCode::kNotFound
                            ? " is not stored"
                            : " cannot be read: " + def.status().message()));
  }
  Result<std::vector<Event>> last = store.ReadHistory(h.run_id, h.next_seq - 1, 1);
  if (!last.ok() || last->empty()) return fail(h.next_seq - 1, "the last event cannot be read");
  const auto* stopped = std::get_if<RunStopped>(&last->front().body);
  if (IsTerminal(h.status) != (stopped != nullptr)) {
    return fail(h.next_seq - 1,
                "status " + std::string(Name(h.status)) +
                    (stopped != nullptr
                         ? " but the last event is run_stopped"
                         : " but the last event is " + std::string(KindName(last->front().body))));
  }
  if (stopped != nullptr && stopped->reason != h.stop_reason) {
    return fail(h.next_seq - 1, "stop reason " + std::string(Name(h.stop_reason)) +
                                    " but run_stopped says " + std::string(Name(stopped->reason)));
  }
}

}  // namespace cairn::storage
