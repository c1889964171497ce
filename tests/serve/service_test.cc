// The /v1 API over real HTTP on 127.0.0.1, with an engine behind it: every endpoint for
// every role (allowed or refused), bad and missing tokens, malformed and oversized
// bodies, unknown runs, concurrent approvals of one request, live streams, metrics, an
// operator resolving an effect of unknown outcome, and the actor each control action
// records (tools/serve/service.h).
#include "tools/serve/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "base/json.h"
#include "tests/replay/expect_replays.h"
#include "tests/serve/raw_client.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::serve {
namespace {

using namespace std::chrono_literals;
using cairn::testing::Http;
using cairn::testing::Must;
using cairn::testing::RawClient;
using cairn::testing::RawResponse;

constexpr const char* kPlanChange = R"(
document: {dsl: '1.0.3', namespace: billing, name: plan-change, version: '1.0.0'}
do:
  - change:
      call: billing.change_plan
      with:
        plan: ${ .plan }
        monthly_price: ${ .price }
)";

constexpr const char* kWaitForGo = R"(
document: {dsl: '1.0.3', namespace: demo, name: wait, version: '1.0.0'}
do:
  - hello:
      set:
        greeting: '${ "hello " + .name }'
  - wait:
      listen:
        to:
          one:
            with:
              type: demo.go
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
    approval: {expires_after: 1h}
)";

const std::map<Role, std::string> kTokens = {{Role::kReader, "tok-reader"},
                                             {Role::kOperator, "tok-operator"},
                                             {Role::kApprover, "tok-approver"},
                                             {Role::kAdmin, "tok-admin"}};

std::string ErrorCode(const RawResponse& r) {
  const Json j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error")) return "";
  return j["error"].value("code", "");
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::EngineOptions options;
    options.policy = Must(policy::Policy::Load(kPolicy, "p.yaml"));
    engine::ToolSpec spec;
    spec.name = "billing.change_plan";
    spec.effect = storage::EffectKind::kWrite;
    spec.risk = storage::RiskLevel::kHigh;
    Must(options.tools.Register(spec, [this](const engine::ToolRequest& r) -> Result<Json> {
      ++calls_;
      return Json{{"changed_to", r.arguments.value("plan", "")}};
    }));
    options.data_dir = dir_.Sub("data");
    options.durability = storage::Durability::kBuffered;
    options.clock = &clock_;
    options.threads = 2;
    options.timer_poll = 20ms;
    options.on_transition = [this](const engine::TransitionRecord& r) {
      if (Service* s = service_ptr_.load()) s->OnTransition(r);
    };
    Prepare(options.data_dir);
    engine_ = Must(engine::Engine::Open(options));
    std::string yaml = "tokens:\n";
    for (const auto& [role, token] : kTokens) {
      yaml += "  - {name: " + std::string(RoleName(role)) +
              "-user, role: " + std::string(RoleName(role)) +
              ", sha256: " + Sha256::Of(token).Hex() + "}\n";
    }
    ServiceOptions service_options;
    service_options.tokens = std::make_shared<const TokenFile>(Must(TokenFile::Load(yaml, "t")));
    service_options.page_html = "<!doctype html><title>cairn</title>";
    service_ = std::make_unique<Service>(*engine_, service_options);
    service_ptr_.store(service_.get());
    service_->Begin();
    HttpServerOptions http;
    http.limits.body_bytes_max = 64 * 1024;
    server_ =
        Must(HttpServer::Start(http, [this](const HttpRequest& r) { return service_->Handle(r); }));
    Must(engine_->ApplyDefinition(kPlanChange, "plan.yaml"));
    Must(engine_->ApplyDefinition(kWaitForGo, "wait.yaml"));
  }

  // Writes into the data directory before the server's engine opens it.
  virtual void Prepare(const std::string& data_dir) { (void)data_dir; }

  void TearDown() override {
    service_->EndStreams();
    server_->Stop();
    service_ptr_.store(nullptr);
    cairn::testing::ExpectEveryRunReplays(engine_->store());
    Must(engine_->Close());
  }

  RawResponse As(Role role, std::string_view method, std::string_view path,
                 std::string_view body = {}) {
    return Http(server_->port(), method, path, body, kTokens.at(role));
  }

  // Starts a run through the API as the operator and waits until it parks or stops.
  std::string StartRun(const std::string& workflow, const Json& input, const std::string& id) {
    RawResponse r = As(Role::kOperator, "POST", "/v1/runs",
                       Json{{"workflow", workflow}, {"input", input}, {"run_id", id}}.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    Must(engine_->Wait(RunId::FromTrusted(id), 20s));
    return id;
  }

  std::vector<storage::Event> History(const std::string& id) {
    return Must(engine_->store().ReadHistory(RunId::FromTrusted(id), 0, 10000));
  }

  cairn::testing::TempDir dir_;
  SystemClock clock_;
  std::atomic<int> calls_{0};
  std::unique_ptr<engine::Engine> engine_;
  std::atomic<Service*> service_ptr_{nullptr};
  std::unique_ptr<Service> service_;
  std::unique_ptr<HttpServer> server_;
};

