// The counterfactual half of one run's replay (internal to replay/; the contract is
// counterfactual.h and replayer.h). The replayer drives it along the recorded path:
// Observer() sees each policy question of a step, BeforeInput each recorded input,
// AfterStep each step's matched events, Finish the run-level points.
//
// Lifecycle: one per replayed run, on the replaying thread; `history` must outlive it.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/interpreter.h"
#include "engine/core/run_state.h"
#include "policy/policy.h"
#include "replay/counterfactual.h"
#include "storage/event.h"

namespace cairn::replay::internal {

class CounterfactualRun {
 public:
  // `policy`: the counterfactual policy (null: none). `agent`: the counterfactual agent
  // (null or empty: none). `recorded_policy` governs the run as recorded.
  CounterfactualRun(const RunId& run_id, const std::vector<storage::Event>& history,
                    std::shared_ptr<const engine::Definition> definition,
                    std::shared_ptr<const policy::Policy> recorded_policy,
                    std::shared_ptr<const policy::Policy> policy, const DecisionHook* agent);

  // For Interpreter::set_policy_observer; empty without a counterfactual policy.
  engine::PolicyObserver Observer();

  // Before history[index] (an input) is fed. An agent_decided answering a decision the
  // replay saw asked is put to the counterfactual agent. Errors: the hook's.
  Status BeforeInput(size_t index);

  // After a step: its first `matched` produced events equal history[first, first+matched).
  void AfterStep(const engine::StepOutput& out, size_t first, size_t matched,
                 const engine::RunState& state);

  // The run-level points over history[0, checked) (the events the replay matched), then
  // every difference in seq order.
  void Finish(size_t checked, std::vector<Difference>& differences, CounterfactualPoints& points);

 private:
  struct Observed {
    policy::ToolUse use;
    policy::Verdict verdict;
    size_t event_index = 0;
  };
  struct Exhaustion {
    size_t index = 0;  // into history
    std::string dimension;
    Json used;
    Json cap;
  };

  void CompareVerdict(const Observed& observed, size_t index);
  void WatchSteps(size_t first, size_t matched, const engine::RunState& state);
  void Note(std::optional<Exhaustion>& first, Exhaustion candidate);
  std::optional<Exhaustion> FirstExhaustion(size_t checked);
  void AddKillSwitch(std::vector<Difference>& differences);
  void AddBudget(size_t checked, std::vector<Difference>& differences);
  Difference Make(size_t index, std::string task_path, std::string kind);

  RunId run_id_;
  const std::vector<storage::Event>& history_;
  std::shared_ptr<const engine::Definition> definition_;
  std::shared_ptr<const policy::Policy> recorded_policy_;
  std::shared_ptr<const policy::Policy> policy_;
  const DecisionHook* agent_;
  std::vector<Observed> observed_;                            // this step's policy questions
  std::map<std::string, engine::DecisionCommand> decisions_;  // asked, by decision key
  std::vector<Difference> differences_;
  CounterfactualPoints points_;
  uint64_t verdicts_seen_ = 0;  // policy verdicts on the matched path
  uint64_t steps_before_ = 0;   // RunState::steps before the current step
  std::optional<Exhaustion> steps_exhausted_;
};

}  // namespace cairn::replay::internal
