// The engine end to end on a real store: definitions, runs, tools, timers, events,
// controls, dedupe, and recovery after an engine is closed mid-call.
#include "engine/core/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include "tests/replay/expect_replays.h"
#include "tests/support/assertions.h"
#include "tests/support/policies.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine {
namespace {

using namespace std::chrono_literals;
using storage::RunStatus;
using storage::StopReason;
using testing::Must;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenEngine(); }
  void TearDown() override {
    if (engine_) {
      testing::ExpectEveryRunReplays(engine_->store());  // DESIGN.md §9
      Must(engine_->Close());
    }
  }

  void OpenEngine(ToolCatalog tools = {}) {
    EngineOptions options;
    options.policy = cairn::testing::AllowAllPolicy();
    options.tools = std::move(tools);
    options.data_dir = dir_.Sub("data");
    options.durability = storage::Durability::kBuffered;
    options.clock = &clock_;
    options.threads = 2;
    options.timer_poll = 20ms;
    options.on_transition = on_transition_;
    engine_ = Must(Engine::Open(options));
  }
  void Reopen() {
    Must(engine_->Close());
    engine_.reset();
    OpenEngine();
  }

  WorkflowRef Apply(const std::string& yaml) {
    return Must(engine_->ApplyDefinition(yaml, "test.yaml"));
  }

  RunInfo RunToEnd(const std::string& workflow, Json input = Json::object(),
                   std::optional<RunId> id = std::nullopt) {
    StartRequest request;
    request.workflow = workflow;
    request.input = std::move(input);
    request.run_id = id;
    StartResult started = Must(engine_->Start(std::move(request)));
    return Must(engine_->Wait(started.run_id, 20s));
  }

  std::vector<std::string> Kinds(const RunId& id) {
    std::vector<std::string> kinds;
    for (const storage::Event& e : Must(engine_->store().ReadHistory(id, 0, 10000))) {
      kinds.emplace_back(storage::KindName(e.body));
    }
    return kinds;
  }

  void ExpectChainsVerify() {
    uint64_t failed = Must(engine_->store().VerifyAll([](const storage::VerifyReport& r) {
      EXPECT_TRUE(r.ok) << r.run_id.str() << ": " << r.problem;
    }));
    EXPECT_EQ(failed, 0u);
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::function<void(const TransitionRecord&)> on_transition_;
  std::unique_ptr<Engine> engine_;
};

constexpr const char* kColors = R"(
document: {dsl: '1.0.3', namespace: test, name: colors, version: '1.0.0'}
do:
  - setRed:
      set:
        colors: '${ .colors + [ "red" ] }'
  - pick:
      switch:
        - wantsBlue:
            when: .blue
            then: setBlue
        - otherwise:
            then: end
  - setGreen:
      set:
        colors: '${ .colors + [ "green" ] }'
  - setBlue:
      set:
        colors: '${ .colors + [ "blue" ] }'
)";

TEST_F(EngineTest, RunsSetAndSwitchToCompletion) {
  Apply(kColors);
  RunInfo info = RunToEnd("colors", Json{{"colors", Json::array()}, {"blue", true}});
  EXPECT_EQ(info.header.status, RunStatus::kCompleted);
  EXPECT_EQ(info.header.stop_reason, StopReason::kCompleted);
  ASSERT_TRUE(info.output.has_value());
  // setRed's output has no `blue`, so the switch takes the default case and ends.
  EXPECT_EQ(*info.output, (Json{{"colors", {"red"}}}));
  ExpectChainsVerify();
}

// The service's metrics and live streams see every durable transition, in order, with
// the events exactly as the log holds them.
TEST_F(EngineTest, OnTransitionTellsEveryDurableTransitionInOrder) {
  std::mutex mu;
  std::map<RunId, std::vector<TransitionRecord>> told;
  on_transition_ = [&](const TransitionRecord& r) {
    std::lock_guard lock(mu);
    told[r.run_id].push_back(r);
  };
  Reopen();
  Apply(kColors);
  const RunInfo blue = RunToEnd("colors", Json{{"colors", Json::array()}, {"blue", true}});
  const RunInfo plain = RunToEnd("colors", Json{{"colors", Json::array()}});
  std::lock_guard lock(mu);
  ASSERT_EQ(told.size(), 2u);
  for (const RunInfo* info : {&blue, &plain}) {
    const auto& records = told[info->header.run_id];
    ASSERT_FALSE(records.empty());
    std::vector<storage::Event> seen;
    for (const TransitionRecord& r : records) {
      EXPECT_EQ(r.workflow, "test/colors");
      EXPECT_FALSE(r.events.empty());
      EXPECT_GE(r.write_ns, 0);
      EXPECT_GE(r.step_ns, r.write_ns);
      seen.insert(seen.end(), r.events.begin(), r.events.end());
    }
    EXPECT_EQ(records.back().status, RunStatus::kCompleted);
    const auto history = Must(engine_->store().ReadHistory(info->header.run_id, 0, 10000));
    ASSERT_EQ(seen.size(), history.size());
    for (size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i].seq.value(), i);
      EXPECT_EQ(seen[i].seq, history[i].seq);
      EXPECT_EQ(seen[i].time_ns, history[i].time_ns) << i;
      EXPECT_EQ(seen[i].task_path, history[i].task_path) << i;
      EXPECT_TRUE(seen[i].body == history[i].body) << i;
    }
  }
}

