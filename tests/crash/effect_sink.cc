#include "tests/crash/effect_sink.h"

#include <signal.h>

#include <chrono>
#include <utility>

namespace cairn::crash {
namespace {

constexpr std::string_view kPathPrefix = "/sink/";
constexpr size_t kProblemsMax = 100;  // enough to diagnose; bounded if everything breaks

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
  const uint64_t roll = delays_.Uniform(100);
  int64_t delay_ms = 0;
  if (roll >= 85) {
    delay_ms = delays_.Range(20, 250);
  } else if (roll >= 50) {
    delay_ms = delays_.Range(1, 20);
  }
  if (delay_ms > 0) {
    ++stats_.delayed;
    response.WithDelay(std::chrono::milliseconds(delay_ms));
  }
  if (kill_pid_ > 0 && --kill_countdown_ == 0) {
    ::kill(kill_pid_, SIGKILL);
    kill_pid_ = 0;
    kill_fired_ = true;
  }
  return response;
}

void EffectSink::KillOnRequest(pid_t pid, uint64_t nth) {
  std::lock_guard lock(mu_);
  kill_pid_ = nth == 0 ? 0 : pid;
  kill_countdown_ = nth;
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

std::vector<std::string> EffectSink::Problems() const {
  std::lock_guard lock(mu_);
  return problems_;
}

SinkStats EffectSink::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace cairn::crash
