// The `command` agent: runs a program through AgentIo::RunCommand and reads its answer.
#include "agent/command_agent.h"

#include <cmath>
#include <utility>
#include <variant>

#include "base/limits.h"

namespace cairn::agent {
namespace {

constexpr size_t kArgumentsMax = 256;
constexpr size_t kEnvironmentMax = 256;
constexpr size_t kModelBytesMax = 256;
constexpr size_t kStderrDetailBytesMax = 512;
// A cost a program reports, in decimal units: at most a million per decision.
constexpr double kCostMax = 1e6;

struct Answer {
  Proposal proposal;
  Usage usage;
  std::optional<std::string> model;
};

// A failed parse: the reason and the detail.
using Refusal = std::pair<Reason, std::string>;

std::string StderrTail(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  if (text.empty()) return "(stderr was empty)";
  if (text.size() <= kStderrDetailBytesMax) return std::string(text);
  size_t cut = text.size() - kStderrDetailBytesMax;
  while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
  return "..." + std::string(text.substr(cut));
}

// A non-negative integer field of `usage`, or a refusal.
std::optional<Refusal> ReadCount(const Json& usage, const char* field, uint64_t& out) {
  if (!usage.contains(field) || usage[field].is_null()) return std::nullopt;
  const Json& value = usage[field];
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return std::nullopt;
  }
  return Refusal{Reason::kMalformedAnswer,
                 std::string("usage.") + field + ": expected a non-negative integer, found " +
                     std::string(JsonTypeName(value)) + " " + QuoteForMessage(DumpJson(value), 40)};
}

std::optional<Refusal> ReadUsage(const Json& answer, Usage& usage) {
  usage.calls = 1;
  usage.cost_known = false;
  if (!answer.contains("usage") || answer["usage"].is_null()) return std::nullopt;
  const Json& reported = answer["usage"];
  if (!reported.is_object()) {
    return Refusal{Reason::kMalformedAnswer,
                   "usage: expected an object, found " + std::string(JsonTypeName(reported))};
  }
  if (auto bad = ReadCount(reported, "prompt_tokens", usage.prompt_tokens)) return bad;
  if (auto bad = ReadCount(reported, "completion_tokens", usage.completion_tokens)) return bad;
  if (!reported.contains("cost") || reported["cost"].is_null()) return std::nullopt;
  const Json& cost = reported["cost"];
  if (!cost.is_number() || !std::isfinite(cost.get<double>()) || cost.get<double>() < 0 ||
      cost.get<double>() > kCostMax) {
    return Refusal{Reason::kMalformedAnswer,
                   "usage.cost: expected a number from 0 to 1000000, found " +
                       QuoteForMessage(DumpJson(cost), 40)};
  }
  usage.cost_micros = std::llround(cost.get<double>() * 1e6);
  usage.cost_known = true;
  return std::nullopt;
}

std::optional<Refusal> ReadString(const Json& answer, const char* field, bool required,
                                  std::optional<std::string>& out) {
  if (!answer.contains(field) || (!required && answer[field].is_null())) {
    if (!required) return std::nullopt;
    return Refusal{Reason::kMalformedAnswer, std::string("the answer has no '") + field + "'"};
  }
  if (!answer[field].is_string()) {
    return Refusal{Reason::kMalformedAnswer, std::string(field) + ": expected a string, found " +
                                                 std::string(JsonTypeName(answer[field]))};
  }
  out = answer[field].get<std::string>();
  return std::nullopt;
}

// The program's stdout as an answer, or why it is not one.
std::variant<Answer, Refusal> ParseAnswer(std::string_view stdout_text) {
  if (stdout_text.size() > limits::agent_answer_bytes_max) {
    return Refusal{Reason::kAnswerTooLarge, "the answer is " + std::to_string(stdout_text.size()) +
                                                " bytes, more than the limit of " +
                                                std::to_string(limits::agent_answer_bytes_max)};
  }
  if (stdout_text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Refusal{Reason::kMalformedAnswer, "the program printed no answer on stdout"};
  }
  Result<Json> parsed = ParseJson(stdout_text, "the answer", limits::agent_answer_bytes_max);
  if (!parsed.ok()) return Refusal{Reason::kMalformedAnswer, parsed.status().message()};
  const Json& json = *parsed;
  if (!json.is_object()) {
    return Refusal{Reason::kMalformedAnswer,
                   "the answer is " + std::string(JsonTypeName(json)) + ", not an object"};
  }
  Answer answer;
  std::optional<std::string> option, rationale;
  if (auto bad = ReadString(json, "option", true, option)) return *bad;
  if (auto bad = ReadString(json, "rationale", true, rationale)) return *bad;
  if (auto bad = ReadString(json, "model", false, answer.model)) return *bad;
  if (answer.model && answer.model->size() > kModelBytesMax) {
    return Refusal{Reason::kMalformedAnswer,
                   "model: more than " + std::to_string(kModelBytesMax) + " bytes"};
  }
  answer.proposal.option = std::move(*option);
  answer.proposal.rationale = std::move(*rationale);
  if (json.contains("confidence") && !json["confidence"].is_null()) {
    if (!json["confidence"].is_number()) {
      return Refusal{Reason::kMalformedAnswer, "confidence: expected a number, found " +
                                                   std::string(JsonTypeName(json["confidence"]))};
    }
    answer.proposal.confidence = json["confidence"].get<double>();
  }
  if (auto bad = ReadUsage(json, answer.usage)) return *bad;
  return answer;
}

Reason ReasonForIoError(StatusCode code) {
  switch (code) {
    case StatusCode::kDeadlineExceeded:
      return Reason::kTimeout;
    case StatusCode::kResourceExhausted:  // the executor's own output cap
      return Reason::kAnswerTooLarge;
    case StatusCode::kUnavailable:
      return Reason::kAgentUnavailable;
    default:
      return Reason::kAgentError;
  }
}

class CommandAgent final : public Agent {
 public:
  CommandAgent(std::string name, CommandAgentConfig config)
      : name_(std::move(name)), config_(std::move(config)) {}

