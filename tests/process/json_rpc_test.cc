#include "engine/process/json_rpc.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/assertions.h"

namespace cairn::engine::process {
namespace {

using cairn::testing::IsError;

std::vector<std::string> Split(LineSplitter& splitter, std::string_view bytes, Status* status) {
  std::vector<std::string> lines;
  *status = splitter.Append(bytes, [&](std::string_view line) {
    lines.emplace_back(line);
    return true;
  });
  return lines;
}

TEST(LineSplitter, SplitsAcrossChunks) {
  LineSplitter splitter(100);
  Status status;
  EXPECT_TRUE(Split(splitter, "{\"a\":", &status).empty());
  EXPECT_EQ(Split(splitter, "1}\n{\"b\":2}\r\n{\"c\"", &status),
            (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  EXPECT_EQ(Split(splitter, ":3}\n\n", &status), (std::vector<std::string>{"{\"c\":3}", ""}));
  EXPECT_TRUE(status.ok());
}

TEST(LineSplitter, RefusesOverlongLines) {
  LineSplitter splitter(8);
  Status status;
  Split(splitter, "12345678\n", &status);
  EXPECT_TRUE(status.ok());
  Split(splitter, "12345", &status);
  EXPECT_TRUE(status.ok());
  Split(splitter, "6789", &status);  // incomplete, already too long
  EXPECT_TRUE(IsError(status, StatusCode::kResourceExhausted, {"longer than 8 bytes"}));
  LineSplitter complete(8);
  Split(complete, "123456789\nok\n", &status);  // complete and too long
  EXPECT_TRUE(IsError(status, StatusCode::kResourceExhausted));
}

TEST(LineSplitter, StopsWhenTold) {
  LineSplitter splitter(100);
  int seen = 0;
  Status status = splitter.Append("a\nb\nc\n", [&](std::string_view) { return ++seen < 2; });
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(seen, 2);
}

TEST(ParseRpcLine, TellsMessagesApart) {
  auto response = ParseRpcLine(R"({"jsonrpc":"2.0","id":3,"result":{"x":1}})", 1000);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ((*response)[0].kind, RpcMessage::Kind::kResponse);
  EXPECT_EQ((*response)[0].id, 3);
  EXPECT_EQ((*response)[0].result, (Json{{"x", 1}}));
  EXPECT_TRUE((*response)[0].error.is_null());

  auto error = ParseRpcLine(R"({"jsonrpc":"2.0","id":4,"error":{"code":-1,"message":"m"}})", 1000);
  ASSERT_TRUE(error.ok());
  EXPECT_EQ((*error)[0].error["message"], "m");

  auto request = ParseRpcLine(R"({"jsonrpc":"2.0","id":"s1","method":"ping"})", 1000);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ((*request)[0].kind, RpcMessage::Kind::kRequest);
  EXPECT_EQ((*request)[0].method, "ping");

  auto notification = ParseRpcLine(R"({"jsonrpc":"2.0","method":"notifications/x"})", 1000);
  ASSERT_TRUE(notification.ok());
  EXPECT_EQ((*notification)[0].kind, RpcMessage::Kind::kNotification);

  auto batch = ParseRpcLine(
      R"([{"jsonrpc":"2.0","id":1,"result":null},{"jsonrpc":"2.0","method":"n"}])", 1000);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->size(), 2u);
}

TEST(ParseRpcLine, RefusesWhatIsNotJsonRpc) {
  struct Case {
    const char* line;
    const char* expected;
  };
  for (const Case& c : std::vector<Case>{
           {"hello", "invalid JSON"},
           {"42", "not a JSON-RPC message"},
           {R"({"id":1,"result":1})", "jsonrpc"},
           {R"({"jsonrpc":"1.0","id":1,"result":1})", "jsonrpc"},
           {R"({"jsonrpc":"2.0","id":1})", "neither"},
           {R"({"jsonrpc":"2.0","result":1})", "neither"},
           {R"({"jsonrpc":"2.0","id":1,"result":1,"error":{}})", "neither"},
           {R"({"jsonrpc":"2.0","id":{},"result":1})", "id that is neither"},
           {R"({"jsonrpc":"2.0","method":3})", "method that is not a string"},
           {R"({"jsonrpc":"2.0","id":1,"error":"bad"})", "error that is not an object"},
           {"[]", "empty batch"},
       }) {
    EXPECT_TRUE(
        IsError(ParseRpcLine(c.line, 1000).status(), StatusCode::kInvalidArgument, {c.expected}))
        << c.line;
  }
  EXPECT_FALSE(ParseRpcLine(std::string(2000, ' ') + "{}", 1000).ok());
}

TEST(JsonRpc, BuildsMessagesAndDescribesErrors) {
  EXPECT_EQ(RpcRequest(1, "tools/list", nullptr),
            (Json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}));
  EXPECT_EQ(RpcNotification("n", {{"a", 1}})["params"], (Json{{"a", 1}}));
  EXPECT_EQ(RpcResult("x", Json::object())["id"], "x");
  EXPECT_EQ(RpcError(2, -32601, "no")["error"]["code"], -32601);

  Json error = {{"code", -32602}, {"message", "Unknown tool"}, {"data", {{"name", "x"}}}};
  EXPECT_EQ(RpcErrorText(error), R"(error -32602: Unknown tool (data: {"name":"x"}))");
  EXPECT_EQ(RpcErrorStatus(error), 400);
  EXPECT_EQ(RpcErrorStatus({{"code", -32601}}), 404);
  EXPECT_EQ(RpcErrorStatus({{"code", -32000}}), 500);
  EXPECT_EQ(RpcErrorStatus(Json::object()), 500);
}

}  // namespace
}  // namespace cairn::engine::process
