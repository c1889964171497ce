#include "engine/http/http_call.h"

#include <algorithm>
#include <array>
#include <map>

#include "base/limits.h"
#include "engine/http/encoding.h"

namespace cairn::engine::http {

namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
char Upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

std::string LowerCopy(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

// RFC 9110 token characters (methods and header names).
bool IsToken(std::string_view text) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kExtra.find(c) != std::string_view::npos;
  });
}

Status Bad(std::string_view field, std::string_view what) {
  return Status::InvalidArgument("with." + std::string(field) + ": " + std::string(what));
}

std::string Quote(const Json& value) {
  std::string text = DumpJson(value);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// Headers the executor owns: setting them from a workflow would break the framing.
bool IsReservedHeader(std::string_view name) {
  static constexpr std::array<std::string_view, 8> kReserved = {
      "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
      "trailer",        "proxy-connection"};
  return std::any_of(kReserved.begin(), kReserved.end(),
                     [&](std::string_view reserved) { return EqualsIgnoreCase(name, reserved); });
}

// A header value or query value from a JSON scalar; nullopt for null.
Result<std::optional<std::string>> ScalarText(const Json& value, std::string_view field) {
  if (value.is_null()) return std::optional<std::string>();
  if (value.is_string()) return std::optional<std::string>(value.get<std::string>());
  if (value.is_number() || value.is_boolean()) return std::optional<std::string>(DumpJson(value));
  return Bad(field, "expected a string, number or boolean, got " +
                        std::string(JsonTypeName(value)) + " " + Quote(value));
}

Status ParseHeaders(const Json& with, HttpCall& call) {
  if (!with.contains("headers")) return Status::Ok();
  const Json& headers = with["headers"];
  if (headers.is_null()) return Status::Ok();
  if (!headers.is_object()) {
    return Bad("headers",
               "expected an object of name: value, got " + std::string(JsonTypeName(headers)));
  }
  for (const auto& [name, value] : headers.items()) {
    std::string field = "headers." + name;
    if (!IsToken(name)) return Bad(field, "not a valid header name");
    if (IsReservedHeader(name)) return Bad(field, "is set by the executor and may not be given");
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> text, ScalarText(value, field));
    if (!text) continue;
    if (text->find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Bad(field, "the value may not contain CR, LF or NUL");
    }
    call.headers.push_back({name, std::move(*text)});
  }
  return Status::Ok();
}

Status ParseQuery(const Json& with, HttpCall& call) {
  if (!with.contains("query") || with["query"].is_null()) return Status::Ok();
  const Json& query = with["query"];
  if (!query.is_object()) {
    return Bad("query",
               "expected an object of name: value, got " + std::string(JsonTypeName(query)));
  }
  for (const auto& [name, value] : query.items()) {
    std::string field = "query." + name;
    if (value.is_array()) {
      for (const Json& element : value) {
        CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> text, ScalarText(element, field));
        if (text) AppendQueryParameter(call.uri, name, *text);
      }
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> text, ScalarText(value, field));
    if (text) AppendQueryParameter(call.uri, name, *text);
  }
  return Status::Ok();
}

Result<std::string> RequiredString(const Json& object, std::string_view key,
                                   std::string_view field) {
  if (!object.contains(key)) return Bad(field, "is required");
  const Json& value = object[std::string(key)];
  if (!value.is_string()) {
    return Bad(field, "expected a string, got " + std::string(JsonTypeName(value)));
  }
  return value.get<std::string>();
}

Status CheckKeys(const Json& object, std::string_view field,
                 std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string where = field.empty() ? key : std::string(field) + "." + key;
      return Bad(where, "unknown field (not part of `call: http` or not supported by cairn)");
    }
  }
  return Status::Ok();
}

