// Reason codes, usage arithmetic, the task output, request validation and Decide: the
// fail-closed runtime around every agent.
#include "agent/agent.h"

#include <array>
#include <cmath>
#include <exception>
#include <limits>
#include <set>

#include "base/limits.h"

namespace cairn::agent {
namespace {

constexpr std::array<std::string_view, 12> kReasonCodes = {
    "decided",           "option_not_allowed",    "malformed_answer",
    "answer_too_large",  "tool_not_allowed",      "max_steps_exceeded",
    "timeout",           "token_budget_exceeded", "cost_budget_exceeded",
    "agent_unavailable", "agent_error",           "unknown_agent",
};

Status CheckOptions(const std::vector<std::string>& options) {
  if (options.empty()) return Status::InvalidArgument("options: the allowlist is empty");
  if (options.size() > limits::agent_options_max) {
    return Status::InvalidArgument("options: " + std::to_string(options.size()) +
                                   " options is more than the limit of " +
                                   std::to_string(limits::agent_options_max));
  }
  std::set<std::string_view> seen;
  for (size_t i = 0; i < options.size(); ++i) {
    const std::string& option = options[i];
    const std::string at = "options[" + std::to_string(i) + "]";
    if (option.empty()) return Status::InvalidArgument(at + ": an option must not be empty");
    if (option.size() > limits::agent_option_bytes_max) {
      return Status::InvalidArgument(
          at + ": " + QuoteForMessage(option) + " is " + std::to_string(option.size()) +
          " bytes, more than the limit of " + std::to_string(limits::agent_option_bytes_max));
    }
    if (!seen.insert(option).second) {
      return Status::InvalidArgument(at + ": " + QuoteForMessage(option) + " appears twice");
    }
  }
  return Status::Ok();
}

Status CheckTools(const std::vector<ToolOffer>& tools) {
  if (tools.size() > limits::agent_tools_max) {
    return Status::InvalidArgument("tools: " + std::to_string(tools.size()) +
                                   " tools is more than the limit of " +
                                   std::to_string(limits::agent_tools_max));
  }
  std::set<std::string_view> seen;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string at = "tools[" + std::to_string(i) + "]";
    if (tools[i].name.empty()) return Status::InvalidArgument(at + ": a tool needs a name");
    if (!seen.insert(tools[i].name).second) {
      return Status::InvalidArgument(at + ": '" + tools[i].name + "' appears twice");
    }
  }
  return Status::Ok();
}

Status CheckLimits(const DecisionLimits& limits) {
  if (limits.max_steps < 1 || limits.max_steps > limits::agent_steps_max) {
    return Status::InvalidArgument("max_steps: " + std::to_string(limits.max_steps) +
                                   " is out of range (expected 1 to " +
                                   std::to_string(limits::agent_steps_max) + ")");
  }
  const int64_t timeout_ms = limits.timeout.count();
  if (timeout_ms <= 0 || static_cast<uint64_t>(timeout_ms) > limits::agent_timeout_ms_max) {
    return Status::InvalidArgument("timeout: " + std::to_string(timeout_ms) +
                                   " ms is out of range (expected 1 to " +
                                   std::to_string(limits::agent_timeout_ms_max) + " ms)");
  }
  if (limits.max_cost_micros < 0) {
    return Status::InvalidArgument("max_cost: must not be negative");
  }
  return Status::Ok();
}

// The proposal against the request: the first rule it breaks, as (reason, detail).
std::optional<std::pair<Reason, std::string>> CheckProposal(const Proposal& proposal,
                                                            const DecisionRequest& request) {
  bool allowed = false;
  for (const std::string& option : request.options) allowed = allowed || option == proposal.option;
  if (!allowed) {
    return std::pair{Reason::kOptionNotAllowed,
                     "option " + QuoteForMessage(proposal.option) + " is not one of the " +
                         std::to_string(request.options.size()) + " allowed options"};
  }
  if (proposal.rationale.size() > limits::agent_rationale_bytes_max) {
    return std::pair{Reason::kAnswerTooLarge,
                     "the rationale is " + std::to_string(proposal.rationale.size()) +
                         " bytes, more than the limit of " +
                         std::to_string(limits::agent_rationale_bytes_max)};
  }
  if (proposal.confidence) {
    const double confidence = *proposal.confidence;
    if (std::isnan(confidence) || confidence < 0.0 || confidence > 1.0) {
      const std::string shown = std::isnan(confidence)   ? "NaN"
                                : std::isinf(confidence) ? (confidence > 0 ? "inf" : "-inf")
                                                         : Json(confidence).dump();
      return std::pair{Reason::kMalformedAnswer, "confidence " + shown + " is not within [0, 1]"};
    }
  }
  return std::nullopt;
}

uint64_t ElapsedMs(const Clock& clock, int64_t start_ns) {
  const int64_t elapsed = clock.MonotonicNanos() - start_ns;
  return elapsed <= 0 ? 0 : static_cast<uint64_t>(elapsed / 1'000'000);
}

// Runs the agent; whatever it throws becomes a kAgentError failure of the session.
std::optional<Proposal> ProposeCatching(Agent& agent, Session& session) {
  try {
    return agent.Propose(session);
  } catch (const std::exception& e) {
    session.Fail(Reason::kAgentError,
                 "the agent failed with an exception: " + QuoteForMessage(e.what(), 512));
  } catch (...) {
    session.Fail(Reason::kAgentError, "the agent failed with an unknown exception");
  }
  return std::nullopt;
}

}  // namespace

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > std::numeric_limits<int64_t>::max() - b) {
    return std::numeric_limits<int64_t>::max();
  }
  if (b < 0 && a < std::numeric_limits<int64_t>::min() - b) {
    return std::numeric_limits<int64_t>::min();
  }
  return a + b;
}