TEST_F(EngineTest, StartingTwiceWithOneIdGivesOneRun) {
  Apply(kColors);
  const RunId id = Must(RunId::Parse("order-42"));
  StartRequest request{"colors", Json{{"colors", Json::array()}}, id, {}};
  StartResult first = Must(engine_->Start(request));
  StartResult second = Must(engine_->Start(request));
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(second.created);
  EXPECT_EQ(first.run_id, second.run_id);
  Must(engine_->Wait(id, 20s));
  Reopen();
  EXPECT_FALSE(Must(engine_->Start(request)).created);
  size_t runs = Must(engine_->ListRuns(std::nullopt, "", 100)).size();
  EXPECT_EQ(runs, 1u);
}

TEST_F(EngineTest, ADeferredStartRunsOnlyWhenResumed) {
  std::atomic<int> calls{0};
  ToolSpec spec;
  spec.name = "count";
  Must(engine_->RegisterTool(spec,
                             [&](const ToolRequest&) -> Result<Json> { return Json(++calls); }));
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: counted, version: '1.0.0'}
do:
  - once:
      call: count
)");
  StartRequest request{"counted", Json::object(), std::nullopt, {}};
  request.defer = true;
  StartResult started = Must(engine_->Start(request));
  EXPECT_EQ(Kinds(started.run_id), std::vector<std::string>{"run_started"});
  EXPECT_EQ(calls.load(), 0);
  Must(engine_->Close());
  engine_.reset();
  ToolCatalog tools;
  Must(tools.Register(spec, [&](const ToolRequest&) -> Result<Json> { return Json(++calls); }));
  OpenEngine(std::move(tools));
  Must(engine_->RunUntilIdle(20s));
  RunInfo info = Must(engine_->Describe(started.run_id));
  EXPECT_EQ(info.header.status, RunStatus::kCompleted);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(Kinds(started.run_id).front(), "run_started");
  EXPECT_EQ(Kinds(started.run_id)[1], "task_routed");
}

TEST_F(EngineTest, CallsACppToolAndRecordsIntentAndOutcome) {
  std::atomic<int> calls{0};
  std::string seen_key;
  ToolSpec spec;
  spec.name = "math.double";
  spec.effect = storage::EffectKind::kRead;
  spec.risk = storage::RiskLevel::kLow;
  Must(engine_->RegisterTool(spec, [&](const ToolRequest& r) -> Result<Json> {
    ++calls;
    seen_key = r.idempotency_key;
    return Json{{"value", r.arguments.at("n").get<int>() * 2}};
  }));
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: double, version: '1.0.0'}
do:
  - twice:
      call: math.double
      with: {n: '${ .n }'}
      output:
        as: .value
)");
  RunInfo info = RunToEnd("double", Json{{"n", 21}});
  EXPECT_EQ(info.header.status, RunStatus::kCompleted);
  EXPECT_EQ(*info.output, Json(42));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(seen_key, info.header.run_id.str() + "#1");
  std::vector<std::string> kinds = Kinds(info.header.run_id);
  // The policy's verdict comes before the intent: nothing runs unauthorized.
  EXPECT_EQ(kinds, (std::vector<std::string>{"run_started", "task_routed", "policy_verdict",
                                             "effect_intent", "effect_outcome", "task_completed",
                                             "run_stopped"}));
}

