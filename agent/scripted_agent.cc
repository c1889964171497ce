// The `scripted` agent: parsing its rules and answering by them.
#include "agent/scripted_agent.h"

#include <utility>

#include "base/limits.h"

namespace cairn::agent {
namespace {

constexpr size_t kRulesMax = 1000;
constexpr size_t kConditionsPerRuleMax = 64;

class ScriptedAgent final : public Agent {
 public:
  ScriptedAgent(std::string name, ScriptedConfig config)
      : name_(std::move(name)), config_(std::move(config)) {}

  const std::string& name() const override { return name_; }
  std::string_view kind() const override { return "scripted"; }

  std::optional<Proposal> Propose(Session& session) override {
    session.SetModel("scripted");
    if (!session.BeginStep()) return std::nullopt;
    Usage usage;
    usage.calls = 1;
    if (!session.AddUsage(usage)) return std::nullopt;
    Json document = Document(session.request());
    for (const ScriptedToolCall& call : config_.call_tools) {
      Result<Json> result = session.CallTool(call.tool, call.arguments);
      if (session.failed()) return std::nullopt;
      document["tool_results"].push_back(
          result.ok() ? Json{{"tool", call.tool}, {"result", *result}}
                      : Json{{"tool", call.tool}, {"error", result.status().ToString()}});
    }
    session.RecordRequest(Json{{"scripted", {{"document", document}}}});
    const ScriptedAnswer* answer = Choose(document);
    if (answer == nullptr) {
      session.Fail(Reason::kMalformedAnswer, "scripted agent '" + name_ +
                                                 "': no rule matched and there is no "
                                                 "'otherwise'");
      return std::nullopt;
    }
    Json recorded = {{"option", answer->option}, {"rationale", answer->rationale}};
    if (answer->confidence) recorded["confidence"] = *answer->confidence;
    session.RecordResponse(Json{{"scripted", {{"answer", std::move(recorded)}}}});
    return Proposal{answer->option, answer->rationale, answer->confidence};
  }

 private:
  static Json Document(const DecisionRequest& request) {
    return Json{{"goal", request.goal},           {"options", request.options},
                {"context", request.context},     {"run_id", request.run_id},
                {"task_path", request.task_path}, {"workflow", request.workflow},
                {"tool_results", Json::array()}};
  }

  const ScriptedAnswer* Choose(const Json& document) const {
    for (const ScriptedRule& rule : config_.rules) {
      if (AllHold(rule.when, document)) return &rule.answer;
    }
    return config_.otherwise ? &*config_.otherwise : nullptr;
  }

