// The `recorded` agent: decisions of a recorded run, for replay.
#include "agent/recorded_agent.h"

namespace cairn::agent {

std::optional<Proposal> RecordedAgent::Propose(Session& session) {
  const std::string& key = session.request().decision_key;
  std::optional<DecisionOutcome> recorded = lookup_(key);
  if (!recorded) {
    session.Fail(Reason::kAgentError,
                 "recorded agent '" + name_ + "': no recorded decision for key '" + key + "'");
    return std::nullopt;
  }
  session.SetModel(recorded->model);
  if (!recorded->decided()) session.Fail(recorded->reason, recorded->detail);
  session.Restore(recorded->steps_used, recorded->usage);
  if (recorded->request_transcript.is_array()) {
    for (Json& entry : recorded->request_transcript) session.RecordRequest(std::move(entry));
  }
  if (recorded->response_transcript.is_array()) {
    for (Json& entry : recorded->response_transcript) session.RecordResponse(std::move(entry));
  }
  if (!recorded->decided()) return std::nullopt;
  return Proposal{std::move(recorded->option), std::move(recorded->rationale),
                  recorded->confidence};
}

}  // namespace cairn::agent
