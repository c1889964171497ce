// The `call: http` task without the I/O: checking the task's `with` arguments and turning
// them into a request; following the redirect rules; turning the final response into the
// tool's output or error. http_executor.cc does the networking around these.
//
// OWS semantics implemented (dsl-reference.md "HTTP Call", "Endpoint", "Authentication",
// "HTTP Response"):
//   with.method     any HTTP method token, case-insensitive (sent upper case).
//   with.endpoint   an absolute http(s) URI string, or {uri, authentication}.
//                   authentication: {basic: {username, password}} or {bearer: {token}};
//                   `use`, digest, oauth2 and oidc are refused as not supported.
//   with.headers    object; string, number or boolean values.
//   with.query      object; appended to the URI percent-encoded, in key order. A null
//                   value is left out; an array repeats the name for each element.
//   with.body       any JSON. Sent as application/json (canonical, sorted keys) unless a
//                   Content-Type header is given; then a string body is sent as is, an
//                   object with application/x-www-form-urlencoded is form-encoded, and
//                   anything else is sent as JSON text. null means no body.
//   with.output     "content" (default), "response" or "raw"; also "exchange", a cairn
//                   extension for callers inside the engine (see InterpretResponse).
//                   Definitions cannot ask for it: the definition loader accepts only
//                   the three OWS formats.
//   with.redirect   false (default): any status outside 200-299 is an error.
//                   true: 301/302/303/307/308 with a Location are followed (at most
//                   limits::http_redirects_max times); other 3xx are returned as results.
// Unknown fields are refused by name, never ignored.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "engine/http/uri.h"
#include "engine/tools/tool.h"

namespace cairn::engine::http {

enum class OutputFormat : uint8_t { kContent = 0, kResponse, kRaw, kExchange };

struct HttpHeader {
  std::string name;
  std::string value;
  friend bool operator==(const HttpHeader&, const HttpHeader&) = default;
};

// A checked `call: http` request, ready to send.
struct HttpCall {
  std::string method;  // upper case ("GET")
  Uri uri;             // the endpoint with `query` appended
  // Everything to send but Host, Content-Length and Connection (the executor sets those;
  // a Host header given here replaces the URI's authority). In order: the task's headers
  // (sorted by name, as JSON objects are), then Authorization from
  // endpoint.authentication, then Content-Type for a JSON body, User-Agent and
  // Idempotency-Key unless the task gave them.
  std::vector<HttpHeader> headers;
  std::optional<std::string> body;
  OutputFormat output = OutputFormat::kContent;
  bool redirect = false;
};

// What the executor adds to every request.
struct HttpCallDefaults {
  std::string idempotency_key;  // sent as Idempotency-Key when not empty
  std::string user_agent;       // sent as User-Agent when not empty
};

// Checks `with` and builds the request. kInvalidArgument naming the field, the value
// seen and what was expected ("with.endpoint.authentication.oauth2: not supported ...");
// the executor reports it as a configuration error (400).
Result<HttpCall> ParseHttpCall(const Json& with, const HttpCallDefaults& defaults);

// The value of the first header named `name` (case-insensitive), or nullopt.
std::optional<std::string_view> FindHeader(const std::vector<HttpHeader>& headers,
                                           std::string_view name);

// A response as received. `headers` in the order received, names as received.
struct HttpResponseData {
  int status = 0;
  std::string reason;  // reason phrase; the standard one if the server sent none
  std::vector<HttpHeader> headers;
  std::string body;
};

// True for the redirects that are followed when with.redirect is true: 301, 302, 303,
// 307, 308 (with a Location header).
bool IsFollowableRedirect(int status);

// Rewrites `call` to follow a redirect: the URI becomes `location` resolved against the
// current one; 303, and 301/302 after a POST, become a GET without a body (as browsers
// and curl do); 307/308 keep the method and body. Authorization is dropped when the
// redirect leaves the origin (scheme, host, port). kInvalidArgument for a Location that
// is not a valid http(s) URI reference.
Status ApplyRedirect(HttpCall& call, int status, std::string_view location);

// The tool's response to the final response of `call` (after any redirects):
//   2xx (and 3xx when call.redirect) -> kOk with the output format's value:
//     content  -> the body parsed as JSON when Content-Type is application/json, */*+json
//                 or text/json (an empty body is null); otherwise the body as a string
//                 (invalid UTF-8 replaced by U+FFFD; use `raw` for binary bodies); an empty
//                 body is null.
//     response -> {request: {method, uri, headers}, statusCode, headers, content}, header
//                 names in lower case, repeated headers joined with ", ", Authorization
//                 and Proxy-Authorization values replaced by "<redacted>" (the output is
//                 persisted), content as for `content`.
//     raw      -> the body in base64 (empty body: "").
//   otherwise -> kFailed, error_type::kCommunication, status = the HTTP status, title =
//                the reason phrase, detail = method, URI, status and the first 512 bytes
//                of the body.
//   A JSON content type with a body that is not JSON -> kFailed kCommunication 502.
// Except with output "exchange": any final status (after redirects, when followed) is kOk
// with {statusCode, reason, headers, body}: headers as for `response`, body the text as
// received (invalid UTF-8 replaced by U+FFFD; never parsed). For callers that must see
// the status, Retry-After and body of every answer, such as the agents' AgentIo::PostJson
// (agent/executor_io_http.cc), which retries 429 and 5xx itself. Failures to get a
// response at all are reported as for the other formats.
ToolResponse InterpretResponse(const HttpCall& call, const HttpResponseData& response);

// How much of a body an error detail quotes.
inline constexpr size_t error_body_quote_bytes_max = 512;

// "GET https://host/path" for error details.
std::string DescribeRequest(const HttpCall& call);

}  // namespace cairn::engine::http