// Each endpoint, and the permission it needs.
struct Endpoint {
  const char* method;
  const char* path;
  const char* body;
  Permission needs;
};

TEST_F(ServiceTest, EveryEndpointAllowsItsRolesAndRefusesTheOthers) {
  StartRun("demo/wait", Json{{"name", "ann"}}, "parked");
  // Refused requests must change nothing, so run the allowed ones last: per endpoint,
  // the roles that may not first (403), then each that may (anything but 401/403).
  const Endpoint endpoints[] = {
      {"GET", "/v1/whoami", "", Permission::kRead},
      {"GET", "/v1/workflows", "", Permission::kRead},
      {"GET", "/v1/policy", "", Permission::kRead},
      {"GET", "/v1/runs", "", Permission::kRead},
      {"GET", "/v1/runs/parked", "", Permission::kRead},
      {"GET", "/v1/runs/parked/history", "", Permission::kRead},
      {"POST", "/v1/runs/parked/replay", "", Permission::kRead},
      {"GET", "/v1/kill-switches", "", Permission::kRead},
      {"GET", "/metrics", "", Permission::kRead},
      {"POST", "/v1/runs", R"({"workflow": "demo/wait", "input": {"name": "x"}})",
       Permission::kOperate},
      {"POST", "/v1/runs/parked/signal", R"({"type": "demo.other"})", Permission::kOperate},
      {"POST", "/v1/runs/nobody/cancel", "", Permission::kOperate},
      {"POST", "/v1/runs/nobody/approve", "", Permission::kApprove},
      {"POST", "/v1/runs/nobody/reject", "", Permission::kApprove},
      {"POST", "/v1/runs/nobody/resolve", R"({"outcome": "failed"})", Permission::kOperate},
      {"POST", "/v1/runs/nobody/kill", "", Permission::kAdmin},
      {"POST", "/v1/workflows", kWaitForGo, Permission::kAdmin},
      {"PUT", "/v1/policy", kPolicy, Permission::kAdmin},
      {"POST", "/v1/kill-switches", R"({"scope": "run", "target": "nobody"})", Permission::kAdmin},
      {"DELETE", "/v1/kill-switches?scope=run&target=nobody", "", Permission::kAdmin},
  };
  for (const Endpoint& e : endpoints) {
    for (Role role : {Role::kReader, Role::kOperator, Role::kApprover, Role::kAdmin}) {
      if (Allows(role, e.needs)) continue;
      RawResponse r = As(role, e.method, e.path, e.body);
      EXPECT_EQ(r.status, 403) << e.method << " " << e.path << " as " << RoleName(role) << ": "
                               << r.body;
      EXPECT_EQ(ErrorCode(r), "forbidden");
    }
    for (Role role : {Role::kReader, Role::kOperator, Role::kApprover, Role::kAdmin}) {
      if (!Allows(role, e.needs)) continue;
      RawResponse r = As(role, e.method, e.path, e.body);
      EXPECT_NE(r.status, 401) << e.method << " " << e.path << " as " << RoleName(role);
      EXPECT_NE(r.status, 403) << e.method << " " << e.path << " as " << RoleName(role) << ": "
                               << r.body;
      EXPECT_LT(r.status, 500) << e.method << " " << e.path << ": " << r.body;
    }
  }
  // Health and the page need no token.
  EXPECT_EQ(Http(server_->port(), "GET", "/v1/health").status, 200);
  RawResponse page = Http(server_->port(), "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");
}