TEST_F(EngineTest, TryCatchesARaisedErrorAndRetriesWithBackoff) {
  std::atomic<int> calls{0};
  ToolSpec spec;
  spec.name = "flaky";
  Must(engine_->RegisterTool(spec, [&](const ToolRequest&) -> Result<Json> {
    if (++calls < 3) return Status::Unavailable("try again");
    return Json("ok");
  }));
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: retry, version: '1.0.0'}
do:
  - attempt:
      try:
        - call1:
            call: flaky
      catch:
        errors:
          with: {type: https://open-workflow-specification.org/spec/1.0.0/errors/runtime}
        retry:
          delay: {milliseconds: 5}
          backoff: {exponential: {}}
          limit: {attempt: {count: 5}}
)");
  RunInfo info = RunToEnd("retry");
  EXPECT_EQ(info.header.status, RunStatus::kCompleted) << info.error.detail;
  EXPECT_EQ(*info.output, Json("ok"));
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(EngineTest, UncaughtRaiseFaultsWithTheError) {
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: raise, version: '1.0.0'}
do:
  - raiseError:
      raise:
        error:
          status: 400
          type: https://open-workflow-specification.org/errors/types/compliance
          title: Compliance Error
)");
  RunInfo info = RunToEnd("raise");
  EXPECT_EQ(info.header.status, RunStatus::kFailed);
  EXPECT_EQ(info.header.stop_reason, StopReason::kFaulted);
  EXPECT_EQ(info.error.status, 400);
  EXPECT_EQ(info.error.title, "Compliance Error");
  EXPECT_EQ(info.error.instance, "/do/0/raiseError");
}

TEST_F(EngineTest, ListenParksUntilASignalArrives) {
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: approve, version: '1.0.0'}
do:
  - waitForApproval:
      listen:
        to:
          one:
            with: {type: com.example.approved}
  - done:
      set:
        approvedBy: '${ .[0].by }'
)");
  StartResult started = Must(engine_->Start({"approve", Json::object(), std::nullopt, {}}));
  RunInfo parked = Must(engine_->Wait(started.run_id, 20s));
  EXPECT_EQ(parked.header.status, RunStatus::kWaiting);
  // A signal of another type is kept, not consumed.
  Must(engine_->SendSignal(started.run_id, {"com.example.other", "test", "", Json::object(), {}}));
  Must(engine_->SendSignal(started.run_id,
                           {"com.example.approved", "test", "", Json{{"by", "ana"}}, {}}));
  RunInfo done = Must(engine_->Wait(started.run_id, 20s));
  EXPECT_EQ(done.header.status, RunStatus::kCompleted);
  EXPECT_EQ(*done.output, (Json{{"approvedBy", "ana"}}));
}

TEST_F(EngineTest, WaitParksOnADurableTimer) {
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: pause, version: '1.0.0'}
do:
  - pause:
      wait: {milliseconds: 50}
  - after:
      set: {waited: true}
)");
  RunInfo info = RunToEnd("pause");
  EXPECT_EQ(info.header.status, RunStatus::kCompleted);
  std::vector<std::string> kinds = Kinds(info.header.run_id);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "timer_fired"), kinds.end());
}

TEST_F(EngineTest, ATimerSurvivesARestart) {
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: pause2, version: '1.0.0'}
do:
  - pause:
      wait: {milliseconds: 300}
  - after:
      set: {waited: true}
)");
  StartResult started = Must(engine_->Start({"pause2", Json::object(), std::nullopt, {}}));
  Reopen();
  RunInfo info = Must(engine_->Wait(started.run_id, 20s));
  EXPECT_EQ(info.header.status, RunStatus::kCompleted);
  EXPECT_EQ(*info.output, (Json{{"waited", true}}));
}

TEST_F(EngineTest, CancelAndKillStopParkedRuns) {
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: forever, version: '1.0.0'}
do:
  - wait:
      listen:
        to:
          any: []
)");
  StartResult a = Must(engine_->Start({"forever", Json::object(), std::nullopt, {}}));
  StartResult b = Must(engine_->Start({"forever", Json::object(), std::nullopt, {}}));
  Must(engine_->Wait(a.run_id, 20s));
  Must(engine_->Cancel(a.run_id, "not needed", {"ops", "operator"}));
  Must(engine_->Kill(b.run_id, "runaway", {"ops", "operator"}));
  EXPECT_EQ(Must(engine_->Wait(a.run_id, 20s)).header.stop_reason, StopReason::kCancelled);
  EXPECT_EQ(Must(engine_->Wait(b.run_id, 20s)).header.stop_reason, StopReason::kKilled);
  EXPECT_TRUE(
      testing::IsError(engine_->Cancel(a.run_id, "again", {}), StatusCode::kFailedPrecondition));
}

TEST_F(EngineTest, ForLoopsCarryDataThroughIterations) {
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: loop, version: '1.0.0'}
do:
  - loopColors:
      for:
        each: color
        in: '.colors'
      do:
        - markProcessed:
            set:
              processed: '${ { colors: (.processed.colors + [ $color ]), indexes: (.processed.indexes + [ $index ])} }'
)");
  RunInfo info = RunToEnd("loop", Json{{"colors", {"red", "green", "blue"}}});
  EXPECT_EQ(*info.output,
            (Json{{"processed", {{"colors", {"red", "green", "blue"}}, {"indexes", {0, 1, 2}}}}}));
}

