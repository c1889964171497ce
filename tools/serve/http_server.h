// HttpServer: the HTTP/1.1 front of `cairn serve`, on Boost.Beast.
//
// It accepts connections on one address, reads each request within bounds, hands it to a
// handler on a pool of worker threads (handlers may block on the engine: a start waits
// for its transition to be durable), and writes the answer back. Keep-alive, and
// server-sent event streams for the live event feed.
//
// Every bound is enforced before any handler runs, so that a slow, malformed or greedy
// client costs only its own connection (DESIGN.md §11):
//   - header bytes (431) and body bytes (413, refused from Content-Length before reading);
//   - the time to receive a whole request (a client that sends it slowly is dropped), the
//     idle time between keep-alive requests, the time to write an answer;
//   - concurrent connections (beyond the bound a connection gets 503 and is closed);
//   - handler work in flight (beyond the bound: 503 "overloaded", nothing is run);
//   - anything the parser refuses: 400, and the connection is closed.
// Errors are JSON: {"error": {"code": "payload_too_large", "message": "..."}}.
//
// Threads: `io_threads` run the sockets (each connection on its own strand), `handler_threads`
// run handlers. Handlers must be thread-safe. Streams (EventStream) are thread-safe.
//
// Lifecycle: Start binds and serves; Stop (idempotent; the destructor calls it) stops
// accepting, lets handlers already running finish and their answers be written (within
// `drain_timeout`), ends event streams, closes every connection, and joins the threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace cairn::serve {

struct HttpLimits {
  size_t header_bytes_max = 16 * 1024;
  size_t body_bytes_max = 4 * 1024 * 1024;
  // From the first byte of a request to its last.
  std::chrono::milliseconds request_timeout{15'000};
  // Waiting for the next request on a kept-alive connection.
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{30'000};
  size_t connections_max = 512;
  // Requests handed to handlers and not answered yet (queued or running).
  size_t requests_in_flight_max = 1024;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks one (see HttpServer::port())
  HttpLimits limits;
  size_t io_threads = 2;
  size_t handler_threads = 8;
  std::chrono::milliseconds drain_timeout{10'000};
};

struct HttpRequest {
  std::string method;  // upper case as received ("GET")
  std::string target;  // path and query as received
  std::string path;    // percent-decoded path, without the query
  // Lower-case names; a repeated header's values joined with ", ".
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> query;  // decoded; the first of repeated names
  std::string body;
  std::string remote;  // "127.0.0.1:41234"

  // The header's value, "" when absent; `name` in lower case.
  const std::string& Header(const std::string& name) const;
  // The query parameter's value, or nullopt.
  std::optional<std::string> Query(const std::string& name) const;
};

class EventStream;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Set for a server-sent event stream: the status and headers go out with
  // `text/event-stream` and no length, then `open` is called (on a handler thread) with
  // the stream to write to; the connection is the stream's until it ends.
  std::function<void(std::shared_ptr<EventStream>)> open;

  static HttpResponse Json(int status, const cairn::Json& body);
  // {"error": {"code": code, "message": message}}.
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
  static HttpResponse Text(int status, std::string body, std::string content_type);
};

// The writing end of a server-sent event stream. Thread-safe; outlives its connection
// (sends then fail).
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Queues one event ("event: EVENT\nid: ID\ndata: DATA\n\n"; `data` on one line; empty
  // event/id are left out). False when the stream has ended (the client went away, the
  // server stops) or when the client reads so slowly that `queued_bytes_max` would be
  // passed: then the stream ends.
  virtual bool Send(std::string_view event, std::string_view id, std::string_view data) = 0;
  // A comment line (": text"), for keep-alives.
  virtual bool Comment(std::string_view text) = 0;
  // Ends the stream and closes the connection once what is queued is written.
  virtual void End() = 0;
  virtual bool ended() const = 0;
  // Called once when the stream ends, whoever ends it (may run on an I/O thread: be quick).
  virtual void OnEnd(std::function<void()> callback) = 0;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerStats {
  uint64_t connections_open = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // over connections_max
  uint64_t requests = 0;             // handed to the handler
  uint64_t requests_refused = 0;     // answered by the server itself (limits, parse errors)
  uint64_t streams_open = 0;
};

class HttpServer {
 public:
  // Binds and starts serving. kInvalidArgument for a bad host; kUnavailable when the
  // address cannot be bound (in use, no permission), naming it.
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void Stop();
  uint16_t port() const;
  // "127.0.0.1:8080"
  std::string address() const;
  HttpServerStats stats() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "%2F" -> "/", and '+' -> ' ' when `plus_is_space`; nullopt for a bad escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

}  // namespace cairn::serve