TEST_F(ServiceTest, MissingAndBadTokensAre401) {
  RawResponse none = Http(server_->port(), "GET", "/v1/runs");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(ErrorCode(none), "unauthenticated");
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer realm=\"cairn\"");
  EXPECT_EQ(Http(server_->port(), "GET", "/v1/runs", "", "wrong").status, 401);
  RawClient basic(server_->port());
  basic.Send("GET /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\n\r\n");
  EXPECT_EQ(basic.ReadResponse().status, 401);
  EXPECT_EQ(Http(server_->port(), "GET", "/metrics").status, 401);
  RawResponse who = As(Role::kApprover, "GET", "/v1/whoami");
  EXPECT_EQ(Json::parse(who.body), (Json{{"name", "approver-user"}, {"role", "approver"}}));
}

TEST_F(ServiceTest, BadRequestsGetStableErrorCodesAndChangeNothing) {
  struct Case {
    const char* method;
    const char* path;
    std::string body;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {"POST", "/v1/runs", "{not json", 400, "bad_request"},
      {"POST", "/v1/runs", "[1, 2]", 400, "bad_request"},
      {"POST", "/v1/runs", R"({"input": {}})", 400, "bad_request"},
      {"POST", "/v1/runs", R"({"workflow": 7})", 400, "bad_request"},
      {"POST", "/v1/runs", R"({"workflow": "demo/wait", "bogus": 1})", 400, "bad_request"},
      {"POST", "/v1/runs", R"({"workflow": "demo/wait", "run_id": "a/b"})", 400, "bad_request"},
      {"POST", "/v1/runs", R"({"workflow": "demo/nope"})", 404, "not_found"},
      {"POST", "/v1/runs", std::string(70 * 1024, ' '), 413, "payload_too_large"},
      {"GET", "/v1/runs/nobody", "", 404, "not_found"},
      {"GET", "/v1/runs/nobody/history", "", 404, "not_found"},
      {"GET", "/v1/runs/nobody/events", "", 404, "not_found"},
      {"POST", "/v1/runs/nobody/replay", "", 404, "not_found"},
      {"POST", "/v1/runs/nobody/signal", R"({"type": "x"})", 404, "not_found"},
      {"POST", "/v1/runs/nobody/signal", R"({})", 400, "bad_request"},
      {"POST", "/v1/runs/nobody/resolve", R"({})", 400, "bad_request"},
      {"POST", "/v1/runs/nobody/resolve", R"({"outcome": "maybe"})", 400, "bad_request"},
      {"POST", "/v1/runs/nobody/resolve", R"({"outcome": 1})", 400, "bad_request"},
      {"POST", "/v1/runs/nobody/resolve", R"({"outcome": "failed", "result": 1})", 400,
       "bad_request"},
      {"POST", "/v1/runs/nobody/resolve", R"({"outcome": "abandon"})", 404, "not_found"},
      {"GET", "/v1/runs/nobody/resolve", "", 405, "method_not_allowed"},
      {"GET", "/v1/runs?status=sleepy", "", 400, "bad_request"},
      {"GET", "/v1/runs?limit=-1", "", 400, "bad_request"},
      {"GET", "/v1/nothing", "", 404, "not_found"},
      {"DELETE", "/v1/runs", "", 405, "method_not_allowed"},
      {"GET", "/v1/runs/nobody/approve", "", 405, "method_not_allowed"},
      {"POST", "/v1/workflows", "document: {dsl: 1.0.0}", 422, "invalid"},
      {"PUT", "/v1/policy", "rules: [{decision: maybe}]", 422, "invalid"},
      {"POST", "/v1/kill-switches", R"({"scope": "galaxy"})", 400, "bad_request"},
      {"POST", "/v1/kill-switches", R"({"scope": "workflow"})", 400, "bad_request"},
      {"DELETE", "/v1/kill-switches?scope=all", "", 404, "not_found"},
  };
  for (const Case& c : cases) {
    RawResponse r = As(Role::kAdmin, c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body.substr(0, 60)
                                  << ": " << r.body;
    EXPECT_EQ(ErrorCode(r), c.code) << c.method << " " << c.path;
    if (r.status != 413) {
      const Json j = Json::parse(r.body, nullptr, false);
      EXPECT_FALSE(j["error"].value("message", "").empty()) << r.body;
    }
  }
  EXPECT_TRUE(Must(engine_->ListRuns(std::nullopt, "", 10)).empty());
  EXPECT_TRUE(engine_->KillSwitches().empty());
}

TEST_F(ServiceTest, ConcurrentApprovalsOfOneRequestHaveExactlyOneWinner) {
  StartRun("billing/plan-change", Json{{"plan", "enterprise"}, {"price", 900}}, "big");
  ASSERT_EQ(Must(engine_->Describe(RunId::FromTrusted("big"))).header.status,
            storage::RunStatus::kWaiting);
  constexpr int kClients = 8;
  std::vector<int> statuses(kClients);
  std::vector<std::thread> clients;
  std::atomic<bool> go{false};
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      statuses[i] = As(i % 2 == 0 ? Role::kApprover : Role::kAdmin, "POST", "/v1/runs/big/approve",
                       R"({"reason": "looks right"})")
                        .status;
    });
  }
  go = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 409), kClients - 1);
  const engine::RunInfo info = Must(engine_->Wait(RunId::FromTrusted("big"), 20s));
  EXPECT_EQ(info.header.stop_reason, storage::StopReason::kCompleted);
  EXPECT_EQ(calls_.load(), 1);
  int answers = 0;
  for (const storage::Event& e : History("big")) {
    if (const auto* a = std::get_if<storage::ApprovalResolved>(&e.body)) {
      ++answers;
      EXPECT_TRUE(a->actor.name == "approver-user" || a->actor.name == "admin-user");
      EXPECT_EQ(a->reason, "looks right");
    }
  }
  EXPECT_EQ(answers, 1);
}

