#include "storage/event_json.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "base/random.h"
#include "tests/support/event_gen.h"
#include "tests/support/seed.h"

namespace cairn::storage {
namespace {

namespace support = ::cairn::testing;
using nlohmann::json;

std::set<std::string> Keys(const json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

Event MakeEvent(EventBody body) {
  Event event;
  event.run_id = RunId::FromTrusted("01JD2K6Z8Q0000000000000000");
  event.seq = EventSeq(3);
  event.time_ns = 1'795'248'300'123'456'789;
  event.prev_hash = Sha256::Of("prev");
  event.task_path = "/do/2/choosePlan";
  event.body = std::move(body);
  return event;
}

TEST(EventJsonTest, EnvelopeFields) {
  const json j = EventToJson(MakeEvent(TimerCancelled{"t1", 5}));
  EXPECT_EQ(Keys(j), (std::set<std::string>{"run_id", "seq", "time", "time_ns", "prev_hash",
                                            "task_path", "kind", "body"}));
  EXPECT_EQ(j["run_id"], "01JD2K6Z8Q0000000000000000");
  EXPECT_EQ(j["seq"], 3);
  EXPECT_EQ(j["time"], "2026-11-21T08:05:00.123456789Z");
  EXPECT_EQ(j["time_ns"], 1'795'248'300'123'456'789);
  EXPECT_EQ(j["prev_hash"], Sha256::Of("prev").Hex());
  EXPECT_EQ(j["task_path"], "/do/2/choosePlan");
  EXPECT_EQ(j["kind"], "timer_cancelled");
  EXPECT_EQ(j["body"], (json{{"timer_id", "t1"}, {"due_at_ns", 5}}));
}

TEST(EventJsonTest, FirstEventHasNullPrevHash) {
  Event event = MakeEvent(ValueRecorded{"now", Payload::Json("1")});
  event.seq = EventSeq(0);
  event.prev_hash = Sha256();
  EXPECT_TRUE(EventToJson(event)["prev_hash"].is_null());
}

TEST(EventJsonTest, TimeFormatting) {
  EXPECT_EQ(FormatTimeRfc3339(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(FormatTimeRfc3339(1), "1970-01-01T00:00:00.000000001Z");
  EXPECT_EQ(FormatTimeRfc3339(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(FormatTimeRfc3339(-1'000'000'000), "1969-12-31T23:59:59.000000000Z");
  EXPECT_EQ(FormatTimeRfc3339(-1'000'000'001), "1969-12-31T23:59:58.999999999Z");
  EXPECT_EQ(FormatTimeRfc3339(86'400'000'000'000), "1970-01-02T00:00:00.000000000Z");
  EXPECT_EQ(FormatTimeRfc3339(951'782'400'000'000'000), "2000-02-29T00:00:00.000000000Z");
  EXPECT_EQ(FormatTimeRfc3339(1'709'164'800'500'000'000), "2024-02-29T00:00:00.500000000Z");
  EXPECT_EQ(FormatTimeRfc3339(1'735'689'599'999'999'999), "2024-12-31T23:59:59.999999999Z");
  EXPECT_EQ(FormatTimeRfc3339(-2'208'988'800'000'000'000), "1900-01-01T00:00:00.000000000Z");
  EXPECT_EQ(FormatTimeRfc3339(INT64_MIN), "1677-09-21T00:12:43.145224192Z");
  EXPECT_EQ(FormatTimeRfc3339(INT64_MAX), "2262-04-11T23:47:16.854775807Z");
}

TEST(EventJsonTest, TimeFormattingIsMonotonic) {
  const uint64_t seed = support::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  for (int i = 0; i < 10'000; ++i) {
    const int64_t a = static_cast<int64_t>(rng.Next64());
    const int64_t b = rng.OneIn(2) ? a + static_cast<int64_t>(rng.Uniform(1'000'000'000'000))
                                   : static_cast<int64_t>(rng.Next64());
    if (b < a) continue;  // overflowed
    const std::string fa = FormatTimeRfc3339(a);
    const std::string fb = FormatTimeRfc3339(b);
    ASSERT_EQ(fa.size(), 30u) << fa;
    ASSERT_LE(fa, fb) << a << " " << b;  // fixed width: text order is time order
  }
}

TEST(EventJsonTest, Payloads) {
  EXPECT_TRUE(PayloadToJson(Payload::None()).is_null());
  EXPECT_EQ(PayloadToJson(Payload::Json(R"({"a":[1,2,{"b":null}]})")),
            json::parse(R"({"a":[1,2,{"b":null}]})"));
  EXPECT_EQ(PayloadToJson(Payload::Json("\"text\"")), "text");
  EXPECT_EQ(PayloadToJson(Payload::Json("42")), 42);
  EXPECT_EQ(PayloadToJson(Payload::Json("{not json")), (json{{"unparsed_json", "{not json"}}));
  EXPECT_EQ(PayloadToJson(Payload::Json("")), (json{{"unparsed_json", ""}}));
  EXPECT_EQ(PayloadToJson(Payload::Json("1 2")), (json{{"unparsed_json", "1 2"}}));
  EXPECT_EQ(PayloadToJson(Payload::Blob(Sha256::Of("abc"))),
            (json{{"blob", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}));
}

TEST(EventJsonTest, DeeplyNestedPayloadStaysText) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  const json j = PayloadToJson(Payload::Json(deep));
  ASSERT_TRUE(j.contains("unparsed_json"));
  EXPECT_EQ(j["unparsed_json"].get<std::string>().size(), deep.size());
  // Brackets inside strings do not count.
  const std::string quoted = "[\"" + std::string(1000, '[') + "\"]";
  EXPECT_EQ(PayloadToJson(Payload::Json(quoted)), json::parse(quoted));
  const std::string ok = std::string(200, '[') + std::string(200, ']');
  EXPECT_EQ(PayloadToJson(Payload::Json(ok)), json::parse(ok));
}

TEST(EventJsonTest, HashesAreLowerHexOrNull) {
  RunStarted started;
  started.definition_hash = Sha256::Of("definition");
  const json body = EventToJson(MakeEvent(started))["body"];
  EXPECT_EQ(body["definition_hash"], Sha256::Of("definition").Hex());
  EXPECT_EQ(body["definition_hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(body["definition_hash"].get<std::string>().find_first_not_of("0123456789abcdef"),
            std::string::npos);
  EXPECT_TRUE(body["policy_hash"].is_null());
  EXPECT_TRUE(body["agent_config_hash"].is_null());
}

TEST(EventJsonTest, EnumsByName) {
  PolicyVerdict verdict;
  verdict.decision = PolicyVerdict::Decision::kRequireApproval;
  verdict.risk = RiskLevel::kHigh;
  verdict.stage = PolicyVerdict::Stage::kBeforeCommit;
  const json v = EventToJson(MakeEvent(verdict))["body"];
  EXPECT_EQ(v["decision"], "require_approval");
  EXPECT_EQ(v["risk"], "high");
  EXPECT_EQ(v["stage"], "before_commit");

  RunStopped stopped;
  stopped.reason = StopReason::kBudgetExhausted;
  EXPECT_EQ(EventToJson(MakeEvent(stopped))["body"]["reason"], "budget_exhausted");

  EffectOutcome outcome;
  outcome.status = EffectOutcome::Status::kTimedOut;
  EXPECT_EQ(EventToJson(MakeEvent(outcome))["body"]["status"], "timed_out");

  ControlRequested control;
  control.action = ControlRequested::Action::kResolveEffect;
  EXPECT_EQ(EventToJson(MakeEvent(control))["body"]["action"], "resolve_effect");

  TimerScheduled timer{"t", 1, TimerPurpose::kRetryBackoff};
  EXPECT_EQ(EventToJson(MakeEvent(timer))["body"]["purpose"], "retry_backoff");
}

TEST(EventJsonTest, AgentDecidedBody) {
  AgentDecided agent;
  agent.agent = "planner";
  agent.options = {"a", "b"};
  agent.usage.prompt_tokens = 10;
  agent.usage.cost_known = true;
  const json body = EventToJson(MakeEvent(agent))["body"];
  EXPECT_EQ(Keys(body),
            (std::set<std::string>{"agent", "model", "reason_code", "option", "rationale",
                                   "confidence", "steps_used", "usage", "options", "request_blob",
                                   "response_blob", "duration_ms", "detail", "goal", "decision_key"}));
  EXPECT_TRUE(body["confidence"].is_null());
  EXPECT_EQ(body["options"], (json{"a", "b"}));
  EXPECT_EQ(body["usage"], (json{{"prompt_tokens", 10},
                                 {"completion_tokens", 0},
                                 {"cost_micros", 0},
                                 {"cost_known", true},
                                 {"calls", 0}}));
  agent.has_confidence = true;
  agent.confidence = 0.75;
  EXPECT_EQ(EventToJson(MakeEvent(agent))["body"]["confidence"], 0.75);
}

TEST(EventJsonTest, ErrorsAndActorsAreNullWhenEmpty) {
  TaskCompleted completed;
  json body = EventToJson(MakeEvent(completed))["body"];
  EXPECT_TRUE(body["error"].is_null());
  EXPECT_TRUE(body["output"].is_null());
  completed.error.type = "https://serverlessworkflow.io/spec/1.0.0/errors/timeout";
  completed.error.status = 408;
  body = EventToJson(MakeEvent(completed))["body"];
  EXPECT_EQ(body["error"]["type"], completed.error.type);
  EXPECT_EQ(body["error"]["status"], 408);
  EXPECT_EQ(Keys(body["error"]),
            (std::set<std::string>{"type", "status", "title", "detail", "instance"}));

  ApprovalResolved resolved;
  EXPECT_TRUE(EventToJson(MakeEvent(resolved))["body"]["actor"].is_null());
  resolved.actor = {"alice", "approver"};
  EXPECT_EQ(EventToJson(MakeEvent(resolved))["body"]["actor"],
            (json{{"name", "alice"}, {"role", "approver"}}));
}

TEST(EventJsonTest, EveryKindHasItsNameAndAnObjectBody) {
  std::set<std::string> kinds;
  for (size_t i = 0; i < support::kEventBodyKinds; ++i) {
    const json j = EventToJson(MakeEvent(support::SampleBody(i)));
    EXPECT_TRUE(j["body"].is_object()) << i;
    kinds.insert(j["kind"].get<std::string>());
    // Dumps without throwing even though sample text includes NUL and multi-byte UTF-8.
    EXPECT_FALSE(j.dump(-1, ' ', false, json::error_handler_t::strict).empty());
  }
  EXPECT_EQ(kinds.size(), support::kEventBodyKinds);
  EXPECT_EQ(kinds.count("run_started"), 1u);
  EXPECT_EQ(kinds.count("value_recorded"), 1u);
  const json unknown = EventToJson(MakeEvent(UnknownBody{30}));
  EXPECT_EQ(unknown["kind"], "unknown");
  EXPECT_EQ(unknown["body"], (json{{"which", 30}}));
}

TEST(EventJsonTest, RandomEventsDump) {
  const uint64_t seed = support::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  for (int i = 0; i < 2000; ++i) {
    const Event event = support::RandomEvent(rng, rng.Uniform(300));
    const std::string line =
        EventToJson(event).dump(-1, ' ', false, json::error_handler_t::replace);
    ASSERT_EQ(line.find('\n'), std::string::npos);  // one event per JSONL line
    const json back = json::parse(line);
    ASSERT_EQ(back["kind"], std::string(KindName(event.body)));
    ASSERT_EQ(back["seq"].get<uint64_t>(), event.seq.value());
  }
}

TEST(EventJsonTest, InvalidUtf8IsReplacedWhenDumping) {
  const json j = EventToJson(MakeEvent(ValueRecorded{"bad \xff name", Payload::None()}));
  const std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace);
  EXPECT_NE(line.find("bad \xef\xbf\xbd name"), std::string::npos) << line;
}

TEST(EventJsonTest, RunHeaderFields) {
  RunHeader h;
  h.run_id = RunId::FromTrusted("r1");
  h.status = RunStatus::kWaiting;
  h.stop_reason = StopReason::kNone;
  h.next_seq = 4;
  h.chain_head = Sha256::Of("head");
  h.budget_spent.steps = 3;
  h.engine_state = std::string(17, '\0');
  const json j = RunHeaderToJson(h);
  EXPECT_EQ(Keys(j), (std::set<std::string>{"run_id", "status", "stop_reason", "workflow_namespace",
                                            "workflow_name", "workflow_version", "definition_hash",
                                            "policy_hash", "created_at_ns", "updated_at_ns",
                                            "next_seq", "chain_head", "start_key", "parent_run_id",
                                            "budget_limits", "budget_spent", "budget_reserved",
                                            "waiting_on", "engine_state_bytes", "timers"}));
  EXPECT_EQ(j["status"], "waiting");
  EXPECT_EQ(j["stop_reason"], "none");
  EXPECT_EQ(j["next_seq"], 4);
  EXPECT_EQ(j["chain_head"], Sha256::Of("head").Hex());
  EXPECT_TRUE(j["definition_hash"].is_null());
  EXPECT_EQ(j["budget_spent"]["steps"], 3);
  EXPECT_EQ(Keys(j["budget_limits"]),
            (std::set<std::string>{"steps", "tokens", "cost_micros", "wall_ms", "tool_calls"}));
  EXPECT_EQ(j["engine_state_bytes"], 17);
  EXPECT_EQ(j["timers"], json::array());
}

TEST(EventJsonTest, RunHeaderTimers) {
  RunHeader h;
  h.run_id = RunId::FromTrusted("r1");
  h.timers = {{"retry-3", 1'795'248'360'000'000'000, TimerPurpose::kRetryBackoff},
              {"w", -1, TimerPurpose::kApprovalExpiry}};
  const json j = RunHeaderToJson(h);
  ASSERT_TRUE(j["timers"].is_array());
  ASSERT_EQ(j["timers"].size(), 2u);
  const json& first = j["timers"][0];
  EXPECT_EQ(Keys(first), (std::set<std::string>{"timer_id", "due_at_ns", "due", "purpose"}));
  EXPECT_EQ(first["timer_id"], "retry-3");
  EXPECT_EQ(first["due_at_ns"], 1'795'248'360'000'000'000);
  EXPECT_EQ(first["due"], "2026-11-21T08:06:00.000000000Z");
  EXPECT_EQ(first["purpose"], "retry_backoff");
  EXPECT_EQ(j["timers"][1]["timer_id"], "w");
  EXPECT_EQ(j["timers"][1]["due"], "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(j["timers"][1]["purpose"], "approval_expiry");
}

TEST(EventNamesTest, RunStatusNamesParseBack) {
  for (int i = 0; i <= static_cast<int>(RunStatus::kKilled); ++i) {
    const auto status = static_cast<RunStatus>(i);
    auto parsed = ParseRunStatus(Name(status));
    ASSERT_TRUE(parsed.ok()) << Name(status);
    EXPECT_EQ(*parsed, status);
  }
  auto bad = ParseRunStatus("done");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'done'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("running, waiting, blocked, completed"), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(ParseRunStatus("Running").ok());
  EXPECT_FALSE(ParseRunStatus("").ok());
}

TEST(EventNamesTest, TerminalStatuses) {
  EXPECT_FALSE(IsTerminal(RunStatus::kUnknown));
  EXPECT_FALSE(IsTerminal(RunStatus::kRunning));
  EXPECT_FALSE(IsTerminal(RunStatus::kWaiting));
  EXPECT_FALSE(IsTerminal(RunStatus::kBlocked));
  EXPECT_TRUE(IsTerminal(RunStatus::kCompleted));
  EXPECT_TRUE(IsTerminal(RunStatus::kFailed));
  EXPECT_TRUE(IsTerminal(RunStatus::kCancelled));
  EXPECT_TRUE(IsTerminal(RunStatus::kKilled));
}

TEST(EventNamesTest, StableNames) {
  EXPECT_EQ(Name(RiskLevel::kUnspecified), "unspecified");
  EXPECT_EQ(Name(RiskLevel::kCritical), "critical");
  EXPECT_EQ(Name(StopReason::kMaxSteps), "max_steps");
  EXPECT_EQ(Name(StopReason::kIndeterminateEffect), "indeterminate_effect");
  EXPECT_EQ(Name(StopReason::kCancelled), "cancelled");
  EXPECT_EQ(Name(ApprovalResolution::kExpired), "expired");
  EXPECT_EQ(Name(EffectKind::kRead), "read");
  EXPECT_EQ(Name(TimerPurpose::kApprovalExpiry), "approval_expiry");
  EXPECT_EQ(Name(static_cast<StopReason>(200)), "unknown");
  EXPECT_EQ(KindName(EventBody{RunStarted{}}), "run_started");
  EXPECT_EQ(KindName(EventBody{AgentDecided{}}), "agent_decided");
  EXPECT_EQ(KindName(EventBody{ValueRecorded{}}), "value_recorded");
  EXPECT_EQ(KindName(EventBody{UnknownBody{}}), "unknown");
}

}  // namespace
}  // namespace cairn::storage