  const std::string& name() const override { return name_; }
  std::string_view kind() const override { return "command"; }

  std::optional<Proposal> Propose(Session& session) override {
    session.SetModel("command");
    if (!session.BeginStep()) return std::nullopt;
    std::chrono::milliseconds timeout = session.Remaining();
    if (config_.timeout && *config_.timeout < timeout) timeout = *config_.timeout;
    const Json input = CommandAgentInput(session.request(), timeout);
    session.RecordRequest(Json{{"command",
                                {{"command", config_.command.command},
                                 {"arguments", config_.command.arguments},
                                 {"stdin", input}}}});
    Result<CommandReply> reply = session.io().RunCommand(config_.command, DumpJson(input), timeout);
    Usage spent;  // what a run that gave no usable answer cost: one call, cost unknown
    spent.calls = 1;
    spent.cost_known = false;
    if (!reply.ok()) {
      Fail(session, ReasonForIoError(reply.status().code()), RunError(reply.status(), timeout));
      session.RecordResponse(Json{{"command_error",
                                   {{"code", StatusCodeName(reply.status().code())},
                                    {"message", reply.status().message()}}}});
      session.AddUsage(spent);
      return std::nullopt;
    }
    Record(session, *reply);
    if (reply->exit_code != 0) {
      Fail(session, Reason::kAgentError,
           "exited with code " + std::to_string(reply->exit_code) + ": " +
               StderrTail(reply->stderr_tail));
      session.AddUsage(spent);
      return std::nullopt;
    }
    std::variant<Answer, Refusal> parsed = ParseAnswer(reply->stdout_text);
    if (auto* refusal = std::get_if<Refusal>(&parsed)) {
      Fail(session, refusal->first, std::move(refusal->second));
      session.AddUsage(spent);
      return std::nullopt;
    }
    Answer& answer = std::get<Answer>(parsed);
    if (answer.model) session.SetModel(std::move(*answer.model));
    if (!session.AddUsage(answer.usage)) return std::nullopt;
    return std::move(answer.proposal);
  }

