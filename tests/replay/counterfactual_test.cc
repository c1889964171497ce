// Counterfactual replay over real histories: runs driven by the engine under one policy
// (and one agent) are replayed with another policy or agent; each point where the other
// side would have decided otherwise is reported at the recorded event's seq with both
// answers, nothing else is, and the replay itself still matches the log.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "engine/core/engine.h"
#include "engine/core/standalone_decider.h"
#include "replay/replayer.h"
#include "tests/replay/billing_fixture.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::replay {
namespace {

using namespace std::chrono_literals;
using billing::kFlow;
using billing::kPick;
using billing::kPolicy;
using engine::ApprovalAnswer;
using engine::Engine;
using engine::EngineOptions;
using storage::RunStatus;
using testing::Must;

// Two allowed calls, then a third task.
constexpr const char* kTwice = R"(
document: {dsl: '1.0.3', namespace: test, name: twice, version: '1.0.0'}
do:
  - one:
      call: billing.change_plan
      with: {plan: a, monthly_price: 10}
  - two:
      call: billing.change_plan
      with: {plan: b, monthly_price: 20}
  - three:
      set: {done: true}
)";

constexpr const char* kAgents = R"(
default: planner
agents:
  planner:
    kind: scripted
    rules:
      - when: [{path: /context/team_size, gte: 10}]
        option: team
        rationale: Ten or more people share billing.
    otherwise: {option: starter, rationale: Small teams start small.}
  always-team:
    kind: scripted
    otherwise: {option: team, rationale: Everyone is a team.}
  same-as-planner:
    kind: scripted
    rules:
      - when: [{path: /context/team_size, gte: 10}]
        option: team
        rationale: Worded otherwise, decided the same.
    otherwise: {option: starter, rationale: Worded otherwise.}
  no-answer:
    kind: scripted
    rules:
      - when: [{path: /context/team_size, gte: 1000}]
        option: team
        rationale: Only huge teams.
)";

class CounterfactualTest : public ::testing::Test {
 protected:
  void SetUp() override { Record(); }

  void Record() {
    agents_ = Must(agent::AgentRegistry::Load(kAgents, "a.yaml"));
    EngineOptions options = billing::RecordingOptions(dir_.Sub("data"), clock_, agents_);
    std::unique_ptr<Engine> engine = Must(Engine::Open(options));
    auto start = [&](const std::string& definition, Json input) {
      const engine::WorkflowRef ref = Must(engine->ApplyDefinition(definition, "w.yaml"));
      engine::StartRequest request;
      request.workflow = ref.namespace_ + "/" + ref.name;
      request.input = std::move(input);
      return Must(engine->Start(std::move(request))).run_id;
    };
    small_ = start(kFlow, Json{{"x", 1}});
    big_ = start(kFlow, Json{{"x", 20}});
    approved_ = start(kFlow, Json{{"x", 200}});
    twice_ = start(kTwice, Json::object());
    starter_ = start(kPick, Json{{"size", 3}});
    team_ = start(kPick, Json{{"size", 12}});
    for (const RunId& id : {small_, big_, twice_, starter_, team_}) {
      EXPECT_EQ(Must(engine->Wait(id, 20s)).header.status, RunStatus::kCompleted) << id.str();
    }
    EXPECT_EQ(Must(engine->Wait(approved_, 20s)).header.status, RunStatus::kWaiting);
    Must(engine->ResolveApproval(approved_, ApprovalAnswer{true, "", "fine", {"alice", "lead"}}));
    EXPECT_EQ(Must(engine->Wait(approved_, 20s)).header.status, RunStatus::kCompleted);
    Must(engine->Close());
    storage::StoreOptions store_options;
    store_options.read_only = true;
    store_options.clock = &clock_;
    store_ = Must(storage::Store::Open(dir_.Sub("data"), store_options));
  }

