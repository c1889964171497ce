// engine/http/http_call.h: the `with` arguments, redirects and response interpretation,
// without any I/O.
#include "engine/http/http_call.h"

#include <gtest/gtest.h>

#include "tests/support/assertions.h"

namespace cairn::engine::http {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using cairn::testing::Must;

HttpCall Parse(const Json& with, const HttpCallDefaults& defaults = {}) {
  return Must(ParseHttpCall(with, defaults));
}

Status ParseError(const Json& with) { return ParseHttpCall(with, {}).status(); }

TEST(HttpCallTest, MinimalGet) {
  HttpCall call = Parse({{"method", "get"}, {"endpoint", "http://h/v2/pet/1"}});
  EXPECT_EQ(call.method, "GET");
  EXPECT_EQ(call.uri.ToString(), "http://h/v2/pet/1");
  EXPECT_TRUE(call.headers.empty());
  EXPECT_FALSE(call.body.has_value());
  EXPECT_EQ(call.output, OutputFormat::kContent);
  EXPECT_FALSE(call.redirect);
}

TEST(HttpCallTest, DefaultsAddUserAgentAndIdempotencyKeyUnlessGiven) {
  HttpCall call =
      Parse({{"method", "post"}, {"endpoint", "http://h/"}}, {"run-1/do/0/pay#1", "cairn/test"});
  EXPECT_EQ(FindHeader(call.headers, "idempotency-key").value_or(""), "run-1/do/0/pay#1");
  EXPECT_EQ(FindHeader(call.headers, "USER-AGENT").value_or(""), "cairn/test");
  HttpCall given = Parse({{"method", "post"},
                          {"endpoint", "http://h/"},
                          {"headers", {{"Idempotency-Key", "mine"}, {"User-Agent", "me"}}}},
                         {"engine-key", "cairn/test"});
  EXPECT_EQ(FindHeader(given.headers, "idempotency-key").value_or(""), "mine");
  EXPECT_EQ(FindHeader(given.headers, "user-agent").value_or(""), "me");
  EXPECT_EQ(given.headers.size(), 2u);
}

TEST(HttpCallTest, EndpointObjectWithAuthentication) {
  HttpCall basic =
      Parse({{"method", "GET"},
             {"endpoint",
              {{"uri", "https://h/basic-auth/u/p"},
               {"authentication", {{"basic", {{"username", "u"}, {"password", "p:w"}}}}}}}});
  EXPECT_EQ(FindHeader(basic.headers, "authorization").value_or(""), "Basic dTpwOnc=");
  HttpCall bearer = Parse(
      {{"method", "GET"},
       {"endpoint", {{"uri", "https://h/"}, {"authentication", {{"bearer", {{"token", "t0k"}}}}}}},
       {"headers", {{"authorization", "overridden"}}}});
  ASSERT_EQ(bearer.headers.size(), 1u);
  EXPECT_EQ(bearer.headers[0].value, "Bearer t0k");
}

TEST(HttpCallTest, UnsupportedAuthenticationIsRefusedByName) {
  for (const char* scheme : {"digest", "oauth2", "oidc"}) {
    Status status = ParseError(
        {{"method", "GET"},
         {"endpoint", {{"uri", "https://h/"}, {"authentication", {{scheme, Json::object()}}}}}});
    EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {scheme, "not supported"}));
  }
  EXPECT_TRUE(IsError(
      ParseError({{"method", "GET"},
                  {"endpoint", {{"uri", "https://h/"}, {"authentication", {{"use", "x"}}}}}}),
      StatusCode::kInvalidArgument, {"named authentication", "not supported"}));
  EXPECT_TRUE(IsError(
      ParseError({{"method", "GET"},
                  {"endpoint",
                   {{"uri", "https://h/"}, {"authentication", {{"basic", {{"use", "secret"}}}}}}}}),
      StatusCode::kInvalidArgument, {"basic.use", "secrets"}));
}

