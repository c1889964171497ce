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

struct SinkStats {
  uint64_t requests = 0;
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
  // Requests the sink could not accept as effects (no key, no route, a body that is not a
  // JSON object, a re-delivery whose body differs from the first), one line each.
  std::vector<std::string> Problems() const;
  SinkStats stats() const;

  // Arms a kill: while handling the `nth` request from now on, after applying it and
  // before answering, the sink sends SIGKILL to `pid` -- the moment an effect has happened
  // and the engine has not heard of it. Call Disarm() before reaping the process, so that
  // a recycled pid is never hit.
  void KillOnRequest(pid_t pid, uint64_t nth);
  // Disarms the kill; true if it fired since KillOnRequest.
  bool Disarm();

  void Stop();

 private:
  EffectSink(uint64_t seed, std::unique_ptr<testing::StubServer> server);
  testing::StubResponse Handle(const testing::StubRequest& request);

  const uint64_t seed_;
  std::unique_ptr<testing::StubServer> server_;
  Random delays_;  // server thread only

  mutable std::mutex mu_;
  std::map<std::string, SinkKey> keys_;
  std::vector<std::string> problems_;
  SinkStats stats_;
  pid_t kill_pid_ = 0;  // armed when > 0
  uint64_t kill_countdown_ = 0;
  bool kill_fired_ = false;
};

}  // namespace cairn::crash
