#include "tests/agent/openai_stub.h"

#include <utility>

namespace cairn::testing {

Result<std::unique_ptr<OpenAiStub>> OpenAiStub::Start() {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<StubServer> server, StubServer::Start());
  std::unique_ptr<OpenAiStub> stub(new OpenAiStub(std::move(server)));
  OpenAiStub* self = stub.get();
  stub->server_->Route("POST", "/v1/chat/completions",
                       [self](const StubRequest& request) { return self->Serve(request); });
  return stub;
}

void OpenAiStub::Enqueue(StubResponse response) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(response));
}

void OpenAiStub::SetHandler(Handler handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

std::vector<OpenAiStub::Call> OpenAiStub::Calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

size_t OpenAiStub::CallCount() const {
  std::lock_guard lock(mu_);
  return calls_.size();
}

StubResponse OpenAiStub::Serve(const StubRequest& request) {
  Call call;
  call.request = request;
  Result<Json> body = ParseJson(request.body, "request body");
  call.body = body.ok() ? std::move(body).value() : Json();
  call.arrived = std::chrono::steady_clock::now();
  Handler handler;
  {
    std::lock_guard lock(mu_);
    call.index = calls_.size();
    calls_.push_back(call);
    if (next_ < queue_.size()) return queue_[next_++];
    handler = handler_;
  }
  if (handler) return handler(call);
  return StubResponse::Json(500, {{"error", "openai stub: no response queued"}});
}

StubResponse OpenAiStub::Completion(Json message, Json usage, std::string model,
                                    std::string finish_reason) {
  Json body = {{"id", "chatcmpl-stub"},
               {"object", "chat.completion"},
               {"created", 1'700'000'000},
               {"model", std::move(model)},
               {"choices", Json::array({{{"index", 0},
                                         {"message", std::move(message)},
                                         {"finish_reason", std::move(finish_reason)}}})}};
  if (!usage.is_null()) body["usage"] = std::move(usage);
  return StubResponse::Json(200, body);
}

StubResponse OpenAiStub::Answer(const Json& answer, Json usage) {
  return Content(DumpJson(answer), std::move(usage));
}

StubResponse OpenAiStub::Content(std::string content, Json usage) {
  return Completion({{"role", "assistant"}, {"content", std::move(content)}}, std::move(usage));
}

StubResponse OpenAiStub::ToolCalls(const std::vector<ToolCall>& calls, Json usage) {
  Json tool_calls = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    tool_calls.push_back(
        {{"id", "call_" + std::to_string(i + 1)},
         {"type", "function"},
         {"function", {{"name", calls[i].name}, {"arguments", DumpJson(calls[i].arguments)}}}});
  }
  return Completion({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tool_calls}},
                    std::move(usage), "stub-model-1", "tool_calls");
}

}  // namespace cairn::testing