TEST(HttpCallTest, QueryIsEncodedAndAppended) {
  HttpCall call = Parse({{"method", "GET"},
                         {"endpoint", "http://h/find?x=1"},
                         {"query",
                          {{"status", "available"},
                           {"q", "a b&c/é"},
                           {"n", 5},
                           {"flag", true},
                           {"skip", nullptr},
                           {"tags", {"x", "y"}}}}});
  EXPECT_EQ(call.uri.Target(),
            "/find?x=1&flag=true&n=5&q=a%20b%26c%2F%C3%A9&status=available&tags=x&tags=y");
  EXPECT_TRUE(IsError(
      ParseError(
          {{"method", "GET"}, {"endpoint", "http://h/"}, {"query", {{"o", {{"nested", 1}}}}}}),
      StatusCode::kInvalidArgument, {"query.o", "object"}));
}

TEST(HttpCallTest, BodyEncoding) {
  HttpCall json =
      Parse({{"method", "POST"}, {"endpoint", "http://h/"}, {"body", {{"b", 2}, {"a", 1}}}});
  EXPECT_EQ(json.body.value_or(""), R"({"a":1,"b":2})");
  EXPECT_EQ(FindHeader(json.headers, "content-type").value_or(""), "application/json");

  HttpCall string_json = Parse({{"method", "POST"}, {"endpoint", "http://h/"}, {"body", "hi"}});
  EXPECT_EQ(string_json.body.value_or(""), "\"hi\"");

  HttpCall text = Parse({{"method", "POST"},
                         {"endpoint", "http://h/"},
                         {"headers", {{"Content-Type", "text/plain"}}},
                         {"body", "as is"}});
  EXPECT_EQ(text.body.value_or(""), "as is");
  EXPECT_EQ(text.headers.size(), 1u);

  HttpCall form = Parse({{"method", "POST"},
                         {"endpoint", "http://h/"},
                         {"headers", {{"content-type", "application/x-www-form-urlencoded"}}},
                         {"body", {{"name", "a b"}, {"n", 1}}}});
  EXPECT_EQ(form.body.value_or(""), "n=1&name=a%20b");

  HttpCall other = Parse({{"method", "PUT"},
                          {"endpoint", "http://h/"},
                          {"headers", {{"content-type", "application/vnd.x+json"}}},
                          {"body", {1, 2}}});
  EXPECT_EQ(other.body.value_or(""), "[1,2]");

  HttpCall none = Parse({{"method", "POST"}, {"endpoint", "http://h/"}, {"body", nullptr}});
  EXPECT_FALSE(none.body.has_value());
}

TEST(HttpCallTest, RefusesBadArgumentsNamingTheField) {
  EXPECT_TRUE(IsError(ParseError(Json::array()), StatusCode::kInvalidArgument, {"with"}));
  EXPECT_TRUE(IsError(ParseError({{"endpoint", "http://h/"}}), StatusCode::kInvalidArgument,
                      {"with.method", "required"}));
  EXPECT_TRUE(IsError(ParseError({{"method", "GE T"}, {"endpoint", "http://h/"}}),
                      StatusCode::kInvalidArgument, {"with.method"}));
  EXPECT_TRUE(IsError(ParseError({{"method", "GET"}}), StatusCode::kInvalidArgument,
                      {"with.endpoint", "required"}));
  EXPECT_TRUE(IsError(ParseError({{"method", "GET"}, {"endpoint", "/relative"}}),
                      StatusCode::kInvalidArgument, {"with.endpoint", "absolute"}));
  EXPECT_TRUE(IsError(ParseError({{"method", "GET"}, {"endpoint", 5}}),
                      StatusCode::kInvalidArgument, {"with.endpoint", "number"}));
  EXPECT_TRUE(IsError(ParseError({{"method", "GET"}, {"endpoint", "http://h/"}, {"output", "xml"}}),
                      StatusCode::kInvalidArgument, {"with.output", "xml"}));
  EXPECT_TRUE(
      IsError(ParseError({{"method", "GET"}, {"endpoint", "http://h/"}, {"redirect", "yes"}}),
              StatusCode::kInvalidArgument, {"with.redirect"}));
  EXPECT_TRUE(IsError(ParseError({{"method", "GET"}, {"endpoint", "http://h/"}, {"timeout", 5}}),
                      StatusCode::kInvalidArgument, {"with.timeout", "unknown field"}));
  EXPECT_TRUE(
      IsError(ParseError({{"method", "GET"}, {"endpoint", {{"uri", "http://h/"}, {"extra", 1}}}}),
              StatusCode::kInvalidArgument, {"with.endpoint.extra", "unknown field"}));
  EXPECT_TRUE(IsError(ParseError({{"method", "GET"},
                                  {"endpoint", "http://h/"},
                                  {"headers", {{"X-Evil", "a\r\nInjected: 1"}}}}),
                      StatusCode::kInvalidArgument, {"with.headers.X-Evil", "CR"}));
  EXPECT_TRUE(IsError(
      ParseError(
          {{"method", "GET"}, {"endpoint", "http://h/"}, {"headers", {{"Content-Length", "5"}}}}),
      StatusCode::kInvalidArgument, {"with.headers.Content-Length", "executor"}));
  EXPECT_TRUE(IsError(
      ParseError({{"method", "GET"}, {"endpoint", "http://h/"}, {"headers", {{"bad name", "x"}}}}),
      StatusCode::kInvalidArgument, {"not a valid header name"}));
}

