// Service: the `/v1` HTTP/JSON API of `cairn serve` over an open Engine, with roles,
// metrics and live event streams (DESIGN.md §10).
//
// Routes (permission in brackets; see auth.h for the roles):
//   GET    /v1/health                          [none]     {"status": "ok"}
//   GET    /v1/whoami                          [read]     the caller's name and role
//   GET    /v1/workflows                       [read]     applied versions, with when
//   POST   /v1/workflows                       [admin]    body: a definition (YAML or JSON)
//   GET    /v1/policy                          [read]     the policy new runs get
//   PUT    /v1/policy                          [admin]    body: a policy file
//   POST   /v1/runs                            [operate]  {workflow, input?, run_id?}; 201
//                                                         created, 200 when run_id exists
//   GET    /v1/runs?status=S&workflow=NS/N&after=ID&limit=N   [read]
//   GET    /v1/runs/{id}                       [read]     RunViewToJson
//   GET    /v1/runs/{id}/history?from=N&limit=N [read]    {"events": [EventToJson...]}
//   GET    /v1/runs/{id}/events?from=N         [read]     server-sent events: the history
//                                                         from N (or Last-Event-ID + 1),
//                                                         then each new one; ends at stop
//   POST   /v1/runs/{id}/signal                [operate]  {type, data?, source?, id?}
//   POST   /v1/runs/{id}/cancel                [operate]  {reason?}
//   POST   /v1/runs/{id}/kill                  [admin]    {reason?}
//   POST   /v1/runs/{id}/approve               [approve]  {reason?, approval_id?}
//   POST   /v1/runs/{id}/reject                [approve]  {reason?, approval_id?}
//   POST   /v1/runs/{id}/resolve               [operate]  {outcome: ok|failed|abandon,
//                                                          result? (with ok), reason?}
//   POST   /v1/runs/{id}/replay                [read]     replays the run from its log
//   GET    /v1/kill-switches                   [read]
//   POST   /v1/kill-switches                   [admin]    {scope: all|workflow|run,
//                                                          target?, reason?}
//   DELETE /v1/kill-switches?scope=S&target=T  [admin]
//   GET    /metrics                            [read]     Prometheus text format
//   GET    /                                   [none]     the timeline page
//
// Errors: {"error": {"code", "message"}} with codes bad_request (400), unauthenticated
// (401), forbidden (403), not_found (404), method_not_allowed (405), conflict (409:
// already stopped, already answered, id taken), invalid (422: the definition, input or
// policy is refused), overloaded (503), internal (500). Control actions record the caller
// (token name and role) as the actor in the run's log.
//
// Thread-safe: Handle runs on the HTTP server's handler threads.
#pragma once

#include <memory>
#include <string>

#include "engine/core/engine.h"
#include "tools/serve/auth.h"
#include "tools/serve/http_server.h"
#include "tools/serve/metrics.h"

namespace cairn::serve {

struct ServiceOptions {
  // Null: no tokens; every request acts as {"local", admin} (the server must then listen
  // on loopback only: `cairn serve` refuses otherwise).
  std::shared_ptr<const TokenFile> tokens;
  // The page served at "/" (tools/serve/web); empty: a 404.
  std::string page_html;
};

class Service {
 public:
  // `engine` must outlive the service. Route the engine's on_transition to OnTransition,
  // then call Begin (it reads the gauges' starting values from the store; transitions
  // told before it are counted, not lost).
  Service(engine::Engine& engine, ServiceOptions options);
  void Begin();
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  HttpResponse Handle(const HttpRequest& request);
  // Feeds metrics and live streams; quick, never blocks (EngineOptions::on_transition).
  void OnTransition(const engine::TransitionRecord& record);
  // Ends every live stream (before the HTTP server stops).
  void EndStreams();

  Metrics& metrics();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::serve