// endpoint.authentication -> an Authorization header value.
Result<std::string> ParseAuthentication(const Json& auth) {
  static constexpr std::string_view kField = "endpoint.authentication";
  if (!auth.is_object()) {
    return Bad(kField, "expected an object, got " + std::string(JsonTypeName(auth)));
  }
  if (auth.size() != 1) return Bad(kField, "expected exactly one scheme (basic or bearer)");
  auto first = auth.begin();
  const std::string& scheme = first.key();
  const Json& policy = first.value();
  std::string field = std::string(kField) + "." + scheme;
  if (scheme == "basic" || scheme == "bearer") {
    if (!policy.is_object()) return Bad(field, "expected an object");
    if (policy.contains("use")) {
      return Bad(field + ".use",
                 "secrets are not supported by the HTTP executor; the engine "
                 "must resolve them before the call");
    }
  }
  if (scheme == "basic") {
    CAIRN_RETURN_IF_ERROR(CheckKeys(policy, field, {"username", "password"}));
    CAIRN_ASSIGN_OR_RETURN(std::string user,
                           RequiredString(policy, "username", field + ".username"));
    CAIRN_ASSIGN_OR_RETURN(std::string pass,
                           RequiredString(policy, "password", field + ".password"));
    if (user.find(':') != std::string::npos) {
      return Bad(field + ".username", "may not contain ':' (RFC 7617)");
    }
    return "Basic " + Base64Encode(user + ":" + pass);
  }
  if (scheme == "bearer") {
    CAIRN_RETURN_IF_ERROR(CheckKeys(policy, field, {"token"}));
    CAIRN_ASSIGN_OR_RETURN(std::string token, RequiredString(policy, "token", field + ".token"));
    if (token.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Bad(field + ".token", "may not contain CR, LF or NUL");
    }
    return "Bearer " + token;
  }
  if (scheme == "use") {
    return Bad(field,
               "named authentication policies are not supported by the HTTP executor; "
               "the engine must resolve them before the call");
  }
  if (scheme == "digest" || scheme == "oauth2" || scheme == "oidc") {
    return Bad(field, "the " + scheme +
                          " authentication scheme is not supported "
                          "(supported: basic, bearer)");
  }
  return Bad(field, "unknown authentication scheme (supported: basic, bearer)");
}

Status ParseEndpoint(const Json& with, HttpCall& call) {
  if (!with.contains("endpoint")) return Bad("endpoint", "is required");
  const Json& endpoint = with["endpoint"];
  std::string uri_text;
  std::optional<std::string> authorization;
  if (endpoint.is_string()) {
    uri_text = endpoint.get<std::string>();
  } else if (endpoint.is_object()) {
    CAIRN_RETURN_IF_ERROR(CheckKeys(endpoint, "endpoint", {"uri", "authentication"}));
    CAIRN_ASSIGN_OR_RETURN(uri_text, RequiredString(endpoint, "uri", "endpoint.uri"));
    if (endpoint.contains("authentication") && !endpoint["authentication"].is_null()) {
      CAIRN_ASSIGN_OR_RETURN(authorization, ParseAuthentication(endpoint["authentication"]));
    }
  } else {
    return Bad("endpoint", "expected a URI string or {uri, authentication}, got " +
                               std::string(JsonTypeName(endpoint)));
  }
  Result<Uri> uri = ParseUri(uri_text);
  if (!uri.ok()) return Bad("endpoint", uri.status().message());
  call.uri = std::move(uri).value();
  if (authorization) {
    // The endpoint's authentication wins over an Authorization header in `headers`.
    std::erase_if(call.headers,
                  [](const HttpHeader& h) { return EqualsIgnoreCase(h.name, "authorization"); });
    call.headers.push_back({"Authorization", std::move(*authorization)});
  }
  return Status::Ok();
}

bool IsFormContentType(std::string_view content_type) {
  std::string lower = LowerCopy(content_type.substr(0, content_type.find(';')));
  while (!lower.empty() && lower.back() == ' ') lower.pop_back();
  return lower == "application/x-www-form-urlencoded";
}

Status ParseBody(const Json& with, HttpCall& call) {
  if (!with.contains("body") || with["body"].is_null()) return Status::Ok();
  const Json& body = with["body"];
  std::optional<std::string_view> content_type = FindHeader(call.headers, "content-type");
  if (!content_type) {
    call.body = DumpJson(body);
    call.headers.push_back({"Content-Type", "application/json"});
  } else if (body.is_string()) {
    call.body = body.get<std::string>();
  } else if (body.is_object() && IsFormContentType(*content_type)) {
    Uri form;  // reuse the query encoder
    for (const auto& [name, value] : body.items()) {
      CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> text, ScalarText(value, "body." + name));
      if (text) AppendQueryParameter(form, name, *text);
    }
    call.body = form.query;
  } else {
    call.body = DumpJson(body);
  }
  return Status::Ok();
}