TEST(HttpCallTest, RedirectRewritesTheCall) {
  HttpCall call =
      Parse({{"method", "POST"},
             {"endpoint",
              {{"uri", "https://a.example/x"}, {"authentication", {{"bearer", {{"token", "t"}}}}}}},
             {"body", {{"k", 1}}},
             {"redirect", true}});
  HttpCall kept = call;
  ASSERT_TRUE(ApplyRedirect(kept, 307, "/y").ok());
  EXPECT_EQ(kept.method, "POST");
  EXPECT_TRUE(kept.body.has_value());
  EXPECT_TRUE(FindHeader(kept.headers, "authorization").has_value());
  EXPECT_EQ(kept.uri.ToString(), "https://a.example/y");

  HttpCall seeOther = call;
  ASSERT_TRUE(ApplyRedirect(seeOther, 303, "https://b.example/z").ok());
  EXPECT_EQ(seeOther.method, "GET");
  EXPECT_FALSE(seeOther.body.has_value());
  EXPECT_FALSE(FindHeader(seeOther.headers, "content-type").has_value());
  EXPECT_FALSE(FindHeader(seeOther.headers, "authorization").has_value());  // other origin

  HttpCall bad = call;
  EXPECT_TRUE(
      IsError(ApplyRedirect(bad, 302, "ftp://x/"), StatusCode::kInvalidArgument, {"Location"}));
  EXPECT_TRUE(IsFollowableRedirect(308));
  EXPECT_FALSE(IsFollowableRedirect(304));
  EXPECT_FALSE(IsFollowableRedirect(300));
}

HttpResponseData Response(int status, const std::string& content_type, std::string body) {
  HttpResponseData response;
  response.status = status;
  response.reason = status == 200 ? "OK" : "Not Found";
  if (!content_type.empty()) response.headers.push_back({"Content-Type", content_type});
  response.body = std::move(body);
  return response;
}

TEST(HttpCallTest, InterpretsContent) {
  HttpCall call = Parse({{"method", "GET"}, {"endpoint", "http://h/p"}});
  ToolResponse json =
      InterpretResponse(call, Response(200, "application/json; charset=utf-8", R"({"id":1})"));
  ASSERT_EQ(json.status, ToolResponse::Status::kOk);
  EXPECT_EQ(json.output, Json({{"id", 1}}));
  EXPECT_EQ(InterpretResponse(call, Response(200, "application/problem+json", "[1]")).output,
            Json::array({1}));
  EXPECT_EQ(InterpretResponse(call, Response(200, "text/plain", "hello")).output, "hello");
  EXPECT_EQ(InterpretResponse(call, Response(200, "", "x")).output, "x");
  EXPECT_TRUE(InterpretResponse(call, Response(204, "application/json", "")).output.is_null());

  ToolResponse invalid = InterpretResponse(call, Response(200, "application/json", "{nope"));
  EXPECT_EQ(invalid.status, ToolResponse::Status::kFailed);
  EXPECT_EQ(invalid.error.type, error_type::kCommunication);
  EXPECT_EQ(invalid.error.status, 502);
  EXPECT_TRUE(HasSubstr(invalid.error.detail, "application/json"));
  EXPECT_TRUE(HasSubstr(invalid.error.detail, "{nope"));
}