TEST_F(ServiceTest, ControlActionsRecordWhoDidThem) {
  StartRun("demo/wait", Json{{"name", "ann"}}, "s1");
  EXPECT_EQ(As(Role::kOperator, "POST", "/v1/runs/s1/signal",
               R"({"type": "demo.go", "data": {"ok": true}})")
                .status,
            200);
  Must(engine_->Wait(RunId::FromTrusted("s1"), 20s));
  StartRun("demo/wait", Json{{"name", "bo"}}, "c1");
  RawResponse cancelled = As(Role::kOperator, "POST", "/v1/runs/c1/cancel", R"({"reason": "dup"})");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(Json::parse(cancelled.body)["status"], "cancelled");
  EXPECT_EQ(As(Role::kOperator, "POST", "/v1/runs/c1/cancel").status, 409) << "already stopped";
  StartRun("demo/wait", Json{{"name", "cy"}}, "k1");
  EXPECT_EQ(As(Role::kAdmin, "POST", "/v1/runs/k1/kill", R"({"reason": "rogue"})").status, 200);

  auto started_by = [&](const std::string& id) {
    return std::get<storage::RunStarted>(History(id).front().body).started_by;
  };
  EXPECT_EQ(started_by("s1"), (storage::Actor{"operator-user", "operator"}));
  bool signalled = false;
  for (const storage::Event& e : History("s1")) {
    if (const auto* r = std::get_if<storage::EventReceived>(&e.body)) {
      signalled = true;
      EXPECT_EQ(r->actor, (storage::Actor{"operator-user", "operator"}));
    }
  }
  EXPECT_TRUE(signalled);
  const storage::RunStopped cancel = std::get<storage::RunStopped>(History("c1").back().body);
  EXPECT_EQ(cancel.reason, storage::StopReason::kCancelled);
  EXPECT_EQ(cancel.actor, (storage::Actor{"operator-user", "operator"}));
  const storage::RunStopped kill = std::get<storage::RunStopped>(History("k1").back().body);
  EXPECT_EQ(kill.reason, storage::StopReason::kKilled);
  EXPECT_EQ(kill.actor, (storage::Actor{"admin-user", "admin"}));
}