Status ParseOptions(const Json& with, HttpCall& call) {
  if (with.contains("output") && !with["output"].is_null()) {
    const Json& output = with["output"];
    std::string text = output.is_string() ? output.get<std::string>() : DumpJson(output);
    if (text == "content") {
      call.output = OutputFormat::kContent;
    } else if (text == "response") {
      call.output = OutputFormat::kResponse;
    } else if (text == "raw") {
      call.output = OutputFormat::kRaw;
    } else if (text == "exchange") {
      call.output = OutputFormat::kExchange;
    } else {
      return Bad("output", "expected \"content\", \"response\" or \"raw\", got " + Quote(output));
    }
  }
  if (with.contains("redirect") && !with["redirect"].is_null()) {
    if (!with["redirect"].is_boolean()) {
      return Bad("redirect", "expected a boolean, got " + Quote(with["redirect"]));
    }
    call.redirect = with["redirect"].get<bool>();
  }
  return Status::Ok();
}

std::string MediaType(const HttpResponseData& response) {
  for (const HttpHeader& header : response.headers) {
    if (!EqualsIgnoreCase(header.name, "content-type")) continue;
    std::string type = LowerCopy(header.value.substr(0, header.value.find(';')));
    auto not_space = [](char c) { return c != ' ' && c != '\t'; };
    type.erase(type.begin(), std::find_if(type.begin(), type.end(), not_space));
    type.erase(std::find_if(type.rbegin(), type.rend(), not_space).base(), type.end());
    return type;
  }
  return "";
}

bool IsJsonMediaType(std::string_view type) {
  return type == "application/json" || type == "text/json" ||
         (type.size() > 5 && type.substr(type.size() - 5) == "+json");
}

std::string QuoteBody(std::string_view body) {
  if (body.size() <= error_body_quote_bytes_max) return RepairUtf8(body);
  return RepairUtf8(body.substr(0, error_body_quote_bytes_max)) + "... (" +
         std::to_string(body.size()) + " bytes)";
}

// Lower-case names, repeated headers joined with ", ", credentials redacted.
Json HeadersJson(const std::vector<HttpHeader>& headers) {
  std::map<std::string, std::string> joined;
  for (const HttpHeader& header : headers) {
    std::string name = LowerCopy(header.name);
    std::string value = (name == "authorization" || name == "proxy-authorization")
                            ? "<redacted>"
                            : RepairUtf8(header.value);
    auto [it, inserted] = joined.emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  Json out = Json::object();
  for (auto& [name, value] : joined) out[RepairUtf8(name)] = std::move(value);
  return out;
}

}  // namespace

std::optional<std::string_view> FindHeader(const std::vector<HttpHeader>& headers,
                                           std::string_view name) {
  for (const HttpHeader& header : headers) {
    if (EqualsIgnoreCase(header.name, name)) return std::string_view(header.value);
  }
  return std::nullopt;
}

Result<HttpCall> ParseHttpCall(const Json& with, const HttpCallDefaults& defaults) {
  if (!with.is_object()) {
    return Status::InvalidArgument("with: expected an object, got " +
                                   std::string(JsonTypeName(with)));
  }
  CAIRN_RETURN_IF_ERROR(CheckKeys(
      with, "", {"method", "endpoint", "headers", "body", "query", "output", "redirect"}));
  HttpCall call;
  CAIRN_ASSIGN_OR_RETURN(call.method, RequiredString(with, "method", "method"));
  if (!IsToken(call.method))
    return Bad("method", "not a valid HTTP method: " + Quote(with["method"]));
  std::transform(call.method.begin(), call.method.end(), call.method.begin(), Upper);

  CAIRN_RETURN_IF_ERROR(ParseHeaders(with, call));
  CAIRN_RETURN_IF_ERROR(ParseEndpoint(with, call));
  CAIRN_RETURN_IF_ERROR(ParseQuery(with, call));
  CAIRN_RETURN_IF_ERROR(ParseBody(with, call));
  CAIRN_RETURN_IF_ERROR(ParseOptions(with, call));
  if (!defaults.user_agent.empty() && !FindHeader(call.headers, "user-agent")) {
    call.headers.push_back({"User-Agent", defaults.user_agent});
  }
  // A key the workflow computed itself wins: it is as stable across retries as ours.
  if (!defaults.idempotency_key.empty() && !FindHeader(call.headers, "idempotency-key")) {
    call.headers.push_back({"Idempotency-Key", defaults.idempotency_key});
  }
  return call;
}