 private:
  void Fail(Session& session, Reason reason, std::string detail) const {
    session.Fail(reason, "command agent '" + name_ + "': " + detail);
  }

  static std::string RunError(const Status& status, std::chrono::milliseconds timeout) {
    if (status.code() == StatusCode::kDeadlineExceeded) {
      return "out of time after " + std::to_string(timeout.count()) + " ms: " + status.message();
    }
    return "the program could not run: " + status.message();
  }

  // The reply in the response transcript; stdout cut at the answer bound.
  static void Record(Session& session, const CommandReply& reply) {
    Json entry = {{"exit_code", reply.exit_code}, {"stderr_tail", StderrTail(reply.stderr_tail)}};
    if (reply.stdout_text.size() <= limits::agent_answer_bytes_max) {
      entry["stdout"] = reply.stdout_text;
    } else {
      entry["stdout"] = reply.stdout_text.substr(0, limits::agent_answer_bytes_max);
      entry["stdout_bytes"] = reply.stdout_text.size();
    }
    session.RecordResponse(Json{{"command", std::move(entry)}});
  }

  const std::string name_;
  const CommandAgentConfig config_;
};

}  // namespace

Json CommandAgentInput(const DecisionRequest& request, std::chrono::milliseconds timeout) {
  Json tools = Json::array();
  for (const ToolOffer& tool : request.tools) {
    tools.push_back({{"name", tool.name},
                     {"description", tool.description},
                     {"input_schema", tool.input_schema}});
  }
  return Json{
      {"goal", request.goal},
      {"options", request.options},
      {"context", request.context},
      {"tools", std::move(tools)},
      {"run_id", request.run_id},
      {"task_path", request.task_path},
      {"workflow", request.workflow},
      {"decision_key", request.decision_key},
      {"limits", {{"max_steps", request.limits.max_steps}, {"timeout_ms", timeout.count()}}}};
}

std::optional<CommandAgentConfig> ParseCommandConfig(const YamlContext& ctx,
                                                     const YAML::Node& node) {
  const size_t problems_before = ctx.problems.count();
  yaml::RefuseUnknownKeys(ctx, node, "agent",
                          {"kind", "command", "arguments", "environment", "timeout"});
  CommandAgentConfig config;
  if (yaml::Require(ctx, node, "agent", "command", "a shell command line")) {
    if (auto line = yaml::NonEmptyString(ctx, node["command"], "command")) {
      if (auto resolved = yaml::ResolveShellCommand(ctx, node["command"], *line, "command")) {
        config.command.command = std::move(*resolved);
      }
    }
  }
  if (node["arguments"]) {
    if (auto arguments = yaml::StringList(ctx, node["arguments"], "arguments", kArgumentsMax)) {
      config.command.arguments = std::move(*arguments);
    }
    // The arguments are $1, $2, ... of the shell line: a line that never says '$' would
    // drop them silently.
    if (!config.command.arguments.empty() && !config.command.command.empty() &&
        config.command.command.find('$') == std::string::npos) {
      ctx.Add(node["arguments"],
              "arguments: the command line does not use them (they are $1, $2, ... of the "
              "line: write e.g. 'command: ./agent.py \"$@\"')");
    }
  }
  if (node["environment"]) {
    if (auto environment =
            yaml::StringMap(ctx, node["environment"], "environment", kEnvironmentMax)) {
      for (const auto& [key, value] : environment->items()) {
        config.command.environment[key] = value.get<std::string>();
      }
    }
  }
  if (node["timeout"]) {
    if (auto ms = yaml::DurationMs(ctx, node["timeout"], "timeout", limits::agent_timeout_ms_max)) {
      config.timeout = std::chrono::milliseconds(*ms);
    }
  }
  if (ctx.problems.count() != problems_before) return std::nullopt;
  return config;
}

std::shared_ptr<Agent> MakeCommandAgent(std::string name, CommandAgentConfig config) {
  return std::make_shared<CommandAgent>(std::move(name), std::move(config));
}

}  // namespace cairn::agent
