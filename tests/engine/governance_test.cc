// The governance half of the engine end to end: policy verdicts before calls, approvals,
// budgets, agent decisions and kill switches, on a real store with real policies and
// agents files.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "agent/config.h"
#include "engine/core/engine.h"
#include "engine/core/interpreter.h"
#include "tests/replay/expect_replays.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine {
namespace {

using namespace std::chrono_literals;
using storage::RunStatus;
using storage::StopReason;
using testing::Must;

constexpr const char* kPlanChange = R"(
document: {dsl: '1.0.3', namespace: billing, name: plan-change, version: '1.0.0'}
do:
  - change:
      call: billing.change_plan
      with:
        plan: ${ .plan }
        monthly_price: ${ .price }
)";

constexpr const char* kTwoCalls = R"(
document: {dsl: '1.0.3', namespace: billing, name: two-calls, version: '1.0.0'}
do:
  - first:
      call: billing.change_plan
      with: {plan: a, monthly_price: 1}
  - second:
      call: billing.change_plan
      with: {plan: b, monthly_price: 1}
)";

constexpr const char* kPolicy = R"(
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
    approval: {expires_after: 300ms, approvers: [alice]}
budgets:
  tool_calls: 1
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
  rogue:
    kind: scripted
    otherwise: {option: enterprise, rationale: Always the most expensive.}
)";

// `agent` is a literal in definitions: one workflow per agent.
std::string PickPlan(const std::string& agent) {
  std::string text = R"(
document: {dsl: '1.0.3', namespace: billing, name: pick-plan-AGENT, version: '1.0.0'}
do:
  - pick:
      try:
        - ask:
            call: agent
            with:
              goal: Pick the plan for the team
              options: [starter, team]
              context: {team_size: '${ .size }'}
              agent: AGENT
      catch:
        as: error
        do:
          - refused:
              set:
                refused: ${ $error.type }
)";
  for (size_t at = text.find("AGENT"); at != std::string::npos; at = text.find("AGENT")) {
    text.replace(at, 5, agent);
  }
  return text;
}

class GovernanceTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (engine_) {
      testing::ExpectEveryRunReplays(engine_->store());  // DESIGN.md §9
      Must(engine_->Close());
    }
  }

  void Open(const char* policy_text, const char* agents_text = nullptr) {
    EngineOptions options;
    if (policy_text != nullptr) options.policy = Must(policy::Policy::Load(policy_text, "p.yaml"));
    if (agents_text != nullptr)
      options.agents = Must(agent::AgentRegistry::Load(agents_text, "a.yaml"));
    ToolSpec spec;
    spec.name = "billing.change_plan";
    spec.effect = storage::EffectKind::kWrite;
    spec.risk = storage::RiskLevel::kHigh;
    Must(options.tools.Register(spec, [this](const ToolRequest& request) -> Result<Json> {
      ++calls_;
      return Json{{"changed_to", request.arguments.value("plan", "")}};
    }));
    options.data_dir = dir_.Sub("data");
    options.durability = storage::Durability::kBuffered;
    options.clock = &clock_;
    options.threads = 2;
    options.timer_poll = 20ms;
    engine_ = Must(Engine::Open(options));
  }

  RunId Start(const std::string& definition, Json input) {
    const WorkflowRef ref = Must(engine_->ApplyDefinition(definition, "w.yaml"));
    StartRequest request;
    request.workflow = ref.namespace_ + "/" + ref.name;
    request.input = std::move(input);
    return Must(engine_->Start(std::move(request))).run_id;
  }

  std::vector<storage::Event> Events(const RunId& id) {
    return Must(engine_->store().ReadHistory(id, 0, 10'000));
  }

  template <typename Body>
  std::vector<Body> All(const RunId& id) {
    std::vector<Body> out;
    for (const storage::Event& e : Events(id)) {
      if (const auto* body = std::get_if<Body>(&e.body)) out.push_back(*body);
    }
    return out;
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<Engine> engine_;
  std::atomic<int> calls_{0};
};

TEST_F(GovernanceTest, WithoutAPolicyWritesAreDenied) {
  Open(nullptr);
  const RunId id = Start(kPlanChange, Json{{"plan", "team"}, {"price", 10}});
  const RunInfo info = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kPolicyDenied);
  EXPECT_EQ(calls_.load(), 0);
  const auto verdicts = All<storage::PolicyVerdict>(id);
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].rule_id, "defaults.write");
  EXPECT_EQ(verdicts[0].reason_code, "denied_by_default");
  EXPECT_EQ(verdicts[0].policy_hash, policy::Policy::Default()->hash());
  EXPECT_TRUE(All<storage::EffectIntent>(id).empty());
}

