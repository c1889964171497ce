// The examples/ workflows run as documented, through the engine with their tool catalogs.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "agent/config.h"
#include "engine/core/engine.h"
#include "tests/replay/expect_replays.h"
#include "tests/replay/expect_replays.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine {
namespace {

using namespace std::chrono_literals;
using storage::RunStatus;
using storage::StopReason;
using testing::Must;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class RefundExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = dir_.Sub("ledger.jsonl");
    ::setenv("CAIRN_DEMO_LEDGER", ledger_.c_str(), 1);
    EngineOptions options;
    auto refund_policy =
        policy::Policy::LoadFile(std::string(CAIRN_SOURCE_DIR) + "/examples/refund/policy.yaml");
    EXPECT_TRUE(refund_policy.ok()) << refund_policy.status().message();
    if (refund_policy.ok()) options.policy = *refund_policy;
    options.data_dir = dir_.Sub("data");
    options.durability = storage::Durability::kBuffered;
    options.clock = &clock_;
    options.threads = 2;
    engine_ = Must(Engine::Open(options));
    const std::string root = CAIRN_SOURCE_DIR "/examples/refund/";
    Must(engine_->mutable_catalog().LoadFile(root + "tools.yaml"));
    Must(engine_->ApplyDefinition(ReadFile(root + "workflow.yaml"), "workflow.yaml"));
  }
  void TearDown() override {
    if (engine_) {
      testing::ExpectEveryRunReplays(engine_->store());  // DESIGN.md §9
      Must(engine_->Close());
    }
  }

  RunInfo Run(Json input) {
    StartResult started =
        Must(engine_->Start({"refund-request", std::move(input), std::nullopt, {}}));
    return Must(engine_->Wait(started.run_id, 30s));
  }
  size_t LedgerLines() {
    std::ifstream in(ledger_);
    size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::string ledger_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(RefundExampleTest, SmallRefundIsIssuedOnce) {
  RunInfo info = Run({{"order_id", "A-1001"}, {"amount", 25}, {"reason", "damaged"}});
  ASSERT_EQ(info.header.status, RunStatus::kCompleted) << info.error.detail;
  EXPECT_EQ(info.output->at("status"), "refunded");
  EXPECT_EQ(info.output->at("refund").at("amount"), 25);
  EXPECT_EQ(LedgerLines(), 1u);
}

TEST_F(RefundExampleTest, LargeRefundWaitsForTheManager) {
  StartResult started =
      Must(engine_->Start({"refund-request",
                           {{"order_id", "A-1002"}, {"amount", 400}, {"reason", "late"}},
                           std::nullopt,
                           {}}));
  RunInfo parked = Must(engine_->Wait(started.run_id, 30s));
  ASSERT_EQ(parked.header.status, RunStatus::kWaiting) << parked.error.detail;
  EXPECT_EQ(LedgerLines(), 0u);
  Must(engine_->SendSignal(started.run_id, {"com.example.refund.decision",
                                            "manager",
                                            "",
                                            Json{{"approved", true}},
                                            {"mia", "manager"}}));
  RunInfo done = Must(engine_->Wait(started.run_id, 30s));
  ASSERT_EQ(done.header.status, RunStatus::kCompleted) << done.error.detail;
  EXPECT_EQ(done.output->at("status"), "refunded");
  EXPECT_EQ(LedgerLines(), 1u);
}

TEST_F(RefundExampleTest, RejectionsWriteNothing) {
  RunInfo duplicate = Run({{"order_id", "A-1003"}, {"amount", 10}, {"reason", "again"}});
  EXPECT_EQ(duplicate.output->at("why"), "the order was already refunded");
  RunInfo too_large = Run({{"order_id", "A-1001"}, {"amount", 500}, {"reason", "?"}});
  EXPECT_EQ(too_large.output->at("why"), "asked for 500, the order total is 79");
  RunInfo unknown = Run({{"order_id", "Z-9"}, {"amount", 1}, {"reason", "?"}});
  EXPECT_EQ(unknown.header.status, RunStatus::kFailed);
  EXPECT_TRUE(testing::HasSubstr(unknown.error.detail, "no order 'Z-9'")) << unknown.error.detail;
  EXPECT_EQ(LedgerLines(), 0u);
}

// ---------------------------------------------------------------------------------------
// The back-office examples with agents: each directory is an operator's whole setup
// (workflow.yaml, tools.yaml, policy.yaml, agents.yaml), loaded here as the CLI loads it.

// An agent that answers the first option after spending `usage` (a chatty or unpriced
// model), to check the examples' budgets without a network.
class SpendingAgent : public agent::Agent {
 public:
  SpendingAgent(std::string name, agent::Usage usage) : name_(std::move(name)), usage_(usage) {}
  const std::string& name() const override { return name_; }
  std::string_view kind() const override { return "test"; }
  std::optional<agent::Proposal> Propose(agent::Session& session) override {
    if (!session.BeginStep() || !session.AddUsage(usage_)) return std::nullopt;
    return agent::Proposal{session.request().options.front(), "spent a lot", std::nullopt};
  }

 private:
  std::string name_;
  agent::Usage usage_;
};

class ExampleTest : public ::testing::Test {
 protected:
  // Opens an engine over examples/NAME with its policy, catalog and workflow; the agents
  // of its agents.yaml unless `agents` is given.
  void Open(const std::string& example, std::shared_ptr<agent::AgentRegistry> agents = nullptr) {
    root_ = std::string(CAIRN_SOURCE_DIR) + "/examples/" + example + "/";
    ledger_ = dir_.Sub("ledger.jsonl");
    ::setenv("CAIRN_DEMO_LEDGER", ledger_.c_str(), 1);
    EngineOptions options;
    options.policy = Must(policy::Policy::LoadFile(root_ + "policy.yaml"));
    options.agents = agents ? agents : Must(agent::AgentRegistry::LoadFile(root_ + "agents.yaml"));
    options.data_dir = dir_.Sub("data-" + std::to_string(opened_++));
    options.durability = storage::Durability::kBuffered;
    options.clock = &clock_;
    options.threads = 2;
    options.timer_poll = 20ms;
    engine_ = Must(Engine::Open(options));
    Must(engine_->mutable_catalog().LoadFile(root_ + "tools.yaml"));
    workflow_ = Must(engine_->ApplyDefinition(ReadFile(root_ + "workflow.yaml"), "workflow.yaml"));
  }
  // Agents with only `name`, an agent that spends `usage` (in place of the example's).
  static std::shared_ptr<agent::AgentRegistry> Spending(const std::string& name,
                                                        agent::Usage usage) {
    auto agents = std::make_shared<agent::AgentRegistry>();
    Must(agents->Add(std::make_shared<SpendingAgent>(name, usage)));
    return agents;
  }
  void TearDown() override {
    if (engine_) {
      testing::ExpectEveryRunReplays(engine_->store());  // DESIGN.md §9
      Must(engine_->Close());
    }
  }

  RunId Start(Json input) {
    StartRequest request;
    request.workflow = workflow_.namespace_ + "/" + workflow_.name;
    request.input = std::move(input);
    return Must(engine_->Start(std::move(request))).run_id;
  }
  RunInfo Run(Json input) { return Must(engine_->Wait(Start(std::move(input)), 30s)); }
  // Starts a run that must park on an approval of `tool`.
  RunId StartParked(Json input, const std::string& tool) {
    const RunId id = Start(std::move(input));
    const RunInfo info = Must(engine_->Wait(id, 30s));
    EXPECT_EQ(info.header.status, RunStatus::kWaiting) << info.error.detail;
    EXPECT_TRUE(info.approval.has_value()) << info.waiting_on;
    if (info.approval) {
      EXPECT_EQ(info.approval->tool, tool);
    }
    return id;
  }
  Status Answer(const RunId& id, bool approve, const std::string& who) {
    return engine_->ResolveApproval(id, {approve, "", approve ? "ok" : "no", {who, "approver"}});
  }

  std::vector<Json> Ledger() {
    std::vector<Json> entries;
    std::ifstream in(ledger_);
    for (std::string line; std::getline(in, line);) entries.push_back(Json::parse(line));
    return entries;
  }
  template <typename Body>
  std::vector<Body> All(const RunId& id) {
    std::vector<Body> out;
    for (const storage::Event& e : Must(engine_->store().ReadHistory(id, 0, 10'000))) {
      if (const auto* body = std::get_if<Body>(&e.body)) out.push_back(*body);
    }
    return out;
  }
  std::vector<std::string> ToolsCalled(const RunId& id) {
    std::vector<std::string> tools;
    for (const auto& intent : All<storage::EffectIntent>(id)) tools.push_back(intent.tool);
    return tools;
  }
  // The rule ids of the verdicts before each call, in order.
  std::vector<std::string> Rules(const RunId& id) {
    std::vector<std::string> rules;
    for (const auto& verdict : All<storage::PolicyVerdict>(id)) rules.push_back(verdict.rule_id);
    return rules;
  }
  // Runs a tool of the example's tools/ directly, as the engine would with `key`.
  std::string Tool(const std::string& line, const Json& request, const std::string& key) {
    const std::string command = "cd '" + root_ + "' && echo '" + request.dump() +
                                "' | CAIRN_IDEMPOTENCY_KEY='" + key + "' " + line + " 2>&1";
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return "popen failed";
    char buffer[512];
    while (::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
    ::pclose(pipe);
    return out;
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::string root_;
  std::string ledger_;
  int opened_ = 0;
  WorkflowRef workflow_;
  std::unique_ptr<Engine> engine_;
};

// Every example's agents files load, the model one included (nothing is contacted), and
// both define the agent its workflow names.
TEST(ExampleAgentsFiles, LoadWithTheAgentTheWorkflowNames) {
  const std::pair<const char*, const char*> examples[] = {
      {"plan-change", "planner"}, {"refund-triage", "triage"}, {"invoice-approval", "reviewer"}};
  for (const auto& [example, name] : examples) {
    const std::string root = std::string(CAIRN_SOURCE_DIR) + "/examples/" + example + "/";
    auto scripted = agent::AgentRegistry::LoadFile(root + "agents.yaml");
    ASSERT_TRUE(scripted.ok()) << scripted.status().message();
    auto model = agent::AgentRegistry::LoadFile(root + "agents.openai.yaml");
    ASSERT_TRUE(model.ok()) << model.status().message();
    ASSERT_NE((*scripted)->Find(name), nullptr) << example;
    EXPECT_EQ((*scripted)->Find(name)->kind(), "scripted");
    EXPECT_EQ((*scripted)->default_name(), name);
    ASSERT_NE((*model)->Find(name), nullptr) << example;
    EXPECT_EQ((*model)->Find(name)->kind(), "openai");
    EXPECT_EQ((*model)->default_name(), name);
    EXPECT_TRUE(
        testing::HasSubstr(ReadFile(root + "workflow.yaml"), std::string("agent: ") + name));
  }
}

// ---- plan-change: the seed scenario ----

class PlanChangeExampleTest : public ExampleTest {
 protected:
  void SetUp() override { Open("plan-change"); }
};

TEST_F(PlanChangeExampleTest, ATeamOfTwelveGetsTheCheapestPlanThatSeatsEveryone) {
  const RunId id = Start({{"account_id", "acme"}, {"team_size", 12}});
  const RunInfo info = Must(engine_->Wait(id, 30s));
  ASSERT_EQ(info.header.stop_reason, StopReason::kCompleted) << info.error.detail;
  const Json& out = *info.output;
  EXPECT_EQ(out.at("status"), "changed");
  EXPECT_EQ(out.at("from_plan"), "starter");
  EXPECT_EQ(out.at("plan"), "team");
  EXPECT_EQ(out.at("seats"), 12);
  EXPECT_EQ(out.at("monthly_price"), 144);
  EXPECT_EQ(out.at("subscription_id"), "sub_acme_001");
  EXPECT_TRUE(testing::HasSubstr(out.at("confirmation").get<std::string>(), "chg_"));
  EXPECT_EQ(out.at("decided_by"), "planner");
  // The allowlist came from the reads: starter seats 5, enterprise is not self-serve.
  const auto decided = All<storage::AgentDecided>(id);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].options, (std::vector<std::string>{"team", "business"}));
  EXPECT_EQ(decided[0].option, "team");
  EXPECT_EQ(ToolsCalled(id),
            (std::vector<std::string>{"billing.get_subscription", "billing.get_account_limits",
                                      "billing.list_plans", "billing.change_plan"}));
  EXPECT_EQ(Rules(id), (std::vector<std::string>{"billing-reads", "billing-reads", "billing-reads",
                                                 "self-serve-plan-changes"}));
  const auto ledger = Ledger();
  ASSERT_EQ(ledger.size(), 1u);
  EXPECT_EQ(ledger[0].at("change"),
            (Json{{"account_id", "acme"}, {"plan", "team"}, {"seats", 12}}));
  EXPECT_EQ(ledger[0].at("key"), All<storage::EffectIntent>(id).back().idempotency_key);

  // Asked again, the team is already on its plan: nothing is changed.
  const RunInfo again = Run({{"account_id", "acme"}, {"team_size", 12}});
  ASSERT_EQ(again.header.stop_reason, StopReason::kCompleted) << again.error.detail;
  EXPECT_EQ(again.output->at("status"), "unchanged");
  EXPECT_EQ(Ledger().size(), 1u);
}

TEST_F(PlanChangeExampleTest, AboveTwoHundredAMonthABillingLeadApprovesOnce) {
  const RunId id = StartParked({{"account_id", "acme"}, {"team_size", 30}}, "billing.change_plan");
  const RunInfo parked = Must(engine_->Describe(id));
  ASSERT_TRUE(parked.approval.has_value());
  EXPECT_EQ(parked.approval->arguments.at("plan"), "business");
  EXPECT_EQ(parked.approval->arguments.at("monthly_price"), 600);
  EXPECT_EQ(parked.approval->approvers, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(parked.approval->rule_id, "large-plan-changes");
  const int64_t expiry_h = (parked.approval->expires_at_ns - clock_.NowNanos()) / 3'600'000'000'000;
  EXPECT_EQ(expiry_h, 23);  // 24h from when it was asked, a moment ago
  EXPECT_TRUE(Ledger().empty());

  EXPECT_EQ(Answer(id, true, "mallory").code(), StatusCode::kPermissionDenied);
  Must(Answer(id, true, "alice"));
  const RunInfo done = Must(engine_->Wait(id, 30s));
  ASSERT_EQ(done.header.stop_reason, StopReason::kCompleted) << done.error.detail;
  EXPECT_EQ(done.output->at("plan"), "business");
  EXPECT_EQ(done.output->at("monthly_price"), 600);
  EXPECT_EQ(Ledger().size(), 1u);
  EXPECT_EQ(All<storage::ApprovalResolved>(id).at(0).actor.name, "alice");
}

TEST_F(PlanChangeExampleTest, ARejectedChangeWritesNothing) {
  const RunId id = StartParked({{"account_id", "acme"}, {"team_size", 30}}, "billing.change_plan");
  Must(Answer(id, false, "bob"));
  const RunInfo info = Must(engine_->Wait(id, 30s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kApprovalDenied);
  EXPECT_TRUE(testing::HasSubstr(info.error.detail, "bob rejected the call")) << info.error.detail;
  EXPECT_TRUE(Ledger().empty());
}

TEST_F(PlanChangeExampleTest, ATeamTooLargeForSelfServeGetsNoPlanAndNoAgent) {
  const RunId id = Start({{"account_id", "acme"}, {"team_size", 60}});
  const RunInfo info = Must(engine_->Wait(id, 30s));
  ASSERT_EQ(info.header.stop_reason, StopReason::kCompleted) << info.error.detail;
  EXPECT_EQ(info.output->at("status"), "no_plan");
  EXPECT_TRUE(testing::HasSubstr(info.output->at("why").get<std::string>(), "at most 50 seats"));
  EXPECT_TRUE(All<storage::AgentDecided>(id).empty());
  EXPECT_TRUE(Ledger().empty());
}

TEST_F(PlanChangeExampleTest, ARetryStormIsStoppedByTheToolCallBudget) {
  // initech's billing API is down: the workflow would retry 5 times, the policy allows
  // 6 tool calls per run (3 reads, 3 attempts).
  const RunId id = Start({{"account_id", "initech"}, {"team_size", 12}});
  const RunInfo info = Must(engine_->Wait(id, 30s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kBudgetExhausted);
  EXPECT_TRUE(testing::HasSubstr(info.error.detail, "tool_calls budget of 6")) << info.error.detail;
  EXPECT_EQ(ToolsCalled(id).size(), 6u);
  EXPECT_TRUE(Ledger().empty());
}

TEST_F(PlanChangeExampleTest, TheChangeToolAppliesAKeyOnce) {
  const Json request{{"account_id", "acme"},
                     {"subscription_id", "sub_acme_001"},
                     {"from_plan", "starter"},
                     {"plan", "team"},
                     {"seats", 12},
                     {"monthly_price", 144}};
  const std::string first = Tool("tools/billing.py change_plan", request, "run-1#4");
  EXPECT_TRUE(testing::HasSubstr(first, "\"confirmation\": \"chg_run-1_4\"")) << first;
  EXPECT_EQ(Tool("tools/billing.py change_plan", request, "run-1#4"), first);
  EXPECT_EQ(Ledger().size(), 1u);
  Json other = request;
  other["seats"] = 13;
  other["monthly_price"] = 156;
  EXPECT_TRUE(testing::HasSubstr(Tool("tools/billing.py change_plan", other, "run-1#4"),
                                 "was used for another plan change"));
  other["monthly_price"] = 100;
  EXPECT_TRUE(testing::HasSubstr(Tool("tools/billing.py change_plan", other, "run-2#4"),
                                 "costs 156 a month, not 100"));
  EXPECT_EQ(Ledger().size(), 1u);
}

TEST_F(PlanChangeExampleTest, AChattyOrUnpricedModelIsStoppedBeforeAnyChange) {
  Must(engine_->Close());
  Open("plan-change", Spending("planner", agent::Usage{9'000, 500, 0, true, 1}));
  RunInfo chatty = Run({{"account_id", "acme"}, {"team_size", 12}});
  EXPECT_EQ(chatty.header.stop_reason, StopReason::kFaulted);
  EXPECT_TRUE(testing::HasSubstr(chatty.error.detail, "token_budget_exceeded"))
      << chatty.error.detail;
  Must(engine_->Close());
  Open("plan-change", Spending("planner", agent::Usage{100, 10, 0, false, 1}));
  RunInfo unpriced = Run({{"account_id", "acme"}, {"team_size", 12}});
  EXPECT_EQ(unpriced.header.stop_reason, StopReason::kFaulted);
  EXPECT_TRUE(testing::HasSubstr(unpriced.error.detail, "cost_budget_exceeded"))
      << unpriced.error.detail;
  EXPECT_TRUE(Ledger().empty());
}

// ---- refund-triage ----

class RefundTriageExampleTest : public ExampleTest {
 protected:
  void SetUp() override { Open("refund-triage"); }
};

TEST_F(RefundTriageExampleTest, DamagedGoodsAreRefundedInFull) {
  const RunId id = Start({{"order_id", "B-2001"}, {"amount", 25}, {"reason", "damaged"}});
  const RunInfo info = Must(engine_->Wait(id, 30s));
  ASSERT_EQ(info.header.stop_reason, StopReason::kCompleted) << info.error.detail;
  EXPECT_EQ(info.output->at("status"), "refunded");
  EXPECT_EQ(info.output->at("triage"), "refund");
  EXPECT_EQ(info.output->at("refunded"), 25);
  EXPECT_EQ(info.output->at("decided_by"), "triage");
  EXPECT_EQ(Rules(id), (std::vector<std::string>{"crm-reads", "crm-reads", "small-refunds"}));
  ASSERT_EQ(Ledger().size(), 1u);
  EXPECT_EQ(Ledger()[0].at("tool"), "payments.refund");
}

TEST_F(RefundTriageExampleTest, ALateDeliveryGetsHalf) {
  const RunInfo info = Run({{"order_id", "B-2001"}, {"amount", 60}, {"reason", "late"}});
  ASSERT_EQ(info.header.stop_reason, StopReason::kCompleted) << info.error.detail;
  EXPECT_EQ(info.output->at("triage"), "partial");
  EXPECT_EQ(info.output->at("refunded"), 30);
  EXPECT_EQ(Ledger().size(), 1u);
}

TEST_F(RefundTriageExampleTest, OverAHundredARefundManagerApproves) {
  const RunId id = StartParked({{"order_id", "B-2002"}, {"amount", 400}, {"reason", "damaged"}},
                               "payments.refund");
  const RunInfo parked = Must(engine_->Describe(id));
  EXPECT_EQ(parked.approval->approvers, (std::vector<std::string>{"mia", "noah"}));
  EXPECT_EQ(parked.approval->arguments.at("amount"), 400);
  EXPECT_TRUE(Ledger().empty());
  Must(Answer(id, true, "mia"));
  const RunInfo done = Must(engine_->Wait(id, 30s));
  ASSERT_EQ(done.header.stop_reason, StopReason::kCompleted) << done.error.detail;
  EXPECT_EQ(done.output->at("refunded"), 400);
  EXPECT_EQ(Ledger().size(), 1u);
}

TEST_F(RefundTriageExampleTest, ARejectedRefundIsNotPaid) {
  const RunId id =
      StartParked({{"order_id", "B-2002"}, {"amount", 400}, {"reason", "late"}}, "payments.refund");
  EXPECT_EQ(Must(engine_->Describe(id)).approval->arguments.at("amount"), 200);  // half
  Must(Answer(id, false, "noah"));
  EXPECT_EQ(Must(engine_->Wait(id, 30s)).header.stop_reason, StopReason::kApprovalDenied);
  EXPECT_TRUE(Ledger().empty());
}

TEST_F(RefundTriageExampleTest, OverAThousandThePolicyDenies) {
  const RunId id = Start({{"order_id", "B-2002"}, {"amount", 1200}, {"reason", "not_delivered"}});
  const RunInfo info = Must(engine_->Wait(id, 30s));
  EXPECT_EQ(info.header.stop_reason, StopReason::kPolicyDenied);
  EXPECT_EQ(Rules(id).back(), "huge-refunds");
  EXPECT_TRUE(Ledger().empty());
}

TEST_F(RefundTriageExampleTest, TheAgentEscalatesOrRejectsByTheCustomersHistory) {
  const RunInfo escalated = Run({{"order_id", "B-2004"}, {"amount", 50}, {"reason", "damaged"}});
  ASSERT_EQ(escalated.header.stop_reason, StopReason::kCompleted) << escalated.error.detail;
  EXPECT_EQ(escalated.output->at("status"), "escalated");
  EXPECT_EQ(escalated.output->at("queue"), "refund-escalations");
  const RunInfo rejected = Run({{"order_id", "B-2005"}, {"amount", 20}, {"reason", "damaged"}});
  ASSERT_EQ(rejected.header.stop_reason, StopReason::kCompleted) << rejected.error.detail;
  EXPECT_EQ(rejected.output->at("status"), "rejected");
  EXPECT_EQ(rejected.output->at("triage"), "reject");
  const auto ledger = Ledger();
  ASSERT_EQ(ledger.size(), 1u);
  EXPECT_EQ(ledger[0].at("tool"), "support.open_ticket");
}

TEST_F(RefundTriageExampleTest, MoreThanIsLeftToRefundIsRefusedWithoutAskingTheAgent) {
  const RunId id = Start({{"order_id", "B-2003"}, {"amount", 10}, {"reason", "damaged"}});
  const RunInfo info = Must(engine_->Wait(id, 30s));
  EXPECT_EQ(info.output->at("status"), "rejected");
  EXPECT_EQ(info.output->at("why"), "asked for 10, 0 of the order is left to refund");
  EXPECT_TRUE(All<storage::AgentDecided>(id).empty());
  EXPECT_TRUE(Ledger().empty());
}

TEST_F(RefundTriageExampleTest, AChattyModelIsStoppedBeforeAnyRefund) {
  Must(engine_->Close());
  Open("refund-triage", Spending("triage", agent::Usage{7'000, 100, 0, true, 1}));
  const RunInfo info = Run({{"order_id", "B-2001"}, {"amount", 25}, {"reason", "damaged"}});
  EXPECT_EQ(info.header.stop_reason, StopReason::kFaulted);
  EXPECT_TRUE(testing::HasSubstr(info.error.detail, "token_budget_exceeded")) << info.error.detail;
  EXPECT_TRUE(Ledger().empty());
}

// ---- invoice-approval ----

class InvoiceApprovalExampleTest : public ExampleTest {
 protected:
  void SetUp() override { Open("invoice-approval"); }
};

TEST_F(InvoiceApprovalExampleTest, AMatchedSmallInvoiceIsScheduledAndNeverPaidTwice) {
  const RunId id = Start({{"invoice_id", "INV-1001"}});
  const RunInfo info = Must(engine_->Wait(id, 30s));
  ASSERT_EQ(info.header.stop_reason, StopReason::kCompleted) << info.error.detail;
  EXPECT_EQ(info.output->at("status"), "scheduled");
  EXPECT_EQ(info.output->at("amount"), 1200);
  EXPECT_EQ(info.output->at("pay_on"), "2025-07-31");
  EXPECT_EQ(info.output->at("decision"), "approve_payment");
  EXPECT_EQ(info.output->at("decided_by"), "reviewer");
  EXPECT_EQ(Rules(id).back(), "small-payments");
  EXPECT_EQ(Ledger().size(), 1u);

  const RunInfo again = Run({{"invoice_id", "INV-1001"}});
  EXPECT_EQ(again.output->at("status"), "already_scheduled");
  EXPECT_EQ(again.output->at("payment_id"), info.output->at("payment_id"));
  EXPECT_EQ(Ledger().size(), 1u);
}

TEST_F(InvoiceApprovalExampleTest, OverFiveThousandAFinanceLeadApproves) {
  const RunId id = StartParked({{"invoice_id", "INV-1002"}}, "ap.schedule_payment");
  const RunInfo parked = Must(engine_->Describe(id));
  EXPECT_EQ(parked.approval->approvers, (std::vector<std::string>{"fatima", "li"}));
  EXPECT_EQ(parked.approval->rule_id, "finance-lead-payments");
  Must(Answer(id, true, "li"));
  const RunInfo done = Must(engine_->Wait(id, 30s));
  ASSERT_EQ(done.header.stop_reason, StopReason::kCompleted) << done.error.detail;
  EXPECT_EQ(done.output->at("amount"), 18500);
  EXPECT_EQ(Ledger().size(), 1u);
}

TEST_F(InvoiceApprovalExampleTest, OverFiftyThousandOnlyTheCfoDecides) {
  const RunId id = StartParked({{"invoice_id", "INV-1006"}}, "ap.schedule_payment");
  EXPECT_EQ(Must(engine_->Describe(id)).approval->approvers, std::vector<std::string>{"olga"});
  EXPECT_EQ(Answer(id, true, "fatima").code(), StatusCode::kPermissionDenied);
  Must(Answer(id, false, "olga"));
  EXPECT_EQ(Must(engine_->Wait(id, 30s)).header.stop_reason, StopReason::kApprovalDenied);
  EXPECT_TRUE(Ledger().empty());
}

TEST_F(InvoiceApprovalExampleTest, MismatchesAreHeldAndBlockedVendorsRejected) {
  const RunInfo mismatch = Run({{"invoice_id", "INV-1003"}});
  ASSERT_EQ(mismatch.header.stop_reason, StopReason::kCompleted) << mismatch.error.detail;
  EXPECT_EQ(mismatch.output->at("status"), "on_hold");
  EXPECT_EQ(mismatch.output->at("rationale"),
            "The invoice's amount differs from its purchase order's.");
  const RunInfo unverified = Run({{"invoice_id", "INV-1005"}});
  EXPECT_EQ(unverified.output->at("status"), "on_hold");
  const RunInfo blocked = Run({{"invoice_id", "INV-1004"}});
  ASSERT_EQ(blocked.header.stop_reason, StopReason::kCompleted) << blocked.error.detail;
  EXPECT_EQ(blocked.output->at("status"), "rejected");
  const auto ledger = Ledger();
  ASSERT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger[0].at("tool"), "ap.place_hold");
  EXPECT_EQ(ledger[1].at("tool"), "ap.place_hold");
}

TEST_F(InvoiceApprovalExampleTest, AnUnpricedModelIsStoppedBeforeAnyPayment) {
  Must(engine_->Close());
  Open("invoice-approval", Spending("reviewer", agent::Usage{100, 10, 0, false, 1}));
  const RunInfo info = Run({{"invoice_id", "INV-1001"}});
  EXPECT_EQ(info.header.stop_reason, StopReason::kFaulted);
  EXPECT_TRUE(testing::HasSubstr(info.error.detail, "cost_budget_exceeded")) << info.error.detail;
  EXPECT_TRUE(Ledger().empty());
}

}  // namespace
}  // namespace cairn::engine
