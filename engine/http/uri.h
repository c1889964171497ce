// Absolute http and https URIs, as the `call: http` executor sends them: parsing (the
// subset of RFC 3986 an HTTP client needs), percent-encoding of query parameters, and
// resolving a redirect's Location against the URI that returned it.
//
// Pure functions and a plain value type; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cairn::engine::http {

struct Uri {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // lower-case name, dotted IPv4, or IPv6 without the brackets
  uint16_t port = 0;   // explicit, or the scheme's default (80, 443)
  std::string path;    // starts with '/', percent-encoded
  std::string query;   // after '?', percent-encoded; empty when there is none

  bool tls() const { return scheme == "https"; }
  bool host_is_ipv6() const { return host.find(':') != std::string::npos; }
  // "host" or "host:port" (port only when not the scheme's default); IPv6 in brackets.
  // This is the Host header's value.
  std::string Authority() const;
  // "path" or "path?query": the request target.
  std::string Target() const;
  // "scheme://authority/path?query".
  std::string ToString() const;

  friend bool operator==(const Uri&, const Uri&) = default;
};

// Parses an absolute http or https URI. Bytes that may not appear in a URI (spaces,
// non-ASCII, '"', '<', ...) in the path and query are percent-encoded; valid %XX escapes
// are kept as they are; the fragment is dropped (it is never sent). An empty path
// becomes "/".
// kInvalidArgument quoting the URI and saying what is wrong: not absolute, a scheme other
// than http/https, user info ("user:pass@", use endpoint.authentication instead), an
// empty or malformed host, a port outside 1..65535.
Result<Uri> ParseUri(std::string_view text);

// Resolves `reference` (a Location header: absolute, "//host/...", "/path", "relative",
// "?query") against `base`, per RFC 3986 section 5.2, dot segments removed.
// kInvalidArgument as for ParseUri when the result is not a valid http(s) URI.
Result<Uri> ResolveReference(const Uri& base, std::string_view reference);

// Percent-encodes every byte except the unreserved characters (A-Z a-z 0-9 - . _ ~), for
// query parameter names and values.
std::string PercentEncode(std::string_view text);

// Appends "name=value" (both percent-encoded) to the URI's query, with '&' if the query
// already has parameters.
void AppendQueryParameter(Uri& uri, std::string_view name, std::string_view value);

}  // namespace cairn::engine::http
