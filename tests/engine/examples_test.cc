// The examples/ workflows run as documented, through the engine with their tool catalogs.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "engine/core/engine.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine {
namespace {

using namespace std::chrono_literals;
using storage::RunStatus;
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
  void TearDown() override { Must(engine_->Close()); }

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

}  // namespace
}  // namespace cairn::engine
