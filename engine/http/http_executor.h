// HttpExecutor: the ToolExecutor for `call: http` tasks, on Boost.Beast over Asio.
//
// Every call runs fully asynchronously on its own strand of the executor it was given:
// resolve, connect, TLS handshake (https), write, read. The whole call is bounded by
// ToolRequest::timeout; establishing the connection (DNS, TCP, TLS) also by
// HttpOptions::connect_timeout. One connection per call and per redirect hop, sent with
// `Connection: close`: there is no connection reuse (simple, and no state shared between
// calls but the TLS context).
//
// How outcomes are reported (ToolResponse):
//   success (2xx, or 3xx not followed with redirect: true)  kOk; output per http_call.h.
//   with output "exchange" (http_call.h), any final status
//                                kOk {statusCode, reason, headers, body}.
//   other HTTP status            kFailed kCommunication, status = the HTTP status,
//                                title = reason phrase, detail = method, URI, first 512
//                                bytes of the body.
//   bad `with` arguments / unsupported features
//                                kFailed kConfiguration 400, detail names the field.
//   no connection: DNS failure, refused, unreachable, connect timeout, TLS handshake or
//   certificate verification failure
//                                kFailed kCommunication 503 "Service unavailable", detail
//                                says host:port and the cause (e.g. "certificate verify
//                                failed: self-signed certificate").
//   connected, but no usable response: closed before or in the middle of the response,
//   malformed response, headers or body over the caps, too many redirects, a bad
//   Location, invalid JSON with a JSON content type
//                                kFailed kCommunication 502 "Bad gateway"-like titles.
//   request.timeout reached      kTimedOut (408), detail says which phase was running.
//   Shutdown() or Call() after it
//                                kFailed kCommunication 503 "HTTP executor shutting down".
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "base/limits.h"
#include "base/status.h"
#include "engine/tools/tool.h"

namespace cairn::engine::http {

struct HttpOptions {
  // Verify https peers: the certificate chain against the system CA store (plus
  // `extra_ca_pem`) and the host name against the certificate. Turn off only in tests.
  bool verify_peer = true;
  // More trusted CA certificates, PEM (e.g. a test server's self-signed certificate).
  std::string extra_ca_pem;
  // Load the system CA store (OpenSSL's default paths). Tests that must trust only
  // `extra_ca_pem` turn it off.
  bool use_system_ca_store = true;
  // Sent as User-Agent unless the task gives one; empty sends none.
  std::string user_agent = "cairn/0.1";
  size_t response_body_bytes_max = limits::tool_output_bytes_max;
  size_t response_header_bytes_max = limits::http_response_header_bytes_max;
  // DNS + TCP connect + TLS handshake, per hop.
  std::chrono::milliseconds connect_timeout{10'000};
  // Where to connect instead, like curl's --resolve: "host:port" (host in lower case) ->
  // "address:port". The request (Host header, SNI, certificate host name check) still
  // names the original host. For tests that serve external URIs (the OWS conformance
  // scenarios' petstore.swagger.io) from a loopback stub.
  std::map<std::string, std::string> connect_overrides;
};

// Thread-safe: Call() and Shutdown() may be called from any thread. Lifecycle: Create,
// Call() any number of times, Shutdown() (after which Call() answers kFailed), destroy.
// The destructor calls Shutdown(). Responses are delivered on the strand of the call, on
// a thread running the io executor; `done` must not call Shutdown() (it would wait for
// itself). Shutdown() blocks until every outstanding `done` has returned, so some other
// thread must be running the executor while it waits.
class HttpExecutor final : public ToolExecutor {
 public:
  // kInvalidArgument if `extra_ca_pem` is not valid PEM; kInternal if the TLS context
  // cannot be set up. `executor` must outlive the HttpExecutor.
  static Result<std::unique_ptr<HttpExecutor>> Create(boost::asio::any_io_executor executor,
                                                      HttpOptions options);
  ~HttpExecutor() override;
  HttpExecutor(const HttpExecutor&) = delete;
  HttpExecutor& operator=(const HttpExecutor&) = delete;

  void Call(ToolRequest request, ToolCallback done) override;
  void Shutdown() override;

  // Calls started and not yet answered (for tests and metrics).
  size_t InFlight() const;

  struct Shared;  // state shared with the calls in flight; defined in the .cc
 private:
  explicit HttpExecutor(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

}  // namespace cairn::engine::http
