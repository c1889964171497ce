#include "tests/crash/effect_sink.h"

#include <signal.h>

#include <chrono>
#include <utility>

#include "tests/crash/governed_workflow.h"

namespace cairn::crash {
namespace {

constexpr std::string_view kPathPrefix = "/sink/";
constexpr size_t kProblemsMax = 100;  // enough to diagnose; bounded if everything breaks
constexpr size_t kAsksMax = 100'000;  // far beyond any run of the test

uint64_t Fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

Result<std::unique_ptr<EffectSink>> EffectSink::Start(uint64_t seed) {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<testing::StubServer> server, testing::StubServer::Start());
  std::unique_ptr<EffectSink> sink(new EffectSink(seed, std::move(server)));
  EffectSink* raw = sink.get();
  raw->server_->RoutePrefix("*", "/",
                            [raw](const testing::StubRequest& r) { return raw->Handle(r); });
  return sink;
}

EffectSink::EffectSink(uint64_t seed, std::unique_ptr<testing::StubServer> server)
    : seed_(seed), server_(std::move(server)), delays_(SplitMix(seed ^ 0x51aull)) {}

EffectSink::~EffectSink() { Stop(); }

void EffectSink::Stop() { server_->Stop(); }

std::string EffectSink::BaseUrl() const { return server_->BaseUrl(); }

bool EffectSink::Declines(std::string_view key) const {
  return (SplitMix(Fnv1a(key) ^ seed_) & 1) == 0;
}

testing::StubResponse EffectSink::Handle(const testing::StubRequest& request) {
  const std::string key = request.Header("idempotency-key");
  std::string tool;
  if (request.path.substr(0, kPathPrefix.size()) == kPathPrefix) {
    tool = request.path.substr(kPathPrefix.size());
  }
  auto body = ParseJson(request.body, "sink request body");
  std::lock_guard lock(mu_);
  ++stats_.requests;
  auto problem = [&](const std::string& what) {
    if (problems_.size() < kProblemsMax) {
      problems_.push_back(request.method + " " + request.target + " (Idempotency-Key '" + key +
                          "'): " + what);
    }
    return testing::StubResponse::Text(400, what);
  };
  if (request.method == "POST" && request.path == kAskPath) {
    if (!body.ok() || !body->is_object()) return problem("the ask is not a JSON object");
    return HandleAsk(request, *body);
  }
  if (request.method != "POST" || tool.empty()) return problem("not a POST /sink/<tool>");
  if (key.empty()) return problem("no Idempotency-Key header");
  if (!body.ok() || !body->is_object()) return problem("the body is not a JSON object");

  auto [it, first] = keys_.try_emplace(key);
  SinkKey& seen = it->second;
  if (first) {
    seen.tool = tool;
    seen.first_body = *body;
  } else {
    ++stats_.duplicates;
    if (seen.tool != tool || seen.first_body != *body) {
      problem("a re-delivery differs from the first delivery (" + seen.tool + " " +
              DumpJson(seen.first_body) + ", now " + tool + " " + DumpJson(*body) + ")");
    }
  }
  ++seen.deliveries;

  testing::StubResponse response;
  if (tool == "charge" && Declines(key)) {
    ++seen.declined;
    ++stats_.declined;
    response = testing::StubResponse::Text(503, "declined");
  } else {
    if (seen.applied == 0) seen.applied = 1;  // applied once; re-deliveries change nothing
    response = testing::StubResponse::Json(200, Json{{"key", key}, {"tool", tool}});
  }
  // Most answers at once, some after a few milliseconds, a few late enough that the
  // engine is often killed while waiting for them.
  Delay(response, 15, 250);
  MaybeKill(false);
  return response;
}

testing::StubResponse EffectSink::HandleAsk(const testing::StubRequest& request, const Json& body) {
  auto field = [&](const char* name) {
    const Json& value = body.value(name, Json());
    return value.is_string() ? value.get<std::string>() : std::string();
  };
  const Json options = body.value("options", Json());
  AgentAsk ask;
  ask.decision_key = field("decision_key");
  ask.run_id = field("run_id");
  ask.child = field("child");
  if (ask.decision_key.empty() || ask.run_id.empty() || ask.child.empty() || !options.is_array() ||
      options.empty() || !options[0].is_string() || asks_.size() >= kAsksMax) {
    if (problems_.size() < kProblemsMax) {
      problems_.push_back("POST " + request.target +
                          ": a malformed ask (or too many): " + request.body.substr(0, 200));
    }
    return testing::StubResponse::Text(400, "malformed ask");
  }
  ++stats_.asks;
  ask.seq = asks_.size() + 1;
  const Json& option = options[delays_.Uniform(options.size())];
  ask.option = option.is_string() ? option.get<std::string>() : "";
  const uint64_t prompt = 50 + delays_.Uniform(200);
  const uint64_t completion = 5 + delays_.Uniform(40);
  ask.tokens = prompt + completion;
  ask.cost_micros = static_cast<int64_t>(ask.tokens) * 7;
  testing::StubResponse response = testing::StubResponse::Json(
      200, Json{{"option", ask.option},
                {"rationale", std::string(kAskRationalePrefix) + std::to_string(ask.seq)},
                {"usage",
                 {{"prompt_tokens", prompt},
                  {"completion_tokens", completion},
                  {"cost_micros", ask.cost_micros}}}});
  asks_.push_back(std::move(ask));
  // Agents are slow: more answers wait, and longer, than the tools'.
  Delay(response, 30, 300);
  MaybeKill(true);
  return response;
}

void EffectSink::Delay(testing::StubResponse& response, int long_one_in_100, int64_t long_ms_max) {
  const uint64_t roll = delays_.Uniform(100);
  int64_t delay_ms = 0;
  if (roll >= static_cast<uint64_t>(100 - long_one_in_100)) {
    delay_ms = delays_.Range(20, long_ms_max);
  } else if (roll >= 50) {
    delay_ms = delays_.Range(1, 20);
  }
  if (delay_ms > 0) {
    ++stats_.delayed;
    response.WithDelay(std::chrono::milliseconds(delay_ms));
  }
}

void EffectSink::MaybeKill(bool is_ask) {
  if (kill_pid_ <= 0 || (kill_on_ == KillOn::kAgentAsk && !is_ask)) return;
  if (--kill_countdown_ == 0) {
    ::kill(kill_pid_, SIGKILL);
    kill_pid_ = 0;
    kill_fired_ = true;
  }
}

void EffectSink::KillOnRequest(pid_t pid, uint64_t nth, KillOn on) {
  std::lock_guard lock(mu_);
  kill_pid_ = nth == 0 ? 0 : pid;
  kill_countdown_ = nth;
  kill_on_ = on;
  kill_fired_ = false;
}

bool EffectSink::Disarm() {
  std::lock_guard lock(mu_);
  kill_pid_ = 0;
  return std::exchange(kill_fired_, false);
}

std::map<std::string, SinkKey> EffectSink::Keys() const {
  std::lock_guard lock(mu_);
  return keys_;
}

std::vector<AgentAsk> EffectSink::Asks() const {
  std::lock_guard lock(mu_);
  return asks_;
}

std::vector<std::string> EffectSink::Problems() const {
  std::lock_guard lock(mu_);
  return problems_;
}

SinkStats EffectSink::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace cairn::crash
