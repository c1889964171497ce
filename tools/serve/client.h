// Client: the HTTP/1.1 client that `cairn --address URL` uses to talk to `cairn serve`.
//
// JSON requests over one kept-alive connection (reopened when the server has closed it),
// with `Authorization: Bearer TOKEN`, and server-sent event streams (EventReader) for
// following a run. Plain HTTP only: there is no TLS. A server behind TLS is reached through
// a TLS-terminating proxy or tunnel that listens on plain HTTP near the client.
//
// Every wait is bounded: connecting (`connect_timeout`), writing a request and reading its
// answer (`response_timeout`), answer size (`response_bytes_max`); an event stream waits
// as long as its caller asks in each Next().
//
// Errors are values. An answer that is not 2xx becomes a Status carrying the server's
// error code and message ({"error": {"code", "message"}}):
//   400, 405, 413, 422, 431 -> kInvalidArgument   "MESSAGE"
//   401 unauthenticated      -> kPermissionDenied  "unauthenticated: MESSAGE (...)"
//   403 forbidden            -> kPermissionDenied  "forbidden: MESSAGE"
//   404 not_found            -> kNotFound          "MESSAGE"
//   409 conflict             -> kFailedPrecondition "MESSAGE"
//   503                      -> kUnavailable       "URL is unavailable (CODE): MESSAGE"
//   504 timeout              -> kDeadlineExceeded  "MESSAGE"
//   other                    -> kInternal          "URL failed (STATUS CODE): MESSAGE"
// A server that cannot be reached is kUnavailable, "cannot reach URL: connection refused"
// (or: host not found, no answer within 10s, ...); a connection lost or an answer not
// read within `response_timeout` is kUnavailable / kDeadlineExceeded naming the URL.
//
// Not thread-safe: one thread at a time uses a Client, and each EventReader.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/status.h"

namespace cairn::serve {

struct ServerAddress {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  uint16_t port = 80;
  std::string url;  // canonical: "http://HOST:PORT" (IPv6 in brackets)
};

// Parses "http://HOST[:PORT][/]" (port 80 when none is given). kInvalidArgument naming
// the text and what is wrong: https (no TLS here: reach it through a TLS-terminating
// proxy), another scheme, no host, a bad port, a path, user info, a query or fragment.
Result<ServerAddress> ParseServerAddress(std::string_view text);

// `text` encoded for a URL's query component (RFC 3986 unreserved characters kept).
std::string UrlEncode(std::string_view text);

struct ClientOptions {
  ServerAddress address;
  // Sent as `Authorization: Bearer TOKEN`; empty: none. Printable ASCII without spaces.
  std::string token;
  // Named in 401 errors so that a person knows which token was refused
  // ("$CAIRN_TOKEN", "--token-file /etc/cairn/token").
  std::string token_source;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds response_timeout{60'000};
  size_t response_bytes_max = 64 << 20;
  std::string user_agent = "cairn";
};

// One server-sent event ("event:", "id:", "data:" lines; data lines joined by '\n').
struct ServerSentEvent {
  std::string event;
  std::string id;
  std::string data;
};

class EventReader;

class Client {
 public:
  // kInvalidArgument for a token that is not printable ASCII without spaces. Does not
  // connect (Connect() does, or the first request).
  static Result<std::unique_ptr<Client>> Create(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens the connection now (it is otherwise opened by the first request), so that an
  // unreachable server is reported before anything else: kUnavailable "cannot reach URL:
  // WHY".
  Status Connect();

  // Sends METHOD TARGET (path and query, e.g. "/v1/runs?limit=10") with `body` (of
  // `content_type`; none when empty) and returns the answer's JSON (null for an empty
  // body) when the status is 2xx; the errors above otherwise. A request that finds its
  // kept-alive connection closed by the server is sent again on a new one when it is
  // idempotent (GET, PUT, DELETE) or when it could not have been received.
  Result<Json> Call(std::string_view method, std::string_view target, std::string body = {},
                    std::string_view content_type = "application/json");
  Result<Json> Get(std::string_view target) { return Call("GET", target); }
  Result<Json> Post(std::string_view target, const Json& body);

  // Opens a server-sent event stream (GET TARGET with Accept: text/event-stream) on a
  // connection of its own. The errors above when the server answers other than 200.
  Result<std::unique_ptr<EventReader>> OpenEvents(std::string_view target);

  const ServerAddress& address() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The reading end of a server-sent event stream. Lifecycle: opened by Client::OpenEvents;
// reads until the server ends the stream or the reader is destroyed (which closes it).
class EventReader {
 public:
  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // The next event, waiting at most `wait` for it. nullopt when none came within `wait`
  // (the stream stays open: call again) or when the stream has ended (ended() is then
  // true). kUnavailable when the connection fails; kInvalidArgument when an event is
  // larger than the answer bound.
  Result<std::optional<ServerSentEvent>> Next(std::chrono::milliseconds wait);
  // The server ended the stream and every event it sent has been returned.
  bool ended() const;

  class Impl;
  explicit EventReader(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::serve