TEST_F(GovernanceTest, AnAllowedCallRunsAfterItsVerdict) {
  Open(kPolicy);
  const RunId id = Start(kPlanChange, Json{{"plan", "team"}, {"price", 10}});
  const RunInfo info = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kCompleted);
  EXPECT_EQ(calls_.load(), 1);
  const auto verdicts = All<storage::PolicyVerdict>(id);
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].rule_id, "small-changes");
  EXPECT_EQ(info.header.budget_spent.tool_calls, 1u);
  EXPECT_EQ(info.header.budget_limits.tool_calls, 1u);
}

TEST_F(GovernanceTest, AnApprovalIsAnsweredOnceByAnApproverAndThenTheCallRuns) {
  Open(kPolicy);
  const RunId id = Start(kPlanChange, Json{{"plan", "enterprise"}, {"price", 900}});
  RunInfo info = Must(engine_->Wait(id, 20s));
  ASSERT_EQ(info.header.status, RunStatus::kWaiting) << info.waiting_on;
  ASSERT_TRUE(info.approval.has_value());
  EXPECT_EQ(info.approval->tool, "billing.change_plan");
  EXPECT_EQ(info.approval->arguments, (Json{{"plan", "enterprise"}, {"monthly_price", 900}}));
  EXPECT_EQ(info.approval->approvers, std::vector<std::string>{"alice"});
  EXPECT_EQ(info.approval->rule_id, "big-changes");
  EXPECT_EQ(calls_.load(), 0);

  ApprovalAnswer bob{true, "", "looks fine", storage::Actor{"bob", "approver"}};
  EXPECT_EQ(engine_->ResolveApproval(id, bob).code(), StatusCode::kPermissionDenied);
  ApprovalAnswer alice{true, "", "ok for enterprise", storage::Actor{"alice", "approver"}};
  Must(engine_->ResolveApproval(id, alice));
  EXPECT_EQ(engine_->ResolveApproval(id, alice).code(), StatusCode::kFailedPrecondition);

  info = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kCompleted);
  EXPECT_EQ(calls_.load(), 1);
  const auto resolved = All<storage::ApprovalResolved>(id);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].actor.name, "alice");
  EXPECT_EQ(
      resolved[0].binding_hash,
      ApprovalBinding("billing.change_plan", Json{{"plan", "enterprise"}, {"monthly_price", 900}}));
  const auto verdicts = All<storage::PolicyVerdict>(id);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].decision, storage::PolicyVerdict::Decision::kRequireApproval);
  EXPECT_EQ(verdicts[1].stage, storage::PolicyVerdict::Stage::kBeforeCommit);
  EXPECT_EQ(verdicts[1].decision, storage::PolicyVerdict::Decision::kAllow);
}

TEST_F(GovernanceTest, ARejectedApprovalStopsTheRunWithoutTheCall) {
  Open(kPolicy);
  const RunId id = Start(kPlanChange, Json{{"plan", "enterprise"}, {"price", 900}});
  ASSERT_EQ(Must(engine_->Wait(id, 20s)).header.status, RunStatus::kWaiting);
  Must(engine_->ResolveApproval(id, {false, "", "too expensive", {"alice", "approver"}}));
  const RunInfo info = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kApprovalDenied);
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(GovernanceTest, AnUnansweredApprovalExpiresAsDenied) {
  Open(kPolicy);
  const RunId id = Start(kPlanChange, Json{{"plan", "enterprise"}, {"price", 900}});
  RunInfo info = Must(engine_->Wait(id, 20s));
  for (int i = 0; i < 200 && !storage::IsTerminal(info.header.status); ++i) {
    std::this_thread::sleep_for(20ms);
    engine_->PollTimers();
    info = Must(engine_->Describe(id));
  }
  EXPECT_EQ(info.header.stop_reason, StopReason::kApprovalExpired);
  EXPECT_EQ(calls_.load(), 0);
  const auto resolved = All<storage::ApprovalResolved>(id);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].resolution, storage::ApprovalResolution::kExpired);
  EXPECT_EQ(engine_->ResolveApproval(id, {true, "", "", {"alice", "approver"}}).code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(GovernanceTest, ACallOverTheToolCallBudgetStopsTheRun) {
  Open(kPolicy);
  const RunId id = Start(kTwoCalls, Json::object());
  const RunInfo info = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kBudgetExhausted);
  EXPECT_EQ(calls_.load(), 1);
  EXPECT_NE(info.error.detail.find("tool_calls budget"), std::string::npos) << info.error.detail;
  const auto verdicts = All<storage::PolicyVerdict>(id);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[1].reason_code, "budget_exhausted");
}

