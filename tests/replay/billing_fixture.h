// The billing runs tests/replay records and replays: a workflow whose input decides
// between no call, an allowed plan change and one that needs alice's approval (kFlow); an
// agent's pick between two plans (kPick); the policy they run under; and the options of
// the engine that records them (the billing tool answers in process).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent/config.h"
#include "base/clock.h"
#include "engine/core/engine.h"
#include "policy/policy.h"
#include "tests/support/assertions.h"

namespace cairn::replay::billing {

// x = 1: no call; x = 20: a change of 21 a month (allowed); x = 200: a change of 201 (an
// approval, by alice).
inline constexpr const char* kFlow = R"(
document: {dsl: '1.0.3', namespace: test, name: flow, version: '1.0.0'}
do:
  - first:
      set:
        a: ${ .x + 1 }
  - pick:
      switch:
        - big:
            when: ${ .a > 10 }
            then: change
        - otherwise:
            then: second
  - second:
      set:
        b: ${ .a * 2 }
      then: end
  - change:
      call: billing.change_plan
      with:
        plan: ${ .a | tostring }
        monthly_price: ${ .a }
)";

inline constexpr const char* kPick = R"(
document: {dsl: '1.0.3', namespace: test, name: pick, version: '1.0.0'}
do:
  - ask:
      call: agent
      with:
        goal: Pick the plan for the team
        options: [starter, team]
        context: {team_size: '${ .size }'}
  - pause:
      wait: {milliseconds: 20}
  - done:
      set:
        plan: ${ .option }
)";

inline constexpr const char* kPolicy = R"(
version: 1
name: billing
rules:
  - id: small-changes
    tools: [billing.change_plan]
    when: [{path: /arguments/monthly_price, lte: 100}]
    decision: allow
  - id: big-changes
    tools: [billing.change_plan]
    decision: require_approval
    approval: {expires_after: 60s, approvers: [alice]}
)";

// An engine over `data_dir` with the policy above, `agents`, and billing.change_plan
// answering {"changed_to": PLAN}.
inline engine::EngineOptions RecordingOptions(const std::string& data_dir, const Clock& clock,
                                              std::shared_ptr<agent::AgentRegistry> agents) {
  using namespace std::chrono_literals;
  engine::EngineOptions options;
  options.policy = testing::Must(policy::Policy::Load(kPolicy, "p.yaml"));
  options.agents = std::move(agents);
  engine::ToolSpec spec;
  spec.name = "billing.change_plan";
  spec.effect = storage::EffectKind::kWrite;
  spec.risk = storage::RiskLevel::kHigh;
  testing::Must(
      options.tools.Register(spec, [](const engine::ToolRequest& request) -> Result<Json> {
        return Json{{"changed_to", request.arguments.value("plan", "")}};
      }));
  options.data_dir = data_dir;
  options.durability = storage::Durability::kBuffered;
  options.clock = &clock;
  options.threads = 2;
  options.timer_poll = 10ms;
  return options;
}

}  // namespace cairn::replay::billing
