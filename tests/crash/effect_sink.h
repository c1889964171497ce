// EffectSink: the external system of the engine crash test. It lives in the test process,
// so it outlives every engine the test kills, and counts what the engine's write tools
// did to it, by idempotency key.
//
// It is a loopback HTTP server (tests/http/http_stub.h) answering POST /sink/<tool>. Each
// request must carry an Idempotency-Key header and a JSON object body. Like a real service
// that honours idempotency keys, it *applies* the first request with a key and answers
// re-deliveries of that key the same way without applying anything again; it checks that a
// re-delivery carries the same body as the first request.
//
// The `charge` tool is declined (503) for about half of the keys, decided by the key and
// the seed, so a key is declined every time it is delivered (the engine's retry of a
// declined charge is a new effect with a new key). A declined key is never applied.
//
// Responses are delayed at random (seeded) -- none, a few milliseconds, or up to a quarter
// of a second -- so that a kill often lands while a call is in flight. Delays are far
// below the tools' timeout.
//
// It is also the agent of the governed workflow (governed_workflow.h): the child's "sink"
// agent POSTs each decision it is asked to make to kAskPath, with the decision key and the
// tag of the child asking. The sink records every ask, in arrival order, and answers with
// one of the request's options, picked at random (a re-ask may get another option), a
// rationale naming the ask ("ask #<seq>", so that a recorded decision names the ask it
// came from) and a random usage (tokens and cost, for the run's budget ledger). Its
// answers are delayed like the tools' (more often, and up to 300 ms), so that kills land
// while an agent is deciding.
//
// Thread-safety: every method is thread-safe. Requests are handled on the server's thread.
// Lifecycle: Start, serve, Stop (or destroy).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/random.h"
#include "base/status.h"
#include "tests/http/http_stub.h"

namespace cairn::crash {

// What the sink saw for one idempotency key.
struct SinkKey {
  std::string tool;  // "reserve", "ship", "charge", "notify"
  Json first_body;   // the body of the first delivery
  uint32_t deliveries = 0;
  uint32_t applied = 0;  // 1 after the first accepted delivery; never more
  uint32_t declined = 0;
};

// One decision the agent asked the sink to make.
struct AgentAsk {
  uint64_t seq = 0;          // 1, 2, ... in arrival order over the whole test
  std::string decision_key;  // RUN_ID#N
  std::string run_id;
  std::string child;   // the tag of the child that asked
  std::string option;  // the option the sink answered
  uint64_t tokens = 0;
  int64_t cost_micros = 0;
};

struct SinkStats {
  uint64_t requests = 0;
  uint64_t asks = 0;
  uint64_t duplicates = 0;  // re-deliveries of a key already seen
  uint64_t declined = 0;
  uint64_t delayed = 0;  // requests answered after a delay
};

class EffectSink {
 public:
  // Binds 127.0.0.1 on a port the kernel picks. Errors: those of StubServer::Start.
  static Result<std::unique_ptr<EffectSink>> Start(uint64_t seed);
  ~EffectSink();
  EffectSink(const EffectSink&) = delete;
  EffectSink& operator=(const EffectSink&) = delete;

  // "http://127.0.0.1:PORT": a catalog tool "sink.<tool>" POSTs to BaseUrl() + "/sink/<tool>".
  std::string BaseUrl() const;

  // Whether the sink declines a charge with this key (the same answer every time).
  bool Declines(std::string_view key) const;

  // Every key seen so far, by key.
  std::map<std::string, SinkKey> Keys() const;
  // Every agent ask so far, in arrival order (asks[i].seq == i + 1).
  std::vector<AgentAsk> Asks() const;
  // Requests the sink could not accept as effects (no key, no route, a body that is not a
  // JSON object, a re-delivery whose body differs from the first), one line each.
  std::vector<std::string> Problems() const;
  SinkStats stats() const;

  // Arms a kill: while handling the `nth` request from now on (kAnyRequest) or the `nth`
  // agent ask (kAgentAsk), after applying or recording it and before answering, the sink
  // sends SIGKILL to `pid` -- the moment an effect has happened and the engine has not
  // heard of it, or an agent is deciding. Call Disarm() before reaping the process, so
  // that a recycled pid is never hit.
  enum class KillOn : uint8_t { kAnyRequest, kAgentAsk };
  void KillOnRequest(pid_t pid, uint64_t nth, KillOn on = KillOn::kAnyRequest);
  // Disarms the kill; true if it fired since KillOnRequest.
  bool Disarm();

  void Stop();

 private:
  EffectSink(uint64_t seed, std::unique_ptr<testing::StubServer> server);
  testing::StubResponse Handle(const testing::StubRequest& request);
  // The answer to an agent ask; mu_ held.
  testing::StubResponse HandleAsk(const testing::StubRequest& request, const Json& body);
  // Adds the random delay of a response; mu_ held.
  void Delay(testing::StubResponse& response, int long_one_in_100, int64_t long_ms_max);
  // Fires an armed kill if this request is the one; mu_ held.
  void MaybeKill(bool is_ask);

  const uint64_t seed_;
  std::unique_ptr<testing::StubServer> server_;
  Random delays_;  // server thread only (mu_ held)

  mutable std::mutex mu_;
  std::map<std::string, SinkKey> keys_;
  std::vector<AgentAsk> asks_;
  std::vector<std::string> problems_;
  SinkStats stats_;
  pid_t kill_pid_ = 0;  // armed when > 0
  uint64_t kill_countdown_ = 0;
  KillOn kill_on_ = KillOn::kAnyRequest;
  bool kill_fired_ = false;
};

}  // namespace cairn::crash