TEST(HttpCallTest, InterpretsErrors) {
  HttpCall call = Parse({{"method", "GET"}, {"endpoint", "http://h/p"}});
  ToolResponse not_found =
      InterpretResponse(call, Response(404, "text/plain", std::string(2000, 'x')));
  EXPECT_EQ(not_found.status, ToolResponse::Status::kFailed);
  EXPECT_EQ(not_found.error.status, 404);
  EXPECT_EQ(not_found.error.title, "Not Found");
  EXPECT_TRUE(HasSubstr(not_found.error.detail, "GET http://h/p returned 404"));
  EXPECT_TRUE(HasSubstr(not_found.error.detail, "(2000 bytes)"));
  EXPECT_LT(not_found.error.detail.size(), 700u);

  HttpResponseData moved = Response(301, "", "");
  moved.headers.push_back({"Location", "/q"});
  ToolResponse refused = InterpretResponse(call, moved);
  EXPECT_EQ(refused.error.status, 301);
  EXPECT_TRUE(HasSubstr(refused.error.detail, "Location: /q"));
  EXPECT_TRUE(HasSubstr(refused.error.detail, "redirect: true"));
  call.redirect = true;
  EXPECT_EQ(InterpretResponse(call, moved).status, ToolResponse::Status::kOk);
}

TEST(HttpCallTest, InterpretsResponseAndRaw) {
  HttpCall call =
      Parse({{"method", "get"},
             {"endpoint",
              {{"uri", "http://h/p"}, {"authentication", {{"bearer", {{"token", "secret"}}}}}}},
             {"output", "response"}},
            {"key-1", ""});
  HttpResponseData response = Response(200, "application/json", R"({"id":1})");
  response.headers.push_back({"X-Multi", "a"});
  response.headers.push_back({"x-multi", "b"});
  ToolResponse out = InterpretResponse(call, response);
  ASSERT_EQ(out.status, ToolResponse::Status::kOk);
  EXPECT_EQ(out.output["statusCode"], 200);
  EXPECT_EQ(out.output["content"], Json({{"id", 1}}));
  EXPECT_EQ(out.output["headers"]["content-type"], "application/json");
  EXPECT_EQ(out.output["headers"]["x-multi"], "a, b");
  EXPECT_EQ(out.output["request"]["method"], "GET");
  EXPECT_EQ(out.output["request"]["uri"], "http://h/p");
  EXPECT_EQ(out.output["request"]["headers"]["authorization"], "<redacted>");
  EXPECT_EQ(out.output["request"]["headers"]["idempotency-key"], "key-1");

  call.output = OutputFormat::kRaw;
  EXPECT_EQ(InterpretResponse(call, Response(200, "application/json", "{nope")).output, "e25vcGU=");
}

// "exchange" (a cairn extension for the agents' PostJson): every status is a result.
TEST(HttpCallTest, InterpretsExchange) {
  HttpCall call = Parse({{"method", "post"}, {"endpoint", "http://h/p"}, {"output", "exchange"}});
  EXPECT_EQ(call.output, OutputFormat::kExchange);
  HttpResponseData limited = Response(429, "application/json", "{not json");
  limited.reason = "Too Many Requests";
  limited.headers.push_back({"Retry-After", "3"});
  ToolResponse out = InterpretResponse(call, limited);
  ASSERT_EQ(out.status, ToolResponse::Status::kOk);
  EXPECT_EQ(out.output,
            Json({{"statusCode", 429},
                  {"reason", "Too Many Requests"},
                  {"headers", {{"content-type", "application/json"}, {"retry-after", "3"}}},
                  {"body", "{not json"}}));
  ToolResponse ok = InterpretResponse(call, Response(200, "application/json", R"({"id":1})"));
  ASSERT_EQ(ok.status, ToolResponse::Status::kOk);
  EXPECT_EQ(ok.output["body"], R"({"id":1})");  // never parsed
  EXPECT_TRUE(IsError(ParseError({{"method", "get"}, {"endpoint", "http://h/"}, {"output", "x"}}),
                      StatusCode::kInvalidArgument, {"with.output"}));
}

}  // namespace
}  // namespace cairn::engine::http
