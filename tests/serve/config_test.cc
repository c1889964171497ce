// The daemon's configuration file (tools/serve/config.h).
#include "tools/serve/config.h"

#include <gtest/gtest.h>

#include "tests/support/assertions.h"

namespace cairn::serve {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::Must;
using namespace std::chrono_literals;

TEST(ServeConfigTest, ReadsEveryKeyAndKeepsDefaultsElsewhere) {
  const ServeConfig c = Must(LoadServeConfig(R"(
listen: 127.0.0.1:9000
tokens: secrets/tokens.yaml
handler_threads: 4
limits:
  header_bytes: 8192
  body_bytes: 1048576
  request_timeout: 5s
  idle_timeout: 2m
  connections: 64
)",
                                             "serve.yaml", "/etc/cairn"));
  EXPECT_EQ(c.listen, "127.0.0.1:9000");
  EXPECT_EQ(c.tokens_file, "/etc/cairn/secrets/tokens.yaml");
  EXPECT_EQ(c.http.handler_threads, 4u);
  EXPECT_EQ(c.http.limits.header_bytes_max, 8192u);
  EXPECT_EQ(c.http.limits.body_bytes_max, 1048576u);
  EXPECT_EQ(c.http.limits.request_timeout, 5s);
  EXPECT_EQ(c.http.limits.idle_timeout, 120s);
  EXPECT_EQ(c.http.limits.connections_max, 64u);
  const HttpLimits defaults;
  EXPECT_EQ(c.http.limits.write_timeout, defaults.write_timeout);
  EXPECT_EQ(c.http.limits.requests_in_flight_max, defaults.requests_in_flight_max);
  const ServeConfig empty = Must(LoadServeConfig("", "serve.yaml", ""));
  EXPECT_FALSE(empty.listen.has_value());
  EXPECT_FALSE(empty.tokens_file.has_value());
  EXPECT_EQ(Must(LoadServeConfig("tokens: /abs/t.yaml\n", "s", "/x")).tokens_file, "/abs/t.yaml");
}

TEST(ServeConfigTest, BadFilesNameTheLineAndTheKey) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"listen: 127.0.0.1:1\nlisen: x\n", "serve.yaml:2:1"},
      {"limits:\n  body_bytes: 10\n", "body_bytes"},
      {"limits:\n  request_timeout: forever\n", "request_timeout"},
      {"limits:\n  connection: 5\n", "connection"},
      {"limits: 5\n", "expected a map"},
      {"handler_threads: 0\n", "handler_threads"},
      {"- a\n- b\n", "expected a map"},
      {"listen: [\n", "serve.yaml"},
  };
  for (const Case& c : cases) {
    auto r = LoadServeConfig(c.yaml, "serve.yaml", "");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_TRUE(HasSubstr(r.status().message(), c.expected)) << c.yaml;
  }
  EXPECT_EQ(LoadServeConfigFile("/nonexistent/serve.yaml").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cairn::serve
