// OpenAiStub: an OpenAI-compatible chat-completions server for the `openai` agent's tests,
// on the loopback StubServer (tests/http/http_stub.h): 127.0.0.1, a port the kernel picks,
// its own thread; nothing leaves the machine.
//
//   auto stub = Must(OpenAiStub::Start());
//   stub->Enqueue(OpenAiStub::Answer({{"option", "refund"}, {"rationale", "r"}}));
//   stub->Enqueue(StubResponse::Json(503, {{"error", "busy"}}).WithHeader("Retry-After", "1"));
//   ... an openai agent with base_url: stub->BaseUrl() ...
//   EXPECT_EQ(stub->Calls()[0].body["model"], "gpt-test");
//
// POST BASE_URL/chat/completions (path /v1/chat/completions) is answered by the next
// queued response; when the queue is empty, by the handler (SetHandler), else by 500
// {"error": "openai stub: no response queued"} so that a test that sends more than it
// expected fails loudly. Every such request is recorded with its parsed body and the
// time it arrived.
//
// Threading: thread-safe. Responses are chosen on the server's thread and must not block:
// use StubResponse::WithDelay or Hang. Lifecycle: Start, Enqueue/SetHandler, serve, Stop
// (or destroy).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "tests/http/http_stub.h"

namespace cairn::testing {

class OpenAiStub {
 public:
  struct Call {
    StubRequest request;
    Json body;  // the request body parsed; null when it is not JSON
    std::chrono::steady_clock::time_point arrived;
    size_t index = 0;  // 0 for the first call
  };
  using Handler = std::function<StubResponse(const Call&)>;

  static Result<std::unique_ptr<OpenAiStub>> Start();
  // Stops the server first: its handler uses the members.
  ~OpenAiStub() { server_->Stop(); }
  OpenAiStub(const OpenAiStub&) = delete;
  OpenAiStub& operator=(const OpenAiStub&) = delete;

  // "http://127.0.0.1:PORT/v1".
  std::string BaseUrl() const { return server_->BaseUrl() + "/v1"; }

  void Enqueue(StubResponse response);
  void SetHandler(Handler handler);

  std::vector<Call> Calls() const;
  size_t CallCount() const;
  void Stop() { server_->Stop(); }

  // A chat completion (200) whose first choice is `message`.
  static StubResponse Completion(Json message, Json usage = DefaultUsage(),
                                 std::string model = "stub-model-1",
                                 std::string finish_reason = "stop");
  // A completion whose content is `answer` as JSON text.
  static StubResponse Answer(const Json& answer, Json usage = DefaultUsage());
  // A completion whose content is `content` as is (for malformed answers).
  static StubResponse Content(std::string content, Json usage = DefaultUsage());
  // A completion asking for tool calls: each {name, arguments (JSON, sent as text)}.
  struct ToolCall {
    std::string name;
    Json arguments;
  };
  static StubResponse ToolCalls(const std::vector<ToolCall>& calls, Json usage = DefaultUsage());
  static Json DefaultUsage() { return {{"prompt_tokens", 100}, {"completion_tokens", 20}}; }

 private:
  explicit OpenAiStub(std::unique_ptr<StubServer> server) : server_(std::move(server)) {}
  StubResponse Serve(const StubRequest& request);

  std::unique_ptr<StubServer> server_;
  mutable std::mutex mu_;
  std::vector<StubResponse> queue_;  // front first
  size_t next_ = 0;                  // next queued response
  Handler handler_;
  std::vector<Call> calls_;
};

}  // namespace cairn::testing
