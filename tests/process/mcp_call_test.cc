#include "engine/process/mcp_call.h"

#include <gtest/gtest.h>

#include "tests/support/assertions.h"

namespace cairn::engine::process {
namespace {

using cairn::testing::HasSubstr;
using cairn::testing::Must;

const Json kClient = {{"name", "cairn"}, {"version", "0.1.0"}};

Json With(Json extra = Json::object()) {
  Json with = {{"method", "tools/call"},
               {"parameters", {{"name", "send"}, {"arguments", {{"to", "x"}}}}},
               {"transport",
                {{"stdio",
                  {{"command", "npx"},
                   {"arguments", {"server", "--stdio"}},
                   {"environment", {{"TOKEN", "t"}}}}}}}};
  with.merge_patch(extra);
  return with;
}

TEST(McpCall, ParsesTheWithObject) {
  McpRequest request = Must(ParseMcpRequest(With(), kClient));
  EXPECT_EQ(request.method, "tools/call");
  EXPECT_EQ(request.params["name"], "send");
  EXPECT_EQ(request.server.command, "npx");
  EXPECT_EQ(request.server.arguments, (std::vector<std::string>{"server", "--stdio"}));
  EXPECT_EQ(request.server.environment.at("TOKEN"), "t");
  EXPECT_EQ(request.server.protocol_version, "2025-06-18");
  EXPECT_EQ(request.server.client_info, kClient);
  EXPECT_EQ(request.server.name, "'npx server --stdio'");
  EXPECT_EQ(DescribeRequest(request), "tools/call 'send'");
}

TEST(McpCall, OneServerPerTransportVersionAndClient) {
  std::string key = Must(ParseMcpRequest(With(), kClient)).server.key;
  // Another method or parameters: the same server.
  EXPECT_EQ(
      Must(ParseMcpRequest(With({{"method", "tools/list"}, {"parameters", nullptr}}), kClient))
          .server.key,
      key);
  for (const Json& change : {Json{{"protocolVersion", "2025-03-26"}},
                             Json{{"client", {{"name", "other"}, {"version", "1"}}}},
                             Json{{"transport", {{"stdio", {{"environment", {{"TOKEN", "u"}}}}}}}},
                             Json{{"transport", {{"stdio", {{"arguments", {"server"}}}}}}}}) {
    EXPECT_NE(Must(ParseMcpRequest(With(change), kClient)).server.key, key) << change.dump();
  }
}

TEST(McpCall, IdempotencyKeyGoesInMetaForToolsCallOnly) {
  McpRequest request =
      Must(ParseMcpRequest(With({{"parameters", {{"_meta", {{"progressToken", "p"}}}}}}), kClient));
  Json params = WireParams(request, "k1");
  EXPECT_EQ(params["_meta"], (Json{{"io.cairn/idempotency-key", "k1"}, {"progressToken", "p"}}));
  EXPECT_EQ(params["name"], "send");
  // No parameters at all: still a params object with _meta.
  McpRequest bare = Must(ParseMcpRequest(With({{"parameters", nullptr}}), kClient));
  EXPECT_EQ(WireParams(bare, "k2"), (Json{{"_meta", {{"io.cairn/idempotency-key", "k2"}}}}));
  McpRequest list =
      Must(ParseMcpRequest(With({{"method", "tools/list"}, {"parameters", nullptr}}), kClient));
  EXPECT_TRUE(WireParams(list, "k3").is_null());
}

TEST(McpCall, InitializeParams) {
  McpRequest request = Must(ParseMcpRequest(With(), kClient));
  EXPECT_EQ(InitializeParams(request.server), (Json{{"protocolVersion", "2025-06-18"},
                                                    {"capabilities", Json::object()},
                                                    {"clientInfo", kClient}}));
}

TEST(McpCall, Results) {
  McpRequest request = Must(ParseMcpRequest(With(), kClient));
  RpcMessage ok;
  ok.kind = RpcMessage::Kind::kResponse;
  ok.result = {{"content", Json::array()}, {"isError", false}};
  ToolResponse success = McpResult(request, ok);
  EXPECT_EQ(success.status, ToolResponse::Status::kOk);
  EXPECT_EQ(success.output, ok.result);

  RpcMessage tool_error = ok;
  tool_error.result = {{"isError", true},
                       {"content",
                        {{{"type", "text"}, {"text", "first"}},
                         {{"type", "image"}, {"data", "..."}},
                         {{"type", "text"}, {"text", "second"}}}}};
  ToolResponse failed = McpResult(request, tool_error);
  EXPECT_EQ(failed.status, ToolResponse::Status::kFailed);
  EXPECT_EQ(failed.error.type, error_type::kRuntime);
  EXPECT_TRUE(HasSubstr(failed.error.detail, "tools/call 'send': first\nsecond"));

  // isError that is not a boolean true is not an error; for other methods never.
  RpcMessage odd = ok;
  odd.result = {{"isError", "yes"}};
  EXPECT_EQ(McpResult(request, odd).status, ToolResponse::Status::kOk);

  RpcMessage rpc_error = ok;
  rpc_error.result = nullptr;
  rpc_error.error = {{"code", -32602}, {"message", "bad params"}};
  ToolResponse rpc = McpResult(request, rpc_error);
  EXPECT_EQ(rpc.error.status, 400);
  EXPECT_TRUE(
      HasSubstr(rpc.error.detail, "answered tools/call 'send' with error -32602: bad params"));
}

}  // namespace
}  // namespace cairn::engine::process
