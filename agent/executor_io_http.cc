// ExecutorAgentIo::PostJson: an agent's HTTP POST through the engine's `call: http`
// executor (engine/http), so that agents share its TLS setup, bounds and timeouts.
//
// The request is a ToolRequest for the executor with `output: "exchange"` (a cairn
// extension of engine/http/http_call.h, not reachable from definitions): every final
// status comes back as a result {statusCode, headers, body} rather than as a
// communication error, so that the agent sees the status, Retry-After and body of a 429
// or 5xx and decides itself whether to retry.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "agent/executor_io.h"

namespace cairn::agent {
namespace {

// How long past the request's own timeout to wait for the executor's answer. The executor
// always answers by its deadline; this only keeps a broken executor from hanging an agent.
constexpr std::chrono::milliseconds kAnswerGrace{5'000};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

Result<HttpReply> ToReply(const engine::ToolResponse& response, const std::string& url) {
  using Kind = engine::ToolResponse::Status;
  if (response.status == Kind::kTimedOut) {
    return Status::DeadlineExceeded("POST " + url + ": " + response.error.detail);
  }
  if (response.status == Kind::kFailed) {
    std::string message = response.error.title + ": " + response.error.detail;
    // A request the executor refuses (a bad header, a bad URL) is not worth retrying.
    if (response.error.type == engine::error_type::kConfiguration) {
      return Status::InvalidArgument(std::move(message));
    }
    return Status::Unavailable(std::move(message));
  }
  const Json& out = response.output;
  if (!out.is_object() || !out.contains("statusCode") || !out["statusCode"].is_number_integer() ||
      !out.contains("body") || !out["body"].is_string()) {
    return Status::Internal("POST " + url + ": the HTTP executor's exchange output is " +
                            DumpJson(out).substr(0, 200));
  }
  HttpReply reply;
  reply.status = out["statusCode"].get<int>();
  reply.body = out["body"].get<std::string>();
  if (out.contains("headers") && out["headers"].is_object()) {
    for (const auto& [name, value] : out["headers"].items()) {
      if (value.is_string()) reply.headers.emplace_back(name, value.get<std::string>());
    }
  }
  return reply;
}

}  // namespace

Result<HttpReply> ExecutorAgentIo::PostJson(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body, std::chrono::milliseconds timeout) {
  if (http_ == nullptr) {
    return Status::FailedPrecondition("POST " + url + ": no HTTP executor is configured");
  }
  if (timeout.count() <= 0) {
    return Status::DeadlineExceeded("POST " + url + ": no time left to send it");
  }
  Json header_map = Json::object();
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    has_content_type = has_content_type || EqualsIgnoreCase(name, "content-type");
    header_map[name] = value;  // a repeated name: the last value wins
  }
  // With a Content-Type the executor sends a string body as is (else as a JSON string).
  if (!has_content_type) header_map["Content-Type"] = "application/json";

  engine::ToolRequest request;
  request.tool = "http";
  request.arguments = {{"method", "post"},
                       {"endpoint", url},
                       {"headers", std::move(header_map)},
                       {"body", body},
                       {"output", "exchange"}};
  request.task_path = "agent";
  request.timeout = timeout;
  auto answer = std::make_shared<std::promise<engine::ToolResponse>>();
  std::future<engine::ToolResponse> answered = answer->get_future();
  http_->Call(std::move(request),
              [answer](engine::ToolResponse response) { answer->set_value(std::move(response)); });
  if (answered.wait_for(timeout + kAnswerGrace) != std::future_status::ready) {
    return Status::DeadlineExceeded("POST " + url + ": the HTTP executor did not answer within " +
                                    std::to_string((timeout + kAnswerGrace).count()) + " ms");
  }
  return ToReply(answered.get(), url);
}

}  // namespace cairn::agent