bool IsFollowableRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

Status ApplyRedirect(HttpCall& call, int status, std::string_view location) {
  Result<Uri> target = ResolveReference(call.uri, location);
  if (!target.ok()) {
    return Status::InvalidArgument("redirect Location: " + target.status().message());
  }
  bool same_origin = target->scheme == call.uri.scheme && target->host == call.uri.host &&
                     target->port == call.uri.port;
  if (!same_origin) {
    std::erase_if(call.headers, [](const HttpHeader& h) {
      return EqualsIgnoreCase(h.name, "authorization") || EqualsIgnoreCase(h.name, "host");
    });
  }
  if (status == 303 || ((status == 301 || status == 302) && call.method == "POST")) {
    if (call.method != "HEAD") call.method = "GET";
    call.body.reset();
    std::erase_if(call.headers,
                  [](const HttpHeader& h) { return EqualsIgnoreCase(h.name, "content-type"); });
  }
  call.uri = std::move(target).value();
  return Status::Ok();
}

std::string DescribeRequest(const HttpCall& call) {
  return call.method + " " + call.uri.ToString();
}

ToolResponse InterpretResponse(const HttpCall& call, const HttpResponseData& response) {
  if (call.output == OutputFormat::kExchange) {
    return ToolResponse::Ok({{"statusCode", response.status},
                             {"reason", RepairUtf8(response.reason)},
                             {"headers", HeadersJson(response.headers)},
                             {"body", RepairUtf8(response.body)}});
  }
  int max_ok = call.redirect ? 399 : 299;
  if (response.status < 200 || response.status > max_ok) {
    std::string detail = DescribeRequest(call) + " returned " + std::to_string(response.status);
    if (!response.reason.empty()) detail += " " + RepairUtf8(response.reason);
    if (response.status >= 300 && response.status <= 399) {
      std::optional<std::string_view> location = FindHeader(response.headers, "location");
      detail += location ? " (Location: " + RepairUtf8(*location) + ")" : " (no Location)";
      if (!call.redirect) detail += "; redirects are followed only with redirect: true";
    }
    if (!response.body.empty()) detail += ": " + QuoteBody(response.body);
    return ToolResponse::Failed(error_type::kCommunication, response.status,
                                RepairUtf8(response.reason), std::move(detail));
  }

  Json content = nullptr;
  if (call.output != OutputFormat::kRaw && !response.body.empty()) {
    std::string type = MediaType(response);
    if (IsJsonMediaType(type)) {
      Result<Json> parsed =
          ParseJson(response.body, "HTTP response body", std::max(response.body.size(), size_t{1}));
      if (!parsed.ok()) {
        return ToolResponse::Failed(
            error_type::kCommunication, 502, "Invalid JSON in HTTP response",
            DescribeRequest(call) + " returned " + std::to_string(response.status) +
                " with Content-Type " + type + " but " + parsed.status().message() +
                "; body: " + QuoteBody(response.body));
      }
      content = std::move(parsed).value();
    } else {
      content = RepairUtf8(response.body);
    }
  }
  switch (call.output) {
    case OutputFormat::kRaw:
      return ToolResponse::Ok(Base64Encode(response.body));
    case OutputFormat::kContent:
      return ToolResponse::Ok(std::move(content));
    case OutputFormat::kResponse:
    case OutputFormat::kExchange:  // answered above
      break;
  }
  Json out = Json::object();
  out["request"] = {{"method", call.method},
                    {"uri", call.uri.ToString()},
                    {"headers", HeadersJson(call.headers)}};
  out["statusCode"] = response.status;
  out["headers"] = HeadersJson(response.headers);
  out["content"] = std::move(content);
  return ToolResponse::Ok(std::move(out));
}

}  // namespace cairn::engine::http