TEST_F(ServiceTest, StartIsIdempotentByRunIdAndListFilters) {
  const std::string body =
      Json{{"workflow", "demo/wait"}, {"input", {{"name", "a"}}}, {"run_id", "same"}}.dump();
  RawResponse first = As(Role::kOperator, "POST", "/v1/runs", body);
  RawResponse second = As(Role::kOperator, "POST", "/v1/runs", body);
  EXPECT_EQ(first.status, 201);
  EXPECT_EQ(first.headers["location"], "/v1/runs/same");
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(Json::parse(second.body), (Json{{"run_id", "same"}, {"created", false}}));
  Must(engine_->Wait(RunId::FromTrusted("same"), 20s));
  StartRun("billing/plan-change", Json{{"plan", "team"}, {"price", 10}}, "small");
  auto ids = [&](const std::string& query) {
    RawResponse r = As(Role::kReader, "GET", "/v1/runs" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    const Json listed = Json::parse(r.body);
    for (const Json& run : listed["runs"]) out.push_back(run["run_id"]);
    return out;
  };
  EXPECT_EQ(ids(""), (std::vector<std::string>{"same", "small"}));
  EXPECT_EQ(ids("?status=waiting"), (std::vector<std::string>{"same"}));
  EXPECT_EQ(ids("?status=completed"), (std::vector<std::string>{"small"}));
  EXPECT_EQ(ids("?workflow=billing/plan-change"), (std::vector<std::string>{"small"}));
  EXPECT_EQ(ids("?limit=1"), (std::vector<std::string>{"same"}));
  EXPECT_EQ(ids("?after=same"), (std::vector<std::string>{"small"}));
  RawResponse page = As(Role::kReader, "GET", "/v1/runs?limit=1");
  EXPECT_EQ(Json::parse(page.body)["next_after"], "same");
  RawResponse described = As(Role::kReader, "GET", "/v1/runs/small");
  EXPECT_EQ(Json::parse(described.body)["output"]["changed_to"], "team");
  RawResponse history = As(Role::kReader, "GET", "/v1/runs/small/history?from=1&limit=2");
  const Json h = Json::parse(history.body);
  ASSERT_EQ(h["events"].size(), 2u);
  EXPECT_EQ(h["events"][0]["seq"], 1);
  EXPECT_EQ(h["next_from"], 3);
  RawResponse replayed = As(Role::kReader, "POST", "/v1/runs/small/replay");
  EXPECT_EQ(Json::parse(replayed.body)["matched"], true) << replayed.body;
}

TEST_F(ServiceTest, ALiveStreamSendsTheHistoryThenEachTransitionToTheStop) {
  StartRun("demo/wait", Json{{"name", "ann"}}, "live");
  RawClient stream(server_->port());
  stream.Send(
      RawClient::Request("GET", "/v1/runs/live/events?from=1", "", kTokens.at(Role::kReader)));
  std::string got = stream.ReadUntil("event: task_routed\nid: 3\n");
  ASSERT_NE(got.find("id: 3\n"), std::string::npos) << got;
  EXPECT_EQ(got.find("id: 0\n"), std::string::npos) << "from=1 skips run_started";
  EXPECT_EQ(As(Role::kOperator, "POST", "/v1/runs/live/signal", R"({"type": "demo.go"})").status,
            200);
  got = stream.ReadUntil("event: run_stopped");
  EXPECT_TRUE(stream.ClosedByPeer()) << "the stream ends with the run";
  // Every event once, in order.
  std::vector<uint64_t> seqs;
  for (size_t at = got.find("\nid: "); at != std::string::npos; at = got.find("\nid: ", at + 1)) {
    seqs.push_back(std::stoull(got.substr(at + 5)));
  }
  const size_t events = History("live").size();
  ASSERT_EQ(seqs.size(), events - 1) << got;
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
  // A reconnecting client resumes after the Last-Event-ID it saw.
  RawClient again(server_->port());
  again.Send(
      "GET /v1/runs/live/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-reader\r\n"
      "Last-Event-ID: " +
      std::to_string(events - 2) + "\r\n\r\n");
  const std::string tail = again.ReadUntil("event: run_stopped");
  EXPECT_EQ(tail.find("id: " + std::to_string(events - 2) + "\n"), std::string::npos) << tail;
  EXPECT_NE(tail.find("id: " + std::to_string(events - 1) + "\n"), std::string::npos) << tail;
}

TEST_F(ServiceTest, MetricsCountRunsVerdictsAndLatenciesWithoutRunIds) {
  StartRun("billing/plan-change", Json{{"plan", "team"}, {"price", 10}}, "m1");
  StartRun("billing/plan-change", Json{{"plan", "enterprise"}, {"price", 900}}, "m2");
  StartRun("demo/wait", Json{{"name", "x"}}, "m3");
  RawResponse r = As(Role::kReader, "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  auto has = [&](const std::string& line) {
    EXPECT_NE(r.body.find(line + "\n"), std::string::npos) << line << "\n--- in:\n" << r.body;
  };
  has("cairn_runs_started_total{workflow=\"billing/plan-change\"} 2");
  has("cairn_runs_started_total{workflow=\"demo/wait\"} 1");
  has("cairn_runs_stopped_total{reason=\"completed\",workflow=\"billing/plan-change\"} 1");
  has("cairn_policy_verdicts_total{decision=\"allow\",stage=\"before_call\"} 1");
  has("cairn_policy_verdicts_total{decision=\"require_approval\",stage=\"before_call\"} 1");
  has("cairn_approvals_pending 1");
  has("cairn_runs_parked 2");
  EXPECT_NE(r.body.find("cairn_transition_seconds_count "), std::string::npos);
  EXPECT_NE(r.body.find("cairn_durable_write_seconds_bucket{le=\"+Inf\"} "), std::string::npos);
  for (const char* id : {"m1", "m2", "m3"}) {
    EXPECT_EQ(r.body.find(std::string("\"") + id + "\""), std::string::npos)
        << "no run ids as labels";
  }
  EXPECT_EQ(As(Role::kApprover, "POST", "/v1/runs/m2/reject", R"({"reason": "too much"})").status,
            200);
  Must(engine_->Wait(RunId::FromTrusted("m2"), 20s));
  RawResponse after = As(Role::kReader, "GET", "/metrics");
  EXPECT_NE(after.body.find("cairn_approvals_pending 0\n"), std::string::npos) << after.body;
  EXPECT_NE(after.body.find("cairn_runs_parked 1\n"), std::string::npos);
}

TEST_F(ServiceTest, AKillSwitchThroughTheApiStopsCoveredRunsAndRefusesNewOnes) {
  StartRun("demo/wait", Json{{"name", "a"}}, "w1");
  RawResponse engaged = As(Role::kAdmin, "POST", "/v1/kill-switches",
                           R"({"scope": "workflow", "target": "demo/wait", "reason": "incident"})");
  ASSERT_EQ(engaged.status, 200) << engaged.body;
  const Json j = Json::parse(engaged.body);
  EXPECT_EQ(j["runs"], (Json{"w1"}));
  EXPECT_EQ(j["kill_switch"]["engaged_by"], "admin-user");
  EXPECT_EQ(Must(engine_->Wait(RunId::FromTrusted("w1"), 20s)).header.status,
            storage::RunStatus::kKilled);
  RawResponse refused = As(Role::kOperator, "POST", "/v1/runs", R"({"workflow": "demo/wait"})");
  EXPECT_EQ(refused.status, 409) << refused.body;
  RawResponse listed = As(Role::kReader, "GET", "/v1/kill-switches");
  EXPECT_EQ(Json::parse(listed.body)["kill_switches"].size(), 1u);
  EXPECT_EQ(As(Role::kAdmin, "DELETE", "/v1/kill-switches?scope=workflow&target=demo/wait").status,
            200);
  EXPECT_EQ(As(Role::kOperator, "POST", "/v1/runs",
               R"({"workflow": "demo/wait", "input": {"name": "b"}})")
                .status,
            201);
}

TEST_F(ServiceTest, TheWorkflowListSaysWhenEachVersionWasApplied) {
  RawResponse r = As(Role::kReader, "GET", "/v1/workflows");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json listed = Json::parse(r.body)["workflows"];
  ASSERT_EQ(listed.size(), 2u);
  for (const Json& w : listed) {
    const std::string applied = w.value("applied", "");
    EXPECT_EQ(applied.size(), std::string("2026-11-21T08:05:00.123456789Z").size()) << w;
    EXPECT_EQ(applied.back(), 'Z') << w;
    EXPECT_EQ(w["hash"].get<std::string>().size(), 64u);
  }
}

constexpr const char* kCharge = R"(
document: {dsl: '1.0.3', namespace: billing, name: charge, version: '1.0.0'}
do:
  - charge:
      call: billing.charge
)";

