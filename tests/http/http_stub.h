// StubServer: a loopback HTTP/1.1 server for tests (the HTTP executor's tests, the OWS
// conformance runner, crash tests). Never for production.
//
// It listens on 127.0.0.1 on a port the kernel picks (port 0), runs on one thread of its
// own, optionally speaks TLS with a self-signed certificate generated in memory (trust it
// through CertificatePem()), routes each request to a handler by method and path, and
// records every request for assertions.
//
//   auto server = Must(StubServer::Start());
//   server->Route("GET", "/v2/pet/1", [](const StubRequest&) {
//     return StubResponse::Json(200, {{"id", 1}, {"name", "milou"}});
//   });
//   server->RoutePrefix("GET", "/slow/", [](const StubRequest&) { return StubResponse::Hang(); });
//   ... call server->BaseUrl() + "/v2/pet/1" ...
//   EXPECT_EQ(server->Count("GET", "/v2/pet/1"), 1u);
//   EXPECT_EQ(server->Requests()[0].Header("idempotency-key"), "k1");
//
// Serving an external https URI (e.g. the OWS conformance scenarios' petstore) without
// leaving the machine:
//   StubServerOptions options{.tls = true, .tls_host_names = {"petstore.swagger.io"}};
//   auto server = Must(StubServer::Start(options));
//   HttpOptions http;  // engine/http/http_executor.h
//   http.use_system_ca_store = false;
//   http.extra_ca_pem = server->CertificatePem();
//   http.connect_overrides["petstore.swagger.io:443"] = server->Address();
//
// Routing: an exact route (Route) wins over prefix routes (RoutePrefix); among prefixes
// the longest wins; the method matches case-insensitively, "*" matches any method. Paths
// are matched on the request target without its query. A request with no route gets 404
// (text/plain "no route for METHOD PATH") and is still recorded.
//
// Threading: every public method is thread-safe. Handlers run on the server's thread, one
// at a time; they must not block (use StubResponse::delay or Hang instead of sleeping).
// Connections are HTTP/1.1 keep-alive unless the client sends `Connection: close`.
// Lifecycle: Start, Route*, serve, Stop (or destroy). Stop closes the listener and every
// open connection (hanging ones included) and joins the thread; it is idempotent.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace cairn::testing {

struct StubRequest {
  std::string method;  // as received (upper case from well-behaved clients)
  std::string target;  // path and query, as received
  std::string path;    // target before '?'
  std::string query;   // target after '?', not decoded; "" if none
  // Lower-case names; a repeated header's values joined with ", ".
  std::map<std::string, std::string> headers;
  std::string body;
  bool tls = false;

  // The header's value ("" when absent); `name` is case-insensitive.
  std::string Header(std::string_view name) const;
  // The first query parameter named `name`, percent-decoded ('+' as space); "" if absent.
  std::string QueryParam(std::string_view name) const;
};

struct StubResponse {
  enum class Action : uint8_t {
    kRespond = 0,  // send status, headers, body (after `delay`)
    kClose,        // close the connection without answering (after `delay`)
    kHang,         // never answer; the connection stays open until the client or Stop()
    kTruncate,     // send the header with the full Content-Length, half the body, close
  };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is added
  std::string body;
  std::chrono::milliseconds delay{0};
  Action action = Action::kRespond;
  // Send the body with Transfer-Encoding: chunked instead of Content-Length.
  bool chunked = false;

  // `body` as application/json (DumpJson).
  static StubResponse Json(int status, const cairn::Json& body);
  static StubResponse Text(int status, std::string body,
                           std::string content_type = "text/plain; charset=utf-8");
  // A status without a body (e.g. 204, or a 3xx with WithHeader("Location", ...)).
  static StubResponse Bare(int status);
  static StubResponse Close();
  static StubResponse Hang();
  static StubResponse Truncate(int status, std::string body, std::string content_type);

  StubResponse& WithHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  StubResponse& WithDelay(std::chrono::milliseconds value) {
    delay = value;
    return *this;
  }
  StubResponse& Chunked() {
    chunked = true;
    return *this;
  }
};

using StubHandler = std::function<StubResponse(const StubRequest&)>;

struct StubServerOptions {
  bool tls = false;
  // DNS names the certificate is valid for, besides "localhost" and IP 127.0.0.1 (e.g.
  // "petstore.swagger.io", for clients told to connect here instead).
  std::vector<std::string> tls_host_names;
  // Request bodies larger than this get 413.
  size_t request_body_bytes_max = 16 << 20;
};

class StubServer {
 public:
  // Binds 127.0.0.1:0 and starts serving. kUnavailable if the socket cannot be bound,
  // kInternal if the certificate cannot be made.
  static Result<std::unique_ptr<StubServer>> Start(StubServerOptions options = {});
  ~StubServer();
  StubServer(const StubServer&) = delete;
  StubServer& operator=(const StubServer&) = delete;

  uint16_t port() const;
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT" (no trailing slash).
  std::string BaseUrl() const;
  // "127.0.0.1:PORT", e.g. for HttpOptions::connect_overrides.
  std::string Address() const;
  // The self-signed certificate (PEM) when TLS is on; "" otherwise.
  const std::string& CertificatePem() const;

  // Adds or replaces a route. `method` "*" matches any method.
  void Route(std::string method, std::string path, StubHandler handler);
  void RoutePrefix(std::string method, std::string prefix, StubHandler handler);

  // Every request received so far, in arrival order (unrouted ones included).
  std::vector<StubRequest> Requests() const;
  size_t RequestCount() const;
  // Requests served by the route registered with exactly this method and path or prefix.
  size_t Count(std::string_view method, std::string_view path_or_prefix) const;
  // Connections accepted so far.
  size_t ConnectionCount() const;
  void ClearRequests();

  void Stop();

  class Impl;

 private:
  explicit StubServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A port on 127.0.0.1 that refuses connections: a socket bound to it (so nothing else
// can take it) that never listens. For "connection refused" tests without fixed ports.
class RefusingPort {
 public:
  RefusingPort();  // port() is 0 if no socket could be bound
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace cairn::testing
