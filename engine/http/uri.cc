#include "engine/http/uri.h"

#include <algorithm>
#include <charconv>
#include <vector>

namespace cairn::engine::http {

namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsUnreserved(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool IsSubDelim(char c) {
  return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
         c == '+' || c == ',' || c == ';' || c == '=';
}
// RFC 3986 pchar without pct-encoded, plus '/' (and '?' in a query).
bool AllowedInPath(char c) {
  return IsUnreserved(c) || IsSubDelim(c) || c == ':' || c == '@' || c == '/';
}
bool AllowedInQuery(char c) { return AllowedInPath(c) || c == '?'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

void AppendEscaped(std::string& out, char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto byte = static_cast<uint8_t>(c);
  out += '%';
  out += kHex[byte >> 4];
  out += kHex[byte & 15];
}

// Keeps allowed characters and valid %XX escapes; escapes everything else.
std::string Normalize(std::string_view text, bool (*allowed)(char)) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool valid_escape = c == '%' && i + 2 < text.size() && IsHex(text[i + 1]) && IsHex(text[i + 2]);
    if (valid_escape || (c != '%' && allowed(c))) {
      out += c;
    } else {
      AppendEscaped(out, c);
    }
  }
  return out;
}

Status Invalid(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("URI \"" + std::string(text) + "\": " + std::string(why));
}

uint16_t DefaultPort(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// Parses "host[:port]" (IPv6 in brackets) into uri.host and uri.port.
Status ParseAuthority(std::string_view text, std::string_view authority, Uri& uri) {
  if (authority.find('@') != std::string_view::npos) {
    return Invalid(text, "user info in the URI is not supported; use endpoint.authentication");
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid(text, "unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return Invalid(text, "junk after the IPv6 address");
    if (!rest.empty()) port = rest.substr(1);
    bool ok = !host.empty() && std::all_of(host.begin(), host.end(),
                                           [](char c) { return IsHex(c) || c == ':' || c == '.'; });
    if (!ok) return Invalid(text, "malformed IPv6 address");
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (host.empty()) return Invalid(text, "the host is empty");
    bool ok = std::all_of(host.begin(), host.end(), [](char c) {
      return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_';
    });
    if (!ok) {
      return Invalid(text,
                     "the host may hold only letters, digits, '-', '.' and '_' "
                     "(write international names in their xn-- form)");
    }
  }
  uri.host = LowerCopy(host);
  uri.port = DefaultPort(uri.scheme);
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return Invalid(text, "the port must be a number from 1 to 65535");
    }
    uri.port = static_cast<uint16_t>(value);
  }
  return Status::Ok();
}

// RFC 3986 section 5.2.4.
std::string RemoveDotSegments(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t start = 1;  // path starts with '/'
  bool trailing_slash = false;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    trailing_slash = false;
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = true;
    } else if (segment == ".") {
      trailing_slash = true;
    } else {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out;
  for (std::string_view segment : segments) {
    out += '/';
    out += segment;
  }
  if (trailing_slash || out.empty()) out += '/';
  return out;
}

}  // namespace

std::string Uri::Authority() const {
  std::string out = host_is_ipv6() ? "[" + host + "]" : host;
  if (port != DefaultPort(scheme)) out += ":" + std::to_string(port);
  return out;
}

std::string Uri::Target() const { return query.empty() ? path : path + "?" + query; }

std::string Uri::ToString() const { return scheme + "://" + Authority() + Target(); }

Result<Uri> ParseUri(std::string_view text) {
  // RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'.
  size_t colon = text.find(':');
  bool has_scheme = colon != std::string_view::npos && colon > 0 && IsAlpha(text[0]) &&
                    std::all_of(text.begin(), text.begin() + colon, [](char c) {
                      return IsAlpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.';
                    });
  if (!has_scheme) {
    return Invalid(text, "not an absolute URI (expected http://... or https://...)");
  }
  Uri uri;
  uri.scheme = LowerCopy(text.substr(0, colon));
  if (uri.scheme != "http" && uri.scheme != "https") {
    return Invalid(text, "the scheme must be http or https, not \"" + uri.scheme + "\"");
  }
  if (text.substr(colon, 3) != "://") {
    return Invalid(text, "expected \"//\" and a host after \"" + uri.scheme + ":\"");
  }
  std::string_view rest = text.substr(colon + 3);
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  size_t authority_end = rest.find_first_of("/?");
  if (authority_end == std::string_view::npos) authority_end = rest.size();
  CAIRN_RETURN_IF_ERROR(ParseAuthority(text, rest.substr(0, authority_end), uri));
  rest = rest.substr(authority_end);
  std::string_view path = rest;
  if (size_t question = rest.find('?'); question != std::string_view::npos) {
    path = rest.substr(0, question);
    uri.query = Normalize(rest.substr(question + 1), AllowedInQuery);
  }
  uri.path = path.empty() ? "/" : Normalize(path, AllowedInPath);
  return uri;
}

Result<Uri> ResolveReference(const Uri& base, std::string_view reference) {
  if (size_t hash = reference.find('#'); hash != std::string_view::npos) {
    reference = reference.substr(0, hash);
  }
  // A scheme is letters, digits, '+', '-', '.' before the first ':' (and before any '/').
  size_t colon = reference.find(':');
  size_t slash = reference.find_first_of("/?");
  if (colon != std::string_view::npos && colon > 0 && colon < slash && IsAlpha(reference[0])) {
    return ParseUri(reference);
  }
  if (reference.substr(0, 2) == "//") return ParseUri(base.scheme + ":" + std::string(reference));

  Uri out = base;
  std::string_view path = reference;
  std::string_view query;
  bool has_query = false;
  if (size_t question = reference.find('?'); question != std::string_view::npos) {
    path = reference.substr(0, question);
    query = reference.substr(question + 1);
    has_query = true;
  }
  if (path.empty()) {
    // "" or "?query": same path; a new query only if one is given.
    if (has_query) out.query = Normalize(query, AllowedInQuery);
    return out;
  }
  std::string merged;
  if (path.front() == '/') {
    merged = std::string(path);
  } else {
    merged = base.path.substr(0, base.path.rfind('/') + 1) + std::string(path);
  }
  out.path = RemoveDotSegments(Normalize(merged, AllowedInPath));
  out.query = has_query ? Normalize(query, AllowedInQuery) : std::string();
  return out;
}

std::string PercentEncode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (IsUnreserved(c)) {
      out += c;
    } else {
      AppendEscaped(out, c);
    }
  }
  return out;
}

void AppendQueryParameter(Uri& uri, std::string_view name, std::string_view value) {
  if (!uri.query.empty() && uri.query.back() != '&') uri.query += '&';
  uri.query += PercentEncode(name);
  uri.query += '=';
  uri.query += PercentEncode(value);
}

}  // namespace cairn::engine::http