constexpr const char* kChargePolicy = R"(
version: 1
name: charge
rules:
  - id: charges
    tools: [billing.charge]
    decision: allow
)";

// The server starts on a directory holding a run whose one write (not idempotent) was in
// flight when the engine that ran it closed: the run is blocked on an effect of unknown
// outcome, for an operator to decide.
class ServiceBlockedRunTest : public ServiceTest {
 protected:
  void Prepare(const std::string& data_dir) override {
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false;
    bool release = false;
    engine::EngineOptions options;
    options.data_dir = data_dir;
    options.durability = storage::Durability::kBuffered;
    options.clock = &clock_;
    options.threads = 2;
    options.policy = Must(policy::Policy::Load(kChargePolicy, "charge-policy.yaml"));
    engine::ToolSpec spec;
    spec.name = "billing.charge";
    spec.effect = storage::EffectKind::kWrite;
    spec.risk = storage::RiskLevel::kHigh;
    Must(options.tools.Register(spec, [&](const engine::ToolRequest&) -> Result<Json> {
      std::unique_lock lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait_for(lock, 10s, [&] { return release; });
      return Json("charged");
    }));
    auto engine = Must(engine::Engine::Open(options));
    Must(engine->ApplyDefinition(kCharge, "charge.yaml"));
    Must(engine->Start({"billing/charge", Json::object(), RunId::FromTrusted("blocked"), {}}));
    {
      std::unique_lock lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return entered; }));
    }
    std::thread releaser([&] {
      std::this_thread::sleep_for(50ms);  // lets Close() begin while the call hangs (as
                                          // engine_test does: Close waits for the call)
      std::lock_guard lock(mu);
      release = true;
      cv.notify_all();
    });
    Must(engine->Close());
    releaser.join();
  }
};