TEST_F(EngineTest, TaskTimeoutFaultsAHungTool) {
  ToolSpec spec;
  spec.name = "slow";
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  Must(engine_->RegisterTool(spec, [&](const ToolRequest&) -> Result<Json> {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 5s, [&] { return release; });
    return Json("late");
  }));
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: timeout, version: '1.0.0'}
do:
  - slowCall:
      call: slow
      timeout:
        after: {milliseconds: 100}
)");
  RunInfo info = RunToEnd("timeout");
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  // The abandoned call still runs on a tool worker and uses this frame's mutex and
  // condition variable: close (which joins the workers) before they go out of scope.
  Must(engine_->Close());
  engine_.reset();
  EXPECT_EQ(info.header.status, RunStatus::kFailed);
  EXPECT_TRUE(testing::HasSubstr(info.error.type, "timeout")) << info.error.type;
}

// A call interrupted by the engine stopping: a non-idempotent tool's effect is unknown, so
// the run waits for an operator; the operator's answer finishes it.
TEST_F(EngineTest, AnInterruptedNonIdempotentCallNeedsAnOperator) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  auto tools = [&] {
    ToolSpec spec;
    spec.name = "billing.charge";
    ToolCatalog catalog;
    Must(catalog.Register(spec, [&](const ToolRequest&) -> Result<Json> {
      std::unique_lock lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait_for(lock, 10s, [&] { return release; });
      return Json("charged");
    }));
    return catalog;
  };
  Must(engine_->Close());
  engine_.reset();
  OpenEngine(tools());
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: charge, version: '1.0.0'}
do:
  - charge:
      call: billing.charge
)");
  StartResult started = Must(engine_->Start({"charge", Json::object(), std::nullopt, {}}));
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return entered; });
  }
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);  // lets Close() begin while the call hangs
    std::lock_guard lock(mu);
    release = true;
    cv.notify_all();
  });
  Must(engine_->Close());
  releaser.join();
  engine_.reset();
  OpenEngine(tools());
  RunInfo blocked = Must(engine_->Wait(started.run_id, 20s));
  EXPECT_EQ(blocked.header.status, RunStatus::kBlocked);
  EXPECT_TRUE(testing::HasSubstr(blocked.waiting_on, "indeterminate_effect"));
  Must(engine_->ResolveEffect(
      started.run_id,
      {EffectResolution::Outcome::kOk, Json("manual"), "checked the ledger", {"ops", "operator"}}));
  RunInfo done = Must(engine_->Wait(started.run_id, 20s));
  EXPECT_EQ(done.header.status, RunStatus::kCompleted);
  EXPECT_EQ(*done.output, Json("manual"));
  ExpectChainsVerify();
}

TEST_F(EngineTest, AnInterruptedIdempotentCallIsRetriedWithTheSameKey) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> keys;
  bool hang = true;
  auto tools = [&] {
    ToolSpec spec;
    spec.name = "crm.upsert";
    spec.idempotent = true;
    ToolCatalog catalog;
    Must(catalog.Register(spec, [&](const ToolRequest& r) -> Result<Json> {
      std::unique_lock lock(mu);
      keys.push_back(r.idempotency_key);
      cv.notify_all();
      if (hang) cv.wait_for(lock, 200ms);
      return Json("upserted");
    }));
    return catalog;
  };
  Must(engine_->Close());
  engine_.reset();
  OpenEngine(tools());
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: upsert, version: '1.0.0'}
do:
  - upsert:
      call: crm.upsert
)");
  StartResult started = Must(engine_->Start({"upsert", Json::object(), std::nullopt, {}}));
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return !keys.empty(); });
  }
  Must(engine_->Close());
  engine_.reset();
  {
    std::lock_guard lock(mu);
    hang = false;
  }
  OpenEngine(tools());
  RunInfo done = Must(engine_->Wait(started.run_id, 20s));
  EXPECT_EQ(done.header.status, RunStatus::kCompleted);
  std::lock_guard lock(mu);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], keys[1]);
}

TEST_F(EngineTest, BadStartsRecordNothing) {
  Apply(R"(
document: {dsl: '1.0.3', namespace: test, name: typed, version: '1.0.0'}
input:
  schema:
    format: json
    document:
      type: object
      required: [seats]
      properties:
        seats: {type: integer, minimum: 1}
do:
  - echo:
      set: '${ . }'
)");
  EXPECT_TRUE(
      testing::IsError(engine_->Start({"typed", Json{{"seats", 0}}, std::nullopt, {}}).status(),
                       StatusCode::kInvalidArgument));
  EXPECT_TRUE(testing::IsError(engine_->Start({"nope", Json::object(), std::nullopt, {}}).status(),
                               StatusCode::kNotFound));
  EXPECT_TRUE(Must(engine_->ListRuns(std::nullopt, "", 10)).empty());
}

}  // namespace
}  // namespace cairn::engine