  const std::string name_;
  const ScriptedConfig config_;
};

// {option, rationale, confidence?} (the known keys are `keys`), checked like an agent's answer
// would be by Decide (so that a bad file is refused at load rather than at every decision).
std::optional<ScriptedAnswer> ParseAnswer(const YamlContext& ctx, const YAML::Node& node,
                                          std::string_view what,
                                          std::initializer_list<std::string_view> keys) {
  if (!node.IsMap()) {
    ctx.Add(node, std::string(what) + ": expected a map {option, rationale, confidence?}, found " +
                      DescribeYamlNode(node));
    return std::nullopt;
  }
  yaml::RefuseUnknownKeys(ctx, node, what, keys);
  ScriptedAnswer answer;
  const bool has_option = yaml::Require(ctx, node, what, "option");
  const bool has_rationale = yaml::Require(ctx, node, what, "rationale");
  bool ok = has_option && has_rationale;
  if (node["option"]) {
    auto option = yaml::NonEmptyString(ctx, node["option"], "option");
    if (option && option->size() > limits::agent_option_bytes_max) {
      ctx.Add(node["option"],
              "option: more than " + std::to_string(limits::agent_option_bytes_max) + " bytes");
      option.reset();
    }
    ok = ok && option.has_value();
    if (option) answer.option = std::move(*option);
  }
  if (node["rationale"]) {
    auto rationale = yaml::String(ctx, node["rationale"], "rationale");
    if (rationale && rationale->size() > limits::agent_rationale_bytes_max) {
      ctx.Add(node["rationale"], "rationale: more than " +
                                     std::to_string(limits::agent_rationale_bytes_max) + " bytes");
      rationale.reset();
    }
    ok = ok && rationale.has_value();
    if (rationale) answer.rationale = std::move(*rationale);
  }
  if (node["confidence"]) {
    auto confidence = yaml::ToJson(ctx, node["confidence"], "confidence", 1);
    if (confidence && (!confidence->is_number() || confidence->get<double>() < 0.0 ||
                       confidence->get<double>() > 1.0)) {
      ctx.Add(node["confidence"], "confidence: expected a number from 0 to 1, found " +
                                      DescribeYamlNode(node["confidence"]));
      confidence.reset();
    }
    ok = ok && confidence.has_value();
    if (confidence) answer.confidence = confidence->get<double>();
  }
  return ok ? std::optional<ScriptedAnswer>(std::move(answer)) : std::nullopt;
}

std::optional<ScriptedRule> ParseRule(const YamlContext& ctx, const YAML::Node& node) {
  if (!node.IsMap()) {
    ctx.Add(node, "rules: expected a rule {when, option, rationale, confidence?}, found " +
                      DescribeYamlNode(node));
    return std::nullopt;
  }
  auto answer = ParseAnswer(ctx, node, "rule", {"when", "option", "rationale", "confidence"});
  if (!yaml::Require(ctx, node, "rule", "when", "a list of conditions; [] always holds")) {
    return std::nullopt;
  }
  auto when = yaml::Conditions(ctx, node["when"], "when", kConditionsPerRuleMax);
  if (!answer || !when) return std::nullopt;
  return ScriptedRule{std::move(*when), std::move(*answer)};
}

std::optional<ScriptedToolCall> ParseToolCall(const YamlContext& ctx, const YAML::Node& node) {
  if (!node.IsMap()) {
    ctx.Add(node, "call_tools: expected {tool, arguments?}, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  yaml::RefuseUnknownKeys(ctx, node, "call_tools", {"tool", "arguments"});
  if (!yaml::Require(ctx, node, "call_tools", "tool")) return std::nullopt;
  auto tool = yaml::NonEmptyString(ctx, node["tool"], "tool");
  std::optional<Json> arguments = Json::object();
  if (node["arguments"]) {
    arguments = yaml::ToJson(ctx, node["arguments"], "arguments");
    if (arguments && !arguments->is_object()) {
      ctx.Add(node["arguments"],
              "arguments: expected a map, found " + DescribeYamlNode(node["arguments"]));
      arguments.reset();
    }
  }
  if (!tool || !arguments) return std::nullopt;
  return ScriptedToolCall{std::move(*tool), std::move(*arguments)};
}

template <typename T, typename Parse>
bool ParseList(const YamlContext& ctx, const YAML::Node& node, std::string_view field,
               size_t max_entries, std::vector<T>& out, Parse parse) {
  if (!node.IsSequence()) {
    ctx.Add(node, std::string(field) + ": expected a list, found " + DescribeYamlNode(node));
    return false;
  }
  if (node.size() > max_entries) {
    ctx.Add(node, std::string(field) + ": " + std::to_string(node.size()) +
                      " entries is more than the limit of " + std::to_string(max_entries));
    return false;
  }
  bool ok = true;
  for (const YAML::Node& item : node) {
    auto parsed = parse(ctx, item);
    if (parsed) {
      out.push_back(std::move(*parsed));
    } else {
      ok = false;
    }
  }
  return ok;
}

}  // namespace

std::optional<ScriptedConfig> ParseScriptedConfig(const YamlContext& ctx, const YAML::Node& node) {
  const size_t problems_before = ctx.problems.count();
  yaml::RefuseUnknownKeys(ctx, node, "agent", {"kind", "call_tools", "rules", "otherwise"});
  ScriptedConfig config;
  if (node["call_tools"]) {
    ParseList(ctx, node["call_tools"], "call_tools", limits::agent_tool_calls_per_step_max,
              config.call_tools, ParseToolCall);
  }
  if (node["rules"]) ParseList(ctx, node["rules"], "rules", kRulesMax, config.rules, ParseRule);
  if (node["otherwise"]) {
    config.otherwise =
        ParseAnswer(ctx, node["otherwise"], "otherwise", {"option", "rationale", "confidence"});
  }
  if (!node["rules"] && !node["otherwise"]) {
    ctx.Add(node, "a scripted agent needs 'rules', 'otherwise' or both");
  }
  if (ctx.problems.count() != problems_before) return std::nullopt;
  return config;
}

std::shared_ptr<Agent> MakeScriptedAgent(std::string name, ScriptedConfig config) {
  return std::make_shared<ScriptedAgent>(std::move(name), std::move(config));
}

}  // namespace cairn::agent