TEST_F(ServiceBlockedRunTest, AnOperatorResolvesAnEffectOfUnknownOutcome) {
  const RunId id = RunId::FromTrusted("blocked");
  const engine::RunInfo blocked = Must(engine_->Wait(id, 20s));
  ASSERT_EQ(blocked.header.status, storage::RunStatus::kBlocked) << blocked.waiting_on;
  const std::string ok =
      R"({"outcome": "ok", "result": {"charged": 1}, "reason": "in the ledger"})";
  EXPECT_EQ(As(Role::kReader, "POST", "/v1/runs/blocked/resolve", ok).status, 403);
  EXPECT_EQ(As(Role::kApprover, "POST", "/v1/runs/blocked/resolve", ok).status, 403);
  RawResponse resolved = As(Role::kOperator, "POST", "/v1/runs/blocked/resolve", ok);
  ASSERT_EQ(resolved.status, 200) << resolved.body;
  EXPECT_EQ(Json::parse(resolved.body)["run_id"], "blocked");
  const engine::RunInfo done = Must(engine_->Wait(id, 20s));
  EXPECT_EQ(done.header.status, storage::RunStatus::kCompleted);
  EXPECT_EQ(*done.output, (Json{{"charged", 1}}));
  bool recorded = false;
  for (const storage::Event& e : History("blocked")) {
    if (const auto* c = std::get_if<storage::ControlRequested>(&e.body)) {
      recorded = true;
      EXPECT_EQ(c->actor, (storage::Actor{"operator-user", "operator"}));
      EXPECT_EQ(c->reason, "in the ledger");
    }
  }
  EXPECT_TRUE(recorded);
  RawResponse again = As(Role::kOperator, "POST", "/v1/runs/blocked/resolve", ok);
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_NE(again.body.find("not blocked"), std::string::npos) << again.body;
}

}  // namespace
}  // namespace cairn::serve
