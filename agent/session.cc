// Session: the bounds of one decision, checked at every step, usage report and tool call.
#include <algorithm>

#include "agent/agent.h"
#include "base/limits.h"

namespace cairn::agent {
namespace {

std::string ToolNames(const std::vector<ToolOffer>& tools) {
  if (tools.empty()) return "none";
  std::string names;
  for (const ToolOffer& tool : tools) {
    if (!names.empty()) names += ", ";
    names += tool.name;
  }
  return names;
}

std::string MicrosText(int64_t micros) {
  std::string fraction = std::to_string(micros % 1'000'000);
  fraction = std::string(6 - fraction.size(), '0') + fraction;
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  return std::to_string(micros / 1'000'000) + (fraction.empty() ? "" : "." + fraction);
}

// Appends `entry` to `transcript` within the byte bound; see Session::RecordRequest.
void Append(Json& transcript, size_t& bytes, bool& truncated, Json entry) {
  if (truncated) return;
  const size_t size = DumpJson(entry).size();
  if (size >
      limits::agent_transcript_bytes_max - std::min(bytes, limits::agent_transcript_bytes_max)) {
    truncated = true;
    transcript.push_back(Json{{"truncated", true}});
    return;
  }
  bytes += size;
  transcript.push_back(std::move(entry));
}

}  // namespace

Session::Session(const DecisionRequest& request, AgentIo& io, const Clock& clock)
    : request_(request),
      io_(io),
      clock_(clock),
      deadline_ns_(
          clock.MonotonicNanos() +
          std::chrono::duration_cast<std::chrono::nanoseconds>(request.limits.timeout).count()) {}

std::chrono::milliseconds Session::Remaining() const {
  const int64_t left_ns = deadline_ns_ - clock_.MonotonicNanos();
  return std::chrono::milliseconds(left_ns / 1'000'000);
}

bool Session::BeginStep() {
  if (failed()) return false;
  if (Remaining().count() <= 0) {
    Fail(Reason::kTimeout, "out of time before step " + std::to_string(steps_ + 1) + " (timeout " +
                               std::to_string(request_.limits.timeout.count()) + " ms)");
    return false;
  }
  if (steps_ >= request_.limits.max_steps) {
    Fail(Reason::kMaxStepsExceeded,
         "needed more than max_steps (" + std::to_string(request_.limits.max_steps) + ") steps");
    return false;
  }
  ++steps_;
  tool_calls_in_step_ = 0;
  return true;
}

bool Session::AddUsage(const Usage& usage) {
  usage_ += usage;
  const DecisionLimits& limits = request_.limits;
  if (limits.max_tokens > 0 && usage_.tokens() > limits.max_tokens) {
    Fail(Reason::kTokenBudgetExceeded, "used " + std::to_string(usage_.tokens()) +
                                           " tokens, more than the budget of " +
                                           std::to_string(limits.max_tokens));
  }
  if (limits.max_cost_micros > 0 && !usage_.cost_known) {
    Fail(Reason::kCostBudgetExceeded, "cost unknown under a cost cap of " +
                                          MicrosText(limits.max_cost_micros) +
                                          " (an unknown cost is never counted as zero)");
  }
  if (limits.max_cost_micros > 0 && usage_.cost_micros > limits.max_cost_micros) {
    Fail(Reason::kCostBudgetExceeded, "cost " + MicrosText(usage_.cost_micros) +
                                          ", more than the budget of " +
                                          MicrosText(limits.max_cost_micros));
  }
  return !failed();
}

Result<Json> Session::CallTool(const std::string& name, const Json& arguments) {
  if (failed()) {
    return Status::FailedPrecondition("the decision has already ended: " + failure_->second);
  }
  const bool offered = std::any_of(request_.tools.begin(), request_.tools.end(),
                                   [&](const ToolOffer& tool) { return tool.name == name; });
  RecordRequest(Json{{"tool_call", {{"name", name}, {"arguments", arguments}}}});
  if (!offered) {
    const std::string detail = "tool " + QuoteForMessage(name) +
                               " was not offered (offered: " + ToolNames(request_.tools) + ")";
    Fail(Reason::kToolNotAllowed, detail);
    return Status::PermissionDenied(detail);
  }
  const std::chrono::milliseconds remaining = Remaining();
  if (remaining.count() <= 0) {
    Fail(Reason::kTimeout, "out of time before calling tool '" + name + "'");
    return Status::DeadlineExceeded("out of time before calling tool '" + name + "'");
  }
  if (tool_calls_in_step_ >= limits::agent_tool_calls_per_step_max) {
    Status refused = Status::ResourceExhausted(
        "more than " + std::to_string(limits::agent_tool_calls_per_step_max) +
        " tool calls in one step");
    RecordResponse(Json{{"tool_error",
                         {{"name", name},
                          {"code", StatusCodeName(refused.code())},
                          {"message", refused.message()}}}});
    return refused;
  }
  ++tool_calls_in_step_;
  Result<Json> result = io_.CallTool(name, arguments, remaining);
  if (result.ok()) {
    RecordResponse(Json{{"tool_result", {{"name", name}, {"result", *result}}}});
  } else {
    RecordResponse(Json{{"tool_error",
                         {{"name", name},
                          {"code", StatusCodeName(result.status().code())},
                          {"message", result.status().message()}}}});
  }
  return result;
}

void Session::RecordRequest(Json entry) {
  Append(requests_, request_bytes_, requests_truncated_, std::move(entry));
}

void Session::RecordResponse(Json entry) {
  Append(responses_, response_bytes_, responses_truncated_, std::move(entry));
}

void Session::Fail(Reason reason, std::string detail) {
  CAIRN_ASSERT(reason != Reason::kDecided, "Session::Fail with kDecided");
  if (failure_) return;
  failure_.emplace(reason, std::move(detail));
}

void Session::Restore(uint32_t steps, const Usage& usage) {
  steps_ += steps;
  usage_ += usage;
}

}  // namespace cairn::agent