  std::vector<storage::Event> History(const RunId& run) {
    return Must(store_->ReadHistory(run, 0, 10'000));
  }

  // The seq of the n-th (from 0) event of `run` matching `pred`.
  uint64_t SeqOf(const RunId& run, const std::function<bool(const storage::Event&)>& pred,
                 int n = 0) {
    for (const storage::Event& e : History(run)) {
      if (pred(e) && n-- == 0) return e.seq.value();
    }
    ADD_FAILURE() << "no such event in run " << run.str();
    return 0;
  }

  static std::function<bool(const storage::Event&)> Kind(std::string_view kind) {
    return [kind](const storage::Event& e) { return storage::KindName(e.body) == kind; };
  }

  // Replays `run` under the counterfactual `policy_yaml`; the replay must match.
  ReplayResult WithPolicy(const RunId& run, const std::string& policy_yaml) {
    ReplayOptions options;
    options.counterfactual_policy = Must(policy::Policy::Load(policy_yaml, "cf.yaml"));
    return Matched(run, std::move(options));
  }

  // Replays `run` asking the configured agent `name` at each decision.
  ReplayResult WithAgent(const RunId& run, const std::string& name) {
    std::shared_ptr<agent::Agent> agent = agents_->Find(name);
    EXPECT_NE(agent, nullptr) << name;
    std::shared_ptr<engine::StandaloneDecider> decider = Must(engine::StandaloneDecider::Create(
        clock_, [](const std::string& tool, const Json&, std::chrono::milliseconds) {
          return Result<Json>(Status::FailedPrecondition("no tools: " + tool));
        }));
    ReplayOptions options;
    options.counterfactual_agent =
        [decider, agent](const RunId& id, const engine::Definition& def,
                         const engine::DecisionCommand& command) -> Result<storage::AgentDecided> {
      return decider->Decide(*agent, id.str(), def, command);
    };
    return Matched(run, std::move(options));
  }

  ReplayResult Matched(const RunId& run, ReplayOptions options) {
    Replayer replayer(*store_, std::move(options));
    ReplayResult r = Must(replayer.Replay(run));
    EXPECT_TRUE(r.matched()) << DescribeDivergence(*r.divergence);
    EXPECT_EQ(r.events, Must(store_->GetRun(run)).next_seq) << run.str();
    return r;
  }

  static std::string Describe(const ReplayResult& r) {
    std::string text;
    for (const Difference& d : r.differences) text += "\n  " + DescribeDifference(d);
    return text;
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::shared_ptr<agent::AgentRegistry> agents_;
  std::unique_ptr<storage::Store> store_;
  RunId small_, big_, approved_, twice_, starter_, team_;
};

const std::string kDenyWrites = R"(
version: 1
name: frozen
rules:
  - id: no-plan-changes
    tools: [billing.change_plan]
    decision: deny
)";

TEST_F(CounterfactualTest, ADenyingPolicyReportsTheAllowedWriteWithBothVerdicts) {
  ReplayResult r = WithPolicy(big_, kDenyWrites);
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  const Difference& d = r.differences[0];
  EXPECT_EQ(d.kind, "policy_verdict");
  EXPECT_EQ(d.run_id, big_);
  EXPECT_EQ(d.seq, SeqOf(big_, Kind("policy_verdict")));
  EXPECT_EQ(d.task_path, "/do/3/change");
  EXPECT_EQ(d.recorded.at("decision"), "allow");
  EXPECT_EQ(d.recorded.at("rule_id"), "small-changes");
  EXPECT_EQ(d.recorded.at("tool"), "billing.change_plan");
  EXPECT_EQ(d.counterfactual.at("decision"), "deny");
  EXPECT_EQ(d.counterfactual.at("rule_id"), "no-plan-changes");
  EXPECT_EQ(d.counterfactual.at("reason_code"), "denied_by_rule");
  EXPECT_TRUE(testing::HasSubstr(d.note, "policy_denied"));
  EXPECT_EQ(DescribeDifference(d),
            "seq " + std::to_string(d.seq) +
                " /do/3/change: policy_verdict billing.change_plan allow (rule small-changes) -> "
                "deny (rule no-plan-changes: denied_by_rule)");
  EXPECT_EQ(r.points.verdicts, 1u);
  EXPECT_EQ(r.points.run, 2u);  // the budget caps and the kill switch: both the same
}

TEST_F(CounterfactualTest, OnlyThePolicysOwnVerdictsAreReEvaluated) {
  // The approved run has two verdicts: require_approval (the policy's) and, after the
  // approval, "approved" before the commit (not the policy's): one point, one difference.
  ReplayResult r = WithPolicy(approved_, kDenyWrites);
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  EXPECT_EQ(r.differences[0].seq, SeqOf(approved_, Kind("policy_verdict"), 0));
  EXPECT_EQ(r.differences[0].recorded.at("decision"), "require_approval");
  EXPECT_EQ(r.differences[0].counterfactual.at("decision"), "deny");
  EXPECT_EQ(r.points.verdicts, 1u);
}

TEST_F(CounterfactualTest, APolicyRequiringApprovalReportsTheApprovalAndItsApprovers) {
  ReplayResult r = WithPolicy(big_, R"(
version: 1
rules:
  - id: every-change
    tools: [billing.change_plan]
    decision: require_approval
    approval: {approvers: [bob, carol]}
)");
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  EXPECT_EQ(r.differences[0].seq, SeqOf(big_, Kind("policy_verdict")));
  EXPECT_EQ(r.differences[0].recorded.at("decision"), "allow");
  EXPECT_EQ(r.differences[0].counterfactual.at("decision"), "require_approval");
  EXPECT_EQ(r.differences[0].counterfactual.at("approvers"), Json::array({"bob", "carol"}));
  EXPECT_TRUE(testing::HasSubstr(r.differences[0].note, "by bob, carol"));
}

TEST_F(CounterfactualTest, TheSamePolicyReportsNothing) {
  for (const RunId& id : {small_, big_, approved_, twice_, starter_, team_}) {
    ReplayResult r = WithPolicy(id, kPolicy);
    EXPECT_TRUE(r.differences.empty()) << id.str() << Describe(r);
    EXPECT_EQ(r.points.run, 2u);
  }
  EXPECT_EQ(WithPolicy(twice_, kPolicy).points.verdicts, 2u);
  EXPECT_EQ(WithPolicy(small_, kPolicy).points.verdicts, 0u);
}

TEST_F(CounterfactualTest, AnotherRuleDecidingTheSameIsNotADifference) {
  ReplayResult r = WithPolicy(big_, R"(
version: 1
rules:
  - id: any-change
    tools: [billing.change_plan]
    decision: allow
)");
  EXPECT_TRUE(r.differences.empty()) << Describe(r);
  EXPECT_EQ(r.points.verdicts, 1u);
}

TEST_F(CounterfactualTest, ALowerToolCallCapStopsTheRunAtTheCallOverIt) {
  ReplayResult r = WithPolicy(twice_, std::string(kPolicy) + "budgets: {tool_calls: 1}\n");
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  const Difference& d = r.differences[0];
  EXPECT_EQ(d.kind, "budget");
  EXPECT_EQ(d.seq, SeqOf(twice_, Kind("effect_intent"), 1));
  EXPECT_EQ(d.task_path, "/do/1/two");
  EXPECT_EQ(d.recorded.at("caps").at("tool_calls"), 0);
  EXPECT_EQ(d.counterfactual.at("caps").at("tool_calls"), 1);
  EXPECT_EQ(d.counterfactual.at("exhausted"),
            (Json{{"dimension", "tool_calls"}, {"used", 2}, {"cap", 1}}));
  EXPECT_TRUE(testing::HasSubstr(DescribeDifference(d),
                                 "budget tool_calls none -> 1: the run "
                                 "would have stopped here"));
}

TEST_F(CounterfactualTest, ALowerStepCapStopsTheRunAtTheTaskOverIt) {
  ReplayResult r = WithPolicy(twice_, std::string(kPolicy) + "budgets: {steps: 2}\n");
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  EXPECT_EQ(r.differences[0].seq, SeqOf(twice_, Kind("task_routed"), 2));
  EXPECT_EQ(r.differences[0].task_path, "/do/2/three");
  EXPECT_EQ(r.differences[0].counterfactual.at("exhausted").at("dimension"), "steps");
}

TEST_F(CounterfactualTest, AWallClockCapStopsTheRunAtTheFirstEventPastIt) {
  ReplayResult r = WithPolicy(starter_, std::string(kPolicy) + "budgets: {wall_clock: 10ms}\n");
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  const Difference& d = r.differences[0];
  ASSERT_EQ(d.counterfactual.at("exhausted").at("dimension"), "wall_clock");
  // The first event at least 10 ms after the start (the 20 ms wait guarantees one).
  const std::vector<storage::Event> history = History(starter_);
  uint64_t expected = 0;
  for (const storage::Event& e : history) {
    if (e.time_ns - history.front().time_ns >= 10'000'000) {
      expected = e.seq.value();
      break;
    }
  }
  EXPECT_EQ(d.seq, expected);
}

TEST_F(CounterfactualTest, CapsWithinTheRunsSpendingAreADifferenceWithoutAStop) {
  ReplayResult r = WithPolicy(twice_, std::string(kPolicy) + "budgets: {tool_calls: 10}\n");
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  EXPECT_EQ(r.differences[0].seq, SeqOf(twice_, Kind("run_started")));
  EXPECT_EQ(r.differences[0].task_path, "/");
  EXPECT_TRUE(r.differences[0].counterfactual.at("exhausted").is_null());
  EXPECT_TRUE(testing::HasSubstr(r.differences[0].note, "stays within"));
}

TEST_F(CounterfactualTest, AKillSwitchReportsAtTheStartAndAtEveryVerdict) {
  const std::string killed =
      std::string(kPolicy) + "kill_switch: {workflows: [test/flow], reason: incident 42}\n";
  ReplayResult r = WithPolicy(big_, killed);
  ASSERT_EQ(r.differences.size(), 2u) << Describe(r);
  EXPECT_EQ(r.differences[0].kind, "kill_switch");
  EXPECT_EQ(r.differences[0].seq, SeqOf(big_, Kind("run_started")));
  EXPECT_EQ(r.differences[0].recorded.at("covered"), false);
  EXPECT_EQ(r.differences[0].counterfactual.at("covered"), true);
  EXPECT_TRUE(testing::HasSubstr(r.differences[0].note, "incident 42"));
  EXPECT_EQ(r.differences[1].kind, "policy_verdict");
  EXPECT_EQ(r.differences[1].counterfactual.at("rule_id"), "kill_switch");
  EXPECT_EQ(r.differences[1].counterfactual.at("reason_code"), "kill_switch_engaged");
  // A run that called no tool: the switch covers it, and nothing would have changed.
  ReplayResult quiet = WithPolicy(small_, killed);
  ASSERT_EQ(quiet.differences.size(), 1u) << Describe(quiet);
  EXPECT_TRUE(testing::HasSubstr(quiet.differences[0].note, "nothing it did would have changed"));
  // Another workflow is not covered.
  EXPECT_TRUE(WithPolicy(twice_, killed).differences.empty());
}

TEST_F(CounterfactualTest, AnAgentPickingAnotherOptionReportsTheDecision) {
  ReplayResult r = WithAgent(starter_, "always-team");
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  const Difference& d = r.differences[0];
  EXPECT_EQ(d.kind, "agent_decision");
  EXPECT_EQ(d.seq, SeqOf(starter_, Kind("agent_decided")));
  EXPECT_EQ(d.task_path, "/do/0/ask");
  EXPECT_EQ(d.recorded.at("agent"), "planner");
  EXPECT_EQ(d.recorded.at("option"), "starter");
  EXPECT_EQ(d.counterfactual.at("agent"), "always-team");
  EXPECT_EQ(d.counterfactual.at("option"), "team");
  EXPECT_EQ(d.counterfactual.at("reason_code"), "decided");
  EXPECT_TRUE(testing::HasSubstr(DescribeDifference(d),
                                 "agent_decision planner chose starter -> always-team chose team"));
  EXPECT_EQ(r.points.decisions, 1u);
  EXPECT_EQ(r.points.verdicts + r.points.run, 0u);  // no policy asked
  // The run that chose team already: nothing to report.
  ReplayResult same = WithAgent(team_, "always-team");
  EXPECT_TRUE(same.differences.empty()) << Describe(same);
  EXPECT_EQ(same.points.decisions, 1u);
}

TEST_F(CounterfactualTest, AnAgentChoosingTheSameInOtherWordsReportsNothing) {
  for (const RunId& id : {starter_, team_}) {
    ReplayResult r = WithAgent(id, "same-as-planner");
    EXPECT_TRUE(r.differences.empty()) << Describe(r);
    EXPECT_EQ(r.points.decisions, 1u);
  }
}

TEST_F(CounterfactualTest, AnAgentThatFailsReportsItsReason) {
  ReplayResult r = WithAgent(starter_, "no-answer");
  ASSERT_EQ(r.differences.size(), 1u) << Describe(r);
  EXPECT_EQ(r.differences[0].counterfactual.at("option"), "");
  EXPECT_NE(r.differences[0].counterfactual.at("reason_code"), "decided");
  EXPECT_TRUE(testing::HasSubstr(DescribeDifference(r.differences[0]), "no-answer failed ("));
}

TEST_F(CounterfactualTest, AHookErrorFailsTheRunsReplay) {
  ReplayOptions options;
  options.counterfactual_agent =
      [](const RunId&, const engine::Definition&,
         const engine::DecisionCommand&) -> Result<storage::AgentDecided> {
    return Status::Unavailable("the model is down");
  };
  Replayer replayer(*store_, std::move(options));
  EXPECT_TRUE(testing::IsError(replayer.Replay(starter_).status(), StatusCode::kUnavailable,
                               {"the model is down", "counterfactual agent at seq"}));
}

TEST_F(CounterfactualTest, ADivergenceEndsTheCounterfactualToo) {
  // A definition that diverges at the first task: the verdict after it is never reached.
  std::string changed = kFlow;
  changed.replace(changed.find("${ .x + 1 }"), 11, "${ .x + 2 }");
  ReplayOptions options;
  options.definition = Must(engine::LoadDefinition(changed, "changed.yaml"));
  options.counterfactual_policy = Must(policy::Policy::Load(kDenyWrites, "cf.yaml"));
  ReplayResult r = Must(Replayer(*store_, std::move(options)).Replay(big_));
  EXPECT_FALSE(r.matched());
  EXPECT_EQ(r.points.verdicts, 0u);
  EXPECT_TRUE(r.differences.empty()) << Describe(r);
}

}  // namespace
}  // namespace cairn::replay
