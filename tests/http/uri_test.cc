// engine/http/uri.h and encoding.h: parsing, normalising and resolving URIs; base64; UTF-8.
#include "engine/http/uri.h"

#include <gtest/gtest.h>

#include "base/json.h"
#include "engine/http/encoding.h"
#include "tests/support/assertions.h"

namespace cairn::engine::http {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using cairn::testing::Must;

TEST(UriTest, ParsesTheParts) {
  Uri uri = Must(ParseUri("HTTPS://Example.COM:8443/a/b?x=1&y=2#frag"));
  EXPECT_EQ(uri.scheme, "https");
  EXPECT_EQ(uri.host, "example.com");
  EXPECT_EQ(uri.port, 8443);
  EXPECT_EQ(uri.path, "/a/b");
  EXPECT_EQ(uri.query, "x=1&y=2");
  EXPECT_EQ(uri.Authority(), "example.com:8443");
  EXPECT_EQ(uri.Target(), "/a/b?x=1&y=2");
  EXPECT_EQ(uri.ToString(), "https://example.com:8443/a/b?x=1&y=2");
}

TEST(UriTest, DefaultsPortAndPath) {
  Uri http = Must(ParseUri("http://host"));
  EXPECT_EQ(http.port, 80);
  EXPECT_EQ(http.path, "/");
  EXPECT_EQ(http.Authority(), "host");
  Uri https = Must(ParseUri("https://host:443?q"));
  EXPECT_EQ(https.port, 443);
  EXPECT_EQ(https.Authority(), "host");
  EXPECT_EQ(https.Target(), "/?q");
}

TEST(UriTest, Ipv6) {
  Uri uri = Must(ParseUri("http://[::1]:8080/x"));
  EXPECT_EQ(uri.host, "::1");
  EXPECT_TRUE(uri.host_is_ipv6());
  EXPECT_EQ(uri.Authority(), "[::1]:8080");
  EXPECT_EQ(Must(ParseUri("http://[::1]/")).Authority(), "[::1]");
}

TEST(UriTest, EncodesWhatMayNotAppearAndKeepsEscapes) {
  Uri uri = Must(ParseUri("http://h/pets/Milou Dog/é?name=a b&ok=%41%zz"));
  EXPECT_EQ(uri.path, "/pets/Milou%20Dog/%C3%A9");
  EXPECT_EQ(uri.query, "name=a%20b&ok=%41%25zz");
}

TEST(UriTest, RejectsWhatCannotBeSent) {
  EXPECT_TRUE(IsError(ParseUri("/v2/pet/1").status(), StatusCode::kInvalidArgument,
                      {"not an absolute URI"}));
  EXPECT_TRUE(IsError(ParseUri("ftp://h/x").status(), StatusCode::kInvalidArgument,
                      {"http or https", "ftp"}));
  EXPECT_TRUE(
      IsError(ParseUri("http://user:pw@h/").status(), StatusCode::kInvalidArgument, {"user info"}));
  EXPECT_TRUE(IsError(ParseUri("http:///x").status(), StatusCode::kInvalidArgument, {"empty"}));
  EXPECT_TRUE(IsError(ParseUri("http://h:0/").status(), StatusCode::kInvalidArgument, {"port"}));
  EXPECT_TRUE(
      IsError(ParseUri("http://h:65536/").status(), StatusCode::kInvalidArgument, {"port"}));
  EXPECT_TRUE(IsError(ParseUri("http://h:8x/").status(), StatusCode::kInvalidArgument, {"port"}));
  EXPECT_TRUE(
      IsError(ParseUri("http://bad host/").status(), StatusCode::kInvalidArgument, {"host"}));
  EXPECT_TRUE(IsError(ParseUri("http://[::1/").status(), StatusCode::kInvalidArgument, {"IPv6"}));
  EXPECT_TRUE(IsError(ParseUri("http://h\r\nX: y/").status(), StatusCode::kInvalidArgument));
}

TEST(UriTest, ResolvesReferences) {
  Uri base = Must(ParseUri("https://a.example/x/y/z?q=1"));
  EXPECT_EQ(Must(ResolveReference(base, "http://b.example/p")).ToString(), "http://b.example/p");
  EXPECT_EQ(Must(ResolveReference(base, "//c.example/p?r")).ToString(), "https://c.example/p?r");
  EXPECT_EQ(Must(ResolveReference(base, "/abs")).ToString(), "https://a.example/abs");
  EXPECT_EQ(Must(ResolveReference(base, "rel")).ToString(), "https://a.example/x/y/rel");
  EXPECT_EQ(Must(ResolveReference(base, "../up?s=2")).ToString(), "https://a.example/x/up?s=2");
  EXPECT_EQ(Must(ResolveReference(base, "./")).ToString(), "https://a.example/x/y/");
  EXPECT_EQ(Must(ResolveReference(base, "?only")).ToString(), "https://a.example/x/y/z?only");
  EXPECT_EQ(Must(ResolveReference(base, "/a/../../b")).ToString(), "https://a.example/b");
  EXPECT_EQ(Must(ResolveReference(base, "")).ToString(), base.ToString());
  EXPECT_TRUE(IsError(ResolveReference(base, "mailto:x@y").status(), StatusCode::kInvalidArgument,
                      {"http or https"}));
}

TEST(UriTest, PercentEncodeAndAppendQuery) {
  EXPECT_EQ(PercentEncode("aZ09-._~ /?&=+é"), "aZ09-._~%20%2F%3F%26%3D%2B%C3%A9");
  Uri uri = Must(ParseUri("http://h/p"));
  AppendQueryParameter(uri, "a b", "c&d");
  AppendQueryParameter(uri, "e", "");
  EXPECT_EQ(uri.Target(), "/p?a%20b=c%26d&e=");
  Uri with_query = Must(ParseUri("http://h/p?x=1"));
  AppendQueryParameter(with_query, "y", "2");
  EXPECT_EQ(with_query.Target(), "/p?x=1&y=2");
}

TEST(EncodingTest, Base64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\x00\x01\xff", 3)), "AAH/");
  EXPECT_EQ(Base64Encode("serverless-workflow:conformance-test"),
            "c2VydmVybGVzcy13b3JrZmxvdzpjb25mb3JtYW5jZS10ZXN0");
}

TEST(EncodingTest, RepairUtf8) {
  EXPECT_EQ(RepairUtf8("plain"), "plain");
  EXPECT_EQ(RepairUtf8("h\xC3\xA9llo \xF0\x9F\x98\x80"), "h\xC3\xA9llo \xF0\x9F\x98\x80");
  const std::string kFffd = "\xEF\xBF\xBD";
  EXPECT_EQ(RepairUtf8("a\xFF"
                       "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(RepairUtf8("\xC0\xAF"), kFffd + kFffd);                          // overlong '/'
  EXPECT_EQ(RepairUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // surrogate
  EXPECT_EQ(RepairUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(RepairUtf8("ok\xE2\x82"), "ok" + kFffd + kFffd);                 // truncated
  // The result always dumps as JSON.
  Json value = RepairUtf8(std::string("\x80\x81\xC3", 3));
  EXPECT_NO_THROW(static_cast<void>(value.dump()));
}

}  // namespace
}  // namespace cairn::engine::http