TEST_F(GovernanceTest, AnAgentPicksFromTheAllowlistAndTheDecisionIsRecorded) {
  Open(kPolicy, kAgents);
  const RunId id = Start(PickPlan("planner"), Json{{"size", 12}});
  const RunInfo info = Must(engine_->Wait(id, 20s));
  ASSERT_EQ(info.header.stop_reason, StopReason::kCompleted) << info.error.detail;
  EXPECT_EQ(info.output->at("option"), "team");
  EXPECT_EQ(info.output->at("agent"), "planner");
  const auto decided = All<storage::AgentDecided>(id);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].reason_code, "decided");
  EXPECT_EQ(decided[0].options, (std::vector<std::string>{"starter", "team"}));
  EXPECT_EQ(decided[0].decision_key, id.str() + "#1");
  // The transcripts are in the blob store under the hashes the event names.
  EXPECT_TRUE(engine_->store().GetBlob(decided[0].request_blob).ok());
  EXPECT_TRUE(engine_->store().GetBlob(decided[0].response_blob).ok());
  const auto charges = All<storage::BudgetCharged>(id);
  ASSERT_EQ(charges.size(), 2u);
  EXPECT_EQ(charges[0].phase, storage::BudgetCharged::Phase::kReserve);
  EXPECT_EQ(charges[1].phase, storage::BudgetCharged::Phase::kSettle);
  const auto routed = All<storage::TaskRouted>(id);
  bool agentic = false;
  for (const auto& r : routed) agentic |= r.mode == storage::TaskRouted::Mode::kAgentic;
  EXPECT_TRUE(agentic);
}

TEST_F(GovernanceTest, AnOptionOutsideTheAllowlistFaultsTheTaskCatchably) {
  Open(kPolicy, kAgents);
  const RunId id = Start(PickPlan("rogue"), Json{{"size", 3}});
  const RunInfo info = Must(engine_->Wait(id, 20s));
  ASSERT_EQ(info.header.stop_reason, StopReason::kCompleted) << info.error.detail;
  EXPECT_EQ(info.output->at("refused"), "https://cairn.dev/errors/agent/option_not_allowed");
  const auto decided = All<storage::AgentDecided>(id);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].reason_code, "option_not_allowed");
  EXPECT_EQ(decided[0].option, "");
}

TEST_F(GovernanceTest, AnUnknownAgentFaultsTheTask) {
  Open(kPolicy, kAgents);
  const RunId id = Start(PickPlan("nobody"), Json{{"size", 3}});
  const RunInfo info = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(info.output->at("refused"), "https://cairn.dev/errors/agent/unknown_agent");
}

TEST_F(GovernanceTest, AKillSwitchStopsParkedRunsAndRefusesNewOnesUntilReleased) {
  Open(kPolicy);
  const RunId id = Start(kPlanChange, Json{{"plan", "enterprise"}, {"price", 900}});
  ASSERT_EQ(Must(engine_->Wait(id, 20s)).header.status, RunStatus::kWaiting);
  const std::vector<RunId> covered = Must(engine_->EngageKillSwitch(KillSwitch{
      KillSwitch::Scope::kWorkflow, "billing/plan-change", "incident 7", {"ops", "admin"}, 0}));
  EXPECT_EQ(covered, std::vector<RunId>{id});
  const RunInfo info = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(info.header.status, RunStatus::kKilled);
  EXPECT_EQ(calls_.load(), 0);
  StartRequest again;
  again.workflow = "billing/plan-change";
  again.input = Json{{"plan", "team"}, {"price", 10}};
  EXPECT_EQ(engine_->Start(again).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(engine_->KillSwitches().size(), 1u);
  // Durable: a reopened engine still refuses.
  Must(engine_->Close());
  engine_.reset();
  Open(kPolicy);
  EXPECT_EQ(engine_->Start(again).status().code(), StatusCode::kFailedPrecondition);
  Must(engine_->ReleaseKillSwitch(KillSwitch::Scope::kWorkflow, "billing/plan-change"));
  const RunId later = Must(engine_->Start(again)).run_id;
  EXPECT_EQ(Must(engine_->Wait(later, 20s)).header.stop_reason, StopReason::kCompleted);
  // A switch over stopped runs only covers nothing.
  EXPECT_TRUE(Must(engine_->EngageKillSwitch(
                       KillSwitch{KillSwitch::Scope::kAll, "", "drill", {"ops", "admin"}, 0}))
                  .empty());
  EXPECT_TRUE(Must(engine_->EngageKillSwitch(
                       KillSwitch{KillSwitch::Scope::kRun, id.str(), "late", {"ops", "admin"}, 0}))
                  .empty());
}

}  // namespace
}  // namespace cairn::engine