std::string_view ReasonCode(Reason reason) {
  const auto index = static_cast<size_t>(reason);
  CAIRN_ASSERT(index < kReasonCodes.size(), "unknown agent reason");
  return kReasonCodes[index];
}

std::optional<Reason> ReasonFromCode(std::string_view code) {
  for (size_t i = 0; i < kReasonCodes.size(); ++i) {
    if (kReasonCodes[i] == code) return static_cast<Reason>(i);
  }
  return std::nullopt;
}

Usage& Usage::operator+=(const Usage& other) {
  prompt_tokens = SaturatingAdd(prompt_tokens, other.prompt_tokens);
  completion_tokens = SaturatingAdd(completion_tokens, other.completion_tokens);
  cost_micros = SaturatingAdd(cost_micros, other.cost_micros);
  cost_known = cost_known && other.cost_known;
  calls = calls > std::numeric_limits<uint32_t>::max() - other.calls
              ? std::numeric_limits<uint32_t>::max()
              : calls + other.calls;
  return *this;
}

Json DecisionOutcome::ToTaskOutput() const {
  Json usage_json = {
      {"prompt_tokens", usage.prompt_tokens},
      {"completion_tokens", usage.completion_tokens},
      {"cost", usage.cost_known ? Json(static_cast<double>(usage.cost_micros) / 1e6) : Json()},
      {"calls", usage.calls},
  };
  Json output = {
      {"option", option},    {"rationale", rationale}, {"steps_used", steps_used},
      {"usage", usage_json}, {"model", model},         {"agent", agent},
  };
  if (confidence) output["confidence"] = *confidence;
  return output;
}

std::string QuoteForMessage(std::string_view text, size_t bytes_max) {
  if (text.size() <= bytes_max) return "'" + std::string(text) + "'";
  size_t cut = bytes_max;
  // Do not cut a UTF-8 sequence: back up over continuation bytes.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return "'" + std::string(text.substr(0, cut)) + "...' (" + std::to_string(text.size()) +
         " bytes)";
}

Status ValidateRequest(const DecisionRequest& request) {
  CAIRN_RETURN_IF_ERROR(CheckOptions(request.options));
  if (request.goal.size() > limits::agent_goal_bytes_max) {
    return Status::InvalidArgument("goal: " + std::to_string(request.goal.size()) +
                                   " bytes is more than the limit of " +
                                   std::to_string(limits::agent_goal_bytes_max));
  }
  const size_t context_bytes = DumpJson(request.context).size();
  if (context_bytes > limits::agent_context_bytes_max) {
    return Status::InvalidArgument("context: " + std::to_string(context_bytes) +
                                   " bytes of JSON is more than the limit of " +
                                   std::to_string(limits::agent_context_bytes_max));
  }
  CAIRN_RETURN_IF_ERROR(CheckTools(request.tools));
  return CheckLimits(request.limits);
}

DecisionOutcome Decide(Agent& agent, const DecisionRequest& request, AgentIo& io,
                       const Clock& clock) {
  const int64_t start_ns = clock.MonotonicNanos();
  DecisionOutcome outcome;
  outcome.agent = agent.name();
  if (Status valid = ValidateRequest(request); !valid.ok()) {
    outcome.reason = Reason::kAgentError;
    outcome.detail = "invalid decision request: " + valid.message();
    outcome.duration_ms = ElapsedMs(clock, start_ns);
    return outcome;
  }

  Session session(request, io, clock);
  std::optional<Proposal> proposal = ProposeCatching(agent, session);
  // Fail-closed, in this order: the session's own failure; then time (an answer that
  // came too late is never looked at); then the answer itself.
  if (!session.failed() && session.Remaining().count() <= 0) {
    session.Fail(Reason::kTimeout, "the decision took longer than its timeout of " +
                                       std::to_string(request.limits.timeout.count()) + " ms");
  }
  if (!session.failed() && !proposal) {
    session.Fail(Reason::kMalformedAnswer, "the agent gave no answer");
  }
  if (!session.failed()) {
    if (auto broken = CheckProposal(*proposal, request)) {
      session.Fail(broken->first, std::move(broken->second));
    }
  }

  if (auto failure = session.failure()) {
    outcome.reason = failure->first;
    outcome.detail = std::move(failure->second);
  } else {
    outcome.reason = Reason::kDecided;
    outcome.option = std::move(proposal->option);
    outcome.rationale = std::move(proposal->rationale);
    outcome.confidence = proposal->confidence;
  }
  outcome.model = session.model();
  outcome.steps_used = session.steps_used();
  outcome.usage = session.usage();
  outcome.request_transcript = session.TakeRequestTranscript();
  outcome.response_transcript = session.TakeResponseTranscript();
  outcome.duration_ms = ElapsedMs(clock, start_ns);
  return outcome;
}

}  // namespace cairn::agent
