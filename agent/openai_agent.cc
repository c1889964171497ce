#include "agent/openai_agent.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/limits.h"

namespace cairn::agent {

struct OpenAiConfig {
  struct Prices {
    int64_t prompt_micros_per_million = 0;      // currency micros per million prompt tokens
    int64_t completion_micros_per_million = 0;  // ... per million completion tokens
  };

  std::string base_url;  // http(s)://..., without a trailing '/'
  std::string model;
  std::string api_key_env;                     // empty: no Authorization header
  std::map<std::string, std::string> headers;  // extra headers, as written
  std::optional<double> temperature;
  std::optional<uint32_t> max_completion_tokens;
  std::chrono::milliseconds request_timeout{30'000};
  uint32_t attempts = 3;  // tries of one model call, the first included
  std::chrono::milliseconds backoff{500};
  std::chrono::milliseconds max_backoff{8'000};
  std::optional<Prices> prices;  // nullopt: the cost is unknown
  std::string system_prompt;     // empty: the built-in one
};

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;
using std::chrono::milliseconds;

// Bounds of the agents file's keys.
constexpr size_t kHeadersMax = 64;
constexpr size_t kSystemPromptBytesMax = 64 << 10;
constexpr uint64_t kMaxCompletionTokensMax = 1'000'000;
constexpr int64_t kTemperatureMicrosMax = 2'000'000;    // OpenAI's range is [0, 2]
constexpr int64_t kPriceMicrosMax = 1'000'000'000'000;  // 1,000,000 per million tokens
constexpr uint64_t kBackoffMsMax = 600'000;
// How much of a response body an error detail or a malformed answer's detail quotes.
constexpr size_t kExcerptBytesMax = 512;
// A Retry-After beyond this is treated as this (it cannot fit in a decision anyway).
constexpr uint64_t kRetryAfterSecondsMax = 86'400;

constexpr std::string_view kBuiltInSystemPrompt =
    "You are the decision step of an automated workflow. The user message is a JSON object "
    "with the goal, the context and the options. Choose exactly one of the options, written "
    "exactly as listed, and answer with one JSON object and nothing else: "
    "{\"option\": \"<one of the options>\", \"rationale\": \"<why, in a few sentences>\", "
    "\"confidence\": <a number from 0 to 1>}. If tools are offered you may call them first "
    "to look facts up; they only read, they change nothing. You have at most max_steps "
    "model turns, this answer included: answer before they run out.";

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The first kExcerptBytesMax bytes of `text`, marked when cut.
std::string Excerpt(std::string_view text) {
  if (text.size() <= kExcerptBytesMax) return std::string(text);
  return std::string(text.substr(0, kExcerptBytesMax)) + "... (" + std::to_string(text.size()) +
         " bytes)";
}

// ---------------------------------------------------------------------------------------
// The agents file.

bool IsEnvironmentName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

bool IsHeaderName(std::string_view name) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || kExtra.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

void ParseEndpoint(const YamlContext& ctx, const YAML::Node& node, OpenAiConfig& config) {
  if (yaml::Require(ctx, node, "agent", "base_url", "e.g. https://api.openai.com/v1")) {
    if (auto url = yaml::NonEmptyString(ctx, node["base_url"], "base_url")) {
      if (!StartsWith(*url, "http://") && !StartsWith(*url, "https://")) {
        ctx.Add(node["base_url"], "base_url: '" + *url + "' is not an http:// or https:// URL");
      } else {
        while (url->back() == '/') url->pop_back();
        config.base_url = std::move(*url);
      }
    }
  }
  if (yaml::Require(ctx, node, "agent", "model")) {
    if (auto model = yaml::NonEmptyString(ctx, node["model"], "model")) config.model = *model;
  }
}

// api_key_env and headers. Headers the HTTP client sets itself, and Authorization when
// the key comes from api_key_env, are refused here rather than at the first decision.
void ParseAuth(const YamlContext& ctx, const YAML::Node& node, OpenAiConfig& config) {
  if (node["api_key_env"]) {
    if (auto name = yaml::NonEmptyString(ctx, node["api_key_env"], "api_key_env")) {
      if (IsEnvironmentName(*name)) {
        config.api_key_env = *name;
      } else {
        ctx.Add(node["api_key_env"],
                "api_key_env: '" + *name + "' is not an environment variable name");
      }
    }
  }
  if (!node["headers"]) return;
  auto headers = yaml::StringMap(ctx, node["headers"], "headers", kHeadersMax);
  if (!headers) return;
  for (const auto& [name, value] : headers->items()) {
    const std::string lower = Lower(name);
    const std::string text = value.get<std::string>();
    if (!IsHeaderName(name)) {
      ctx.Add(node["headers"], "headers: '" + name + "' is not a valid header name");
    } else if (lower == "content-type" || lower == "content-length" || lower == "host" ||
               lower == "connection" || lower == "transfer-encoding") {
      ctx.Add(node["headers"], "headers." + name + ": is set by cairn and may not be given");
    } else if (lower == "authorization" && !config.api_key_env.empty()) {
      ctx.Add(node["headers"], "headers." + name + ": api_key_env already sends Authorization");
    } else if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      ctx.Add(node["headers"], "headers." + name + ": the value may not contain CR, LF or NUL");
    } else {
      config.headers[name] = text;
    }
  }
}

void ParseSampling(const YamlContext& ctx, const YAML::Node& node, OpenAiConfig& config) {
  if (node["temperature"]) {
    if (auto micros =
            yaml::Micros(ctx, node["temperature"], "temperature", kTemperatureMicrosMax)) {
      config.temperature = static_cast<double>(*micros) / 1e6;
    }
  }
  if (node["max_completion_tokens"]) {
    if (auto tokens = yaml::Unsigned(ctx, node["max_completion_tokens"], "max_completion_tokens", 1,
                                     kMaxCompletionTokensMax)) {
      config.max_completion_tokens = static_cast<uint32_t>(*tokens);
    }
  }
  if (node["system_prompt"]) {
    if (auto prompt = yaml::NonEmptyString(ctx, node["system_prompt"], "system_prompt")) {
      if (prompt->size() > kSystemPromptBytesMax) {
        ctx.Add(node["system_prompt"], "system_prompt: " + std::to_string(prompt->size()) +
                                           " bytes is more than the limit of " +
                                           std::to_string(kSystemPromptBytesMax));
      } else {
        config.system_prompt = std::move(*prompt);
      }
    }
  }
}

void ParseRetries(const YamlContext& ctx, const YAML::Node& node, OpenAiConfig& config) {
  if (node["request_timeout"]) {
    if (auto ms = yaml::DurationMs(ctx, node["request_timeout"], "request_timeout",
                                   limits::agent_timeout_ms_max)) {
      config.request_timeout = milliseconds(*ms);
    }
  }
  const YAML::Node retries = node["retries"];
  if (!retries) return;
  if (!retries.IsMap()) {
    ctx.Add(retries, "retries: expected a map {attempts, backoff, max_backoff}, found " +
                         DescribeYamlNode(retries));
    return;
  }
  yaml::RefuseUnknownKeys(ctx, retries, "retries", {"attempts", "backoff", "max_backoff"});
  if (retries["attempts"]) {
    if (auto attempts = yaml::Unsigned(ctx, retries["attempts"], "retries.attempts", 1,
                                       limits::agent_http_attempts_max)) {
      config.attempts = static_cast<uint32_t>(*attempts);
    }
  }
  if (retries["backoff"]) {
    if (auto ms = yaml::DurationMs(ctx, retries["backoff"], "retries.backoff", kBackoffMsMax)) {
      config.backoff = milliseconds(*ms);
    }
  }
  if (retries["max_backoff"]) {
    if (auto ms =
            yaml::DurationMs(ctx, retries["max_backoff"], "retries.max_backoff", kBackoffMsMax)) {
      config.max_backoff = milliseconds(*ms);
    }
  }
  if (config.max_backoff < config.backoff) {
    ctx.Add(retries, "retries: max_backoff (" + std::to_string(config.max_backoff.count()) +
                         " ms) is less than backoff (" + std::to_string(config.backoff.count()) +
                         " ms)");
  }
}

// Both prices or none: a cost half known is not known.
void ParsePrices(const YamlContext& ctx, const YAML::Node& node, OpenAiConfig& config) {
  const YAML::Node prices = node["prices"];
  if (!prices) return;
  if (!prices.IsMap()) {
    ctx.Add(prices, "prices: expected a map {prompt_per_million, completion_per_million}, found " +
                        DescribeYamlNode(prices));
    return;
  }
  yaml::RefuseUnknownKeys(ctx, prices, "prices", {"prompt_per_million", "completion_per_million"});
  bool has_prompt = yaml::Require(ctx, prices, "prices", "prompt_per_million");
  bool has_completion = yaml::Require(ctx, prices, "prices", "completion_per_million");
  if (!has_prompt || !has_completion) return;
  auto prompt =
      yaml::Micros(ctx, prices["prompt_per_million"], "prices.prompt_per_million", kPriceMicrosMax);
  auto completion = yaml::Micros(ctx, prices["completion_per_million"],
                                 "prices.completion_per_million", kPriceMicrosMax);
  if (prompt && completion) config.prices = OpenAiConfig::Prices{*prompt, *completion};
}

// ---------------------------------------------------------------------------------------
// The request.

// Function names as OpenAI accepts them (^[a-zA-Z0-9_-]{1,64}$) for the offered tools,
// whose names may hold dots ("crm.get_account"). Names already valid are kept; others get
// '_' for each other character, and a suffix when that collides.
class FunctionNames {
 public:
  explicit FunctionNames(const std::vector<ToolOffer>& tools) {
    std::vector<const ToolOffer*> pending;
    for (const ToolOffer& tool : tools) {
      if (IsValid(tool.name) && !by_function_.count(tool.name)) {
        by_function_[tool.name] = tool.name;
        function_of_[tool.name] = tool.name;
      } else {
        pending.push_back(&tool);
      }
    }
    for (const ToolOffer* tool : pending) {
      std::string base = Sanitize(tool->name);
      std::string name = base;
      for (int n = 2; by_function_.count(name); ++n) {
        std::string suffix = "_" + std::to_string(n);
        name = base.substr(0, 64 - suffix.size()) + suffix;
      }
      by_function_[name] = tool->name;
      function_of_[tool->name] = name;
    }
  }

  const std::string& FunctionOf(const std::string& tool) const { return function_of_.at(tool); }
  // The tool a function name stands for; an unknown name is passed on as is, for the
  // session to refuse (or accept, when the model used a tool's own name).
  std::string ToolOf(const std::string& function) const {
    auto it = by_function_.find(function);
    return it == by_function_.end() ? function : it->second;
  }

 private:
  static bool IsValid(std::string_view name) {
    return !name.empty() && name.size() <= 64 &&
           std::all_of(name.begin(), name.end(),
                       [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
  }
  static std::string Sanitize(std::string_view name) {
    std::string out;
    for (unsigned char c : name.substr(0, 60)) {
      out += (std::isalnum(c) || c == '_' || c == '-') ? static_cast<char>(c) : '_';
    }
    return out.empty() ? "tool" : out;
  }

  std::map<std::string, std::string> by_function_;  // function name -> tool name
  std::map<std::string, std::string> function_of_;  // tool name -> function name
};

Json ResponseFormat(const DecisionRequest& request) {
  Json schema = {{"type", "object"},
                 {"properties",
                  {{"option", {{"type", "string"}, {"enum", request.options}}},
                   {"rationale", {{"type", "string"}}},
                   {"confidence", {{"type", "number"}}}}},
                 // OpenAI's strict mode wants every property required; the answer's confidence is
                 // still optional when read back, for servers that do not enforce the schema.
                 {"required", {"option", "rationale", "confidence"}},
                 {"additionalProperties", false}};
  return {{"type", "json_schema"},
          {"json_schema", {{"name", "decision"}, {"strict", true}, {"schema", std::move(schema)}}}};
}

Json FunctionTools(const DecisionRequest& request, const FunctionNames& names) {
  Json tools = Json::array();
  for (const ToolOffer& tool : request.tools) {
    Json parameters = tool.input_schema;
    if (!parameters.is_object() || parameters.empty()) {
      parameters = {{"type", "object"}, {"properties", Json::object()}};
    }
    Json function = {{"name", names.FunctionOf(tool.name)}, {"parameters", std::move(parameters)}};
    if (!tool.description.empty()) function["description"] = tool.description;
    tools.push_back({{"type", "function"}, {"function", std::move(function)}});
  }
  return tools;
}

Json FirstMessages(const DecisionRequest& request, const OpenAiConfig& config) {
  Json user = {{"workflow", request.workflow}, {"task", request.task_path},
               {"goal", request.goal},         {"options", request.options},
               {"context", request.context},   {"max_steps", request.limits.max_steps}};
  std::string system =
      config.system_prompt.empty() ? std::string(kBuiltInSystemPrompt) : config.system_prompt;
  return Json::array({{{"role", "system"}, {"content", std::move(system)}},
                      {{"role", "user"}, {"content", DumpJson(user)}}});
}

// Header values shown in transcripts: credentials never are.
Json RedactedHeaders(const Headers& headers) {
  Json out = Json::object();
  for (const auto& [name, value] : headers) {
    const std::string lower = Lower(name);
    bool secret = false;
    for (std::string_view word : {"auth", "key", "token", "secret", "password", "cookie"}) {
      secret = secret || lower.find(word) != std::string::npos;
    }
    out[name] = secret ? "<redacted>" : value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The response.

// Cost of `tokens` at `micros_per_million`, rounded up: a budget never undercounts.
int64_t CostMicros(uint64_t tokens, int64_t micros_per_million) {
  unsigned __int128 product =
      static_cast<unsigned __int128>(tokens) * static_cast<uint64_t>(micros_per_million);
  unsigned __int128 cost = (product + 999'999) / 1'000'000;
  constexpr auto kMax = static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max());
  return static_cast<int64_t>(std::min(cost, kMax));
}

uint64_t TokenCount(const Json& usage, const char* field) {
  auto it = usage.find(field);
  if (it == usage.end() || !it->is_number_unsigned()) return 0;
  return it->get<uint64_t>();
}

// The usage of one model call; the cost is unknown without prices or without `usage`.
Usage UsageOf(const Json& response, const OpenAiConfig& config) {
  Usage usage;
  usage.calls = 1;
  auto it = response.find("usage");
  if (it == response.end() || !it->is_object()) {
    usage.cost_known = false;
    return usage;
  }
  usage.prompt_tokens = TokenCount(*it, "prompt_tokens");
  usage.completion_tokens = TokenCount(*it, "completion_tokens");
  if (!config.prices) {
    usage.cost_known = false;
    return usage;
  }
  usage.cost_micros = SaturatingAdd(
      CostMicros(usage.prompt_tokens, config.prices->prompt_micros_per_million),
      CostMicros(usage.completion_tokens, config.prices->completion_micros_per_million));
  return usage;
}

// A tool result as the model sees it, cut to limits::agent_tool_result_bytes_max (the
// conversation is resent at every step: it must stay bounded).
std::string BoundedToolResult(std::string text) {
  if (text.size() <= limits::agent_tool_result_bytes_max) return text;
  const size_t total = text.size();
  size_t cut = limits::agent_tool_result_bytes_max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "... (truncated: " + std::to_string(total) + " bytes)";
}

// The text of an assistant message's content: a string, or text parts joined.
std::optional<std::string> ContentText(const Json& message) {
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) return std::nullopt;
  std::string text;
  for (const Json& part : *it) {
    if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
        part["text"].is_string()) {
      text += part["text"].get<std::string>();
    }
  }
  return text;
}

// The answer without surrounding blanks or a Markdown code fence (```json ... ```), which
// models without schema support sometimes add around the JSON.
std::string_view StripFence(std::string_view text) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  if (!StartsWith(text, "```") || text.size() < 6 || text.substr(text.size() - 3) != "```") {
    return text;
  }
  size_t newline = text.find('\n');
  if (newline == std::string_view::npos) return text;
  return trim(text.substr(newline + 1, text.size() - 3 - (newline + 1)));
}

// {option, rationale, confidence?} from the answer's text; the error says what is wrong.
Result<Proposal> ParseProposal(std::string_view content) {
  CAIRN_ASSIGN_OR_RETURN(
      Json answer, ParseJson(StripFence(content), "the answer", limits::agent_answer_bytes_max));
  if (!answer.is_object()) {
    return Status::InvalidArgument("the answer is a JSON " + std::string(JsonTypeName(answer)) +
                                   ", not an object {option, rationale, confidence}");
  }
  auto field = [&](const char* name) -> const Json* {
    auto it = answer.find(name);
    return it == answer.end() ? nullptr : &*it;
  };
  const Json* option = field("option");
  const Json* rationale = field("rationale");
  const Json* confidence = field("confidence");
  auto wrong = [](const char* name, const Json* value, const char* expected) {
    return Status::InvalidArgument(
        "the answer's " + std::string(name) + " is " +
        (value == nullptr ? std::string("missing") : "a " + std::string(JsonTypeName(*value))) +
        " (expected " + expected + ")");
  };
  if (option == nullptr || !option->is_string()) return wrong("option", option, "a string");
  if (rationale == nullptr || !rationale->is_string()) {
    return wrong("rationale", rationale, "a string");
  }
  if (confidence != nullptr && !confidence->is_null() && !confidence->is_number()) {
    return wrong("confidence", confidence, "a number");
  }
  Proposal proposal;
  proposal.option = option->get<std::string>();
  proposal.rationale = rationale->get<std::string>();
  if (confidence != nullptr && confidence->is_number()) {
    proposal.confidence = confidence->get<double>();
  }
  return proposal;
}

// The seconds of a Retry-After header (the HTTP-date form is not used: backoff applies).
std::optional<milliseconds> RetryAfter(const HttpReply& reply) {
  for (const auto& [name, value] : reply.headers) {
    if (Lower(name) != "retry-after") continue;
    if (value.empty() || value.size() > 12 ||
        !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
      return std::nullopt;
    }
    uint64_t seconds = std::min<uint64_t>(std::stoull(value), kRetryAfterSecondsMax);
    return milliseconds(seconds * 1000);
  }
  return std::nullopt;
}

// One entry of an assistant message's tool_calls.
struct ToolCall {
  std::string id;
  std::string name;  // the function name the model used
  Json arguments;    // an object
};

// Reads tool_calls[index]: {id?, function: {name, arguments: JSON text ("" for {}) or an
// object}}. kInvalidArgument saying what is wrong (a malformed answer).
Result<ToolCall> ParseToolCall(const Json& call, size_t index) {
  std::string where = "tool call " + std::to_string(index + 1);
  auto function = call.is_object() ? call.find("function") : call.end();
  if (function == call.end() || !function->is_object() || !function->contains("name") ||
      !(*function)["name"].is_string()) {
    return Status::InvalidArgument(where + ": no function name: " + Excerpt(DumpJson(call)));
  }
  ToolCall parsed;
  parsed.name = (*function)["name"].get<std::string>();
  where += " (" + parsed.name + ")";
  parsed.arguments = function->contains("arguments") ? (*function)["arguments"] : Json::object();
  if (parsed.arguments.is_string()) {
    const std::string text = parsed.arguments.get<std::string>();
    Result<Json> arguments = text.empty()
                                 ? Result<Json>(Json::object())
                                 : ParseJson(text, "arguments", limits::agent_answer_bytes_max);
    if (!arguments.ok()) return arguments.status().WithContext(where);
    parsed.arguments = std::move(arguments).value();
  }
  if (!parsed.arguments.is_object()) {
    return Status::InvalidArgument(where + ": the arguments are a " +
                                   std::string(JsonTypeName(parsed.arguments)) + ", not an object");
  }
  auto id = call.find("id");
  parsed.id = id != call.end() && id->is_string() ? id->get<std::string>()
                                                  : "call_" + std::to_string(index + 1);
  return parsed;
}

bool IsRetryableStatus(int status) { return status == 408 || status == 429 || status >= 500; }

// ---------------------------------------------------------------------------------------
// The agent.

class OpenAiAgent final : public Agent {
 public:
  using Getenv = std::function<std::optional<std::string>(const std::string&)>;

  OpenAiAgent(std::string name, std::shared_ptr<const OpenAiConfig> config, Getenv getenv)
      : name_(std::move(name)),
        config_(std::move(config)),
        getenv_(std::move(getenv)),
        url_(config_->base_url + "/chat/completions") {}

  const std::string& name() const override { return name_; }
  std::string_view kind() const override { return "openai"; }
  std::optional<Proposal> Propose(Session& session) override;

 private:
  // One model turn's answer: the assistant message and why the model stopped.
  struct Turn {
    Json message;
    std::string finish_reason;
  };
  // What one HTTP attempt came to.
  struct Attempt {
    enum class Kind : uint8_t { kAnswered, kRetry, kFatal, kStopped /* session failed */ };
    Kind kind = Kind::kFatal;
    std::string problem;  // kRetry / kFatal: what was seen, for details
    std::optional<milliseconds> retry_after;
  };

  std::optional<Headers> RequestHeaders(Session& session) const;
  Json RequestBody(const DecisionRequest& request, const FunctionNames& names) const;
  std::optional<Turn> CallModel(Session& session, const Headers& headers, const Json& body);
  Attempt Send(Session& session, const Headers& headers, const std::string& body,
               milliseconds timeout, uint32_t attempt, HttpReply& reply);
  bool WaitToRetry(Session& session, uint32_t attempt, const Attempt& failed);
  std::optional<Turn> ReadCompletion(Session& session, const HttpReply& reply);
  bool RunToolCalls(Session& session, const Json& message, const FunctionNames& names,
                    Json& messages);
  std::optional<Proposal> ReadAnswer(Session& session, const Turn& turn);

  const std::string name_;
  const std::shared_ptr<const OpenAiConfig> config_;
  const Getenv getenv_;
  const std::string url_;
};

std::optional<Proposal> OpenAiAgent::Propose(Session& session) {
  std::optional<Headers> headers = RequestHeaders(session);
  if (!headers) return std::nullopt;
  const DecisionRequest& request = session.request();
  const FunctionNames names(request.tools);
  const Json body = RequestBody(request, names);
  Json messages = FirstMessages(request, *config_);
  while (true) {
    if (!session.BeginStep()) return std::nullopt;
    Json step_body = body;
    step_body["messages"] = messages;
    std::optional<Turn> turn = CallModel(session, *headers, step_body);
    if (!turn) return std::nullopt;
    auto calls = turn->message.find("tool_calls");
    if (calls != turn->message.end() && !calls->is_null() && !calls->empty()) {
      if (!RunToolCalls(session, turn->message, names, messages)) return std::nullopt;
      continue;
    }
    return ReadAnswer(session, *turn);
  }
}

std::optional<Headers> OpenAiAgent::RequestHeaders(Session& session) const {
  Headers headers = {{"Content-Type", "application/json"}};
  if (!config_->api_key_env.empty()) {
    std::optional<std::string> key = getenv_(config_->api_key_env);
    if (!key || key->empty()) {
      session.Fail(Reason::kAgentError, "API key variable " + config_->api_key_env + " is not set");
      return std::nullopt;
    }
    headers.emplace_back("Authorization", "Bearer " + *key);
  }
  for (const auto& [name, value] : config_->headers) headers.emplace_back(name, value);
  return headers;
}

Json OpenAiAgent::RequestBody(const DecisionRequest& request, const FunctionNames& names) const {
  Json body = {{"model", config_->model}, {"response_format", ResponseFormat(request)}};
  if (config_->temperature) body["temperature"] = *config_->temperature;
  if (config_->max_completion_tokens) {
    body["max_completion_tokens"] = *config_->max_completion_tokens;
  }
  if (!request.tools.empty()) body["tools"] = FunctionTools(request, names);
  return body;
}

// One model call, retried on 429, 5xx (and 408) and transport failures.
std::optional<OpenAiAgent::Turn> OpenAiAgent::CallModel(Session& session, const Headers& headers,
                                                        const Json& body) {
  const std::string text = DumpJson(body);
  for (uint32_t attempt = 1;; ++attempt) {
    const milliseconds remaining = session.Remaining();
    if (remaining.count() <= 0) {
      session.Fail(Reason::kTimeout, "no time left for a model call (step " +
                                         std::to_string(session.steps_used()) + ")");
      return std::nullopt;
    }
    session.RecordRequest(
        attempt == 1
            ? Json{{"step", session.steps_used()},
                   {"attempt", attempt},
                   {"method", "POST"},
                   {"url", url_},
                   {"headers", RedactedHeaders(headers)},
                   {"body", body}}
            : Json{{"step", session.steps_used()}, {"attempt", attempt}, {"body_as_attempt", 1}});
    HttpReply reply;
    const Attempt sent =
        Send(session, headers, text, std::min(config_->request_timeout, remaining), attempt, reply);
    switch (sent.kind) {
      case Attempt::Kind::kAnswered:
        return ReadCompletion(session, reply);
      case Attempt::Kind::kFatal:
        session.Fail(Reason::kAgentError, "POST " + url_ + ": " + sent.problem);
        return std::nullopt;
      case Attempt::Kind::kStopped:
        return std::nullopt;
      case Attempt::Kind::kRetry:
        break;
    }
    if (attempt >= config_->attempts) {
      session.Fail(Reason::kAgentUnavailable,
                   "POST " + url_ + ": no answer after " + std::to_string(attempt) +
                       (attempt == 1 ? " attempt" : " attempts") + "; the last: " + sent.problem);
      return std::nullopt;
    }
    if (!WaitToRetry(session, attempt, sent)) return std::nullopt;
  }
}

// Posts once and records what came back.
OpenAiAgent::Attempt OpenAiAgent::Send(Session& session, const Headers& headers,
                                       const std::string& body, milliseconds timeout,
                                       uint32_t attempt, HttpReply& reply) {
  Result<HttpReply> posted = session.io().PostJson(url_, headers, body, timeout);
  Json entry = {{"step", session.steps_used()}, {"attempt", attempt}};
  if (!posted.ok()) {
    entry["error"] = posted.status().ToString();
    session.RecordResponse(std::move(entry));
    const Status& status = posted.status();
    // A request bounded by the decision's time that timed out has used that time up (the
    // clock may still show a millisecond left: the timeout was rounded down).
    const bool decision_bound = timeout < config_->request_timeout;
    if (status.code() == StatusCode::kDeadlineExceeded &&
        (decision_bound || session.Remaining().count() <= 0)) {
      session.Fail(Reason::kTimeout, "POST " + url_ + ": no answer within the decision's " +
                                         std::to_string(session.request().limits.timeout.count()) +
                                         " ms");
      return {Attempt::Kind::kStopped, status.ToString(), std::nullopt};
    }
    if (status.code() == StatusCode::kUnavailable ||
        status.code() == StatusCode::kDeadlineExceeded) {
      return {Attempt::Kind::kRetry, status.ToString(), std::nullopt};
    }
    return {Attempt::Kind::kFatal, status.ToString(), std::nullopt};
  }
  reply = std::move(posted).value();
  entry["status"] = reply.status;
  entry["body"] = reply.body;
  session.RecordResponse(std::move(entry));
  if (reply.status >= 200 && reply.status <= 299) return {Attempt::Kind::kAnswered, "", {}};
  std::string problem = "HTTP " + std::to_string(reply.status) + ": " + Excerpt(reply.body);
  if (IsRetryableStatus(reply.status)) {
    return {Attempt::Kind::kRetry, std::move(problem), RetryAfter(reply)};
  }
  return {Attempt::Kind::kFatal, std::move(problem), std::nullopt};
}

// Sleeps before attempt `attempt + 1`: backoff * 2^(attempt-1), at most max_backoff, and at
// least the server's Retry-After. False (the decision failed with kTimeout) when that wait
// would end past the decision's deadline.
bool OpenAiAgent::WaitToRetry(Session& session, uint32_t attempt, const Attempt& failed) {
  milliseconds wait = config_->backoff;
  for (uint32_t i = 1; i < attempt && wait < config_->max_backoff; ++i) wait *= 2;
  wait = std::min(wait, config_->max_backoff);
  if (failed.retry_after) wait = std::max(wait, *failed.retry_after);
  const milliseconds remaining = session.Remaining();
  if (wait >= remaining) {
    session.Fail(Reason::kTimeout, "POST " + url_ + ": retrying after " + failed.problem +
                                       " needs a wait of " + std::to_string(wait.count()) +
                                       " ms, but only " +
                                       std::to_string(std::max<int64_t>(remaining.count(), 0)) +
                                       " ms are left of the decision's timeout");
    return false;
  }
  std::this_thread::sleep_for(wait);
  return true;
}

// A 2xx response: its usage counted, its model noted, its first choice's message.
std::optional<OpenAiAgent::Turn> OpenAiAgent::ReadCompletion(Session& session,
                                                             const HttpReply& reply) {
  Result<Json> parsed = ParseJson(reply.body, "the response", reply.body.size() + 1);
  if (!parsed.ok() || !parsed->is_object()) {
    session.Fail(Reason::kAgentError,
                 "POST " + url_ + " returned " + std::to_string(reply.status) +
                     " with a body that is not a JSON object: " + Excerpt(reply.body));
    return std::nullopt;
  }
  const Json& response = *parsed;
  const bool within_budget = session.AddUsage(UsageOf(response, *config_));
  auto model = response.find("model");
  session.SetModel(model != response.end() && model->is_string() && !model->empty()
                       ? model->get<std::string>()
                       : config_->model);
  if (!within_budget) return std::nullopt;
  auto choices = response.find("choices");
  if (choices == response.end() || !choices->is_array() || choices->empty() ||
      !(*choices)[0].is_object() || !(*choices)[0].contains("message") ||
      !(*choices)[0]["message"].is_object()) {
    session.Fail(Reason::kAgentError, "POST " + url_ +
                                          ": the response is not a chat completion (no "
                                          "choices[0].message): " +
                                          Excerpt(reply.body));
    return std::nullopt;
  }
  const Json& choice = (*choices)[0];
  Turn turn;
  turn.message = choice["message"];
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
    turn.finish_reason = choice["finish_reason"].get<std::string>();
  }
  return turn;
}

// Makes the tool calls of `message` and appends it and their results to `messages`.
// False after session.Fail (a malformed call, too many calls, a tool not offered).
bool OpenAiAgent::RunToolCalls(Session& session, const Json& message, const FunctionNames& names,
                               Json& messages) {
  const Json& calls = message["tool_calls"];
  if (!calls.is_array()) {
    session.Fail(Reason::kMalformedAnswer,
                 "tool_calls is a " + std::string(JsonTypeName(calls)) + ", not an array");
    return false;
  }
  if (calls.size() > limits::agent_tool_calls_per_step_max) {
    session.Fail(Reason::kMalformedAnswer,
                 "the model asked for " + std::to_string(calls.size()) +
                     " tool calls in one step; at most " +
                     std::to_string(limits::agent_tool_calls_per_step_max) + " are allowed");
    return false;
  }
  Json assistant = {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", Json::array()}};
  Json results = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    Result<ToolCall> call = ParseToolCall(calls[i], i);
    if (!call.ok()) {
      session.Fail(Reason::kMalformedAnswer, call.status().message());
      return false;
    }
    Result<Json> result = session.CallTool(names.ToolOf(call->name), call->arguments);
    if (session.failed()) return false;
    assistant["tool_calls"].push_back(
        {{"id", call->id},
         {"type", "function"},
         {"function", {{"name", call->name}, {"arguments", DumpJson(call->arguments)}}}});
    results.push_back(
        {{"role", "tool"},
         {"tool_call_id", call->id},
         {"content", BoundedToolResult(DumpJson(
                         result.ok() ? *result : Json{{"error", result.status().message()}}))}});
  }
  if (auto text = ContentText(message)) assistant["content"] = *text;
  messages.push_back(std::move(assistant));
  for (Json& result : results) messages.push_back(std::move(result));
  return true;
}

std::optional<Proposal> OpenAiAgent::ReadAnswer(Session& session, const Turn& turn) {
  auto refusal = turn.message.find("refusal");
  if (refusal != turn.message.end() && refusal->is_string() && !refusal->empty()) {
    session.Fail(Reason::kMalformedAnswer,
                 "the model refused: " + Excerpt(refusal->get<std::string>()));
    return std::nullopt;
  }
  std::optional<std::string> content = ContentText(turn.message);
  if (!content) {
    session.Fail(Reason::kMalformedAnswer,
                 "the answer has no content (finish_reason: " +
                     (turn.finish_reason.empty() ? std::string("none") : turn.finish_reason) + ")");
    return std::nullopt;
  }
  if (content->size() > limits::agent_answer_bytes_max) {
    session.Fail(Reason::kAnswerTooLarge, "the answer is " + std::to_string(content->size()) +
                                              " bytes; the limit is " +
                                              std::to_string(limits::agent_answer_bytes_max));
    return std::nullopt;
  }
  Result<Proposal> proposal = ParseProposal(*content);
  if (!proposal.ok()) {
    std::string detail = proposal.status().message();
    if (turn.finish_reason == "length") {
      detail += " (the answer was cut off at max_completion_tokens)";
    }
    session.Fail(Reason::kMalformedAnswer, detail + "; the answer: " + Excerpt(*content));
    return std::nullopt;
  }
  return std::move(proposal).value();
}

}  // namespace

std::optional<std::shared_ptr<const OpenAiConfig>> ParseOpenAiConfig(const YamlContext& ctx,
                                                                     const YAML::Node& node) {
  if (!node.IsMap()) {
    ctx.Add(node, "expected a map of the openai agent's keys, found " + DescribeYamlNode(node));
    return std::nullopt;
  }
  const size_t problems_before = ctx.problems.count();
  yaml::RefuseUnknownKeys(
      ctx, node, "agent",
      {"kind", "base_url", "model", "api_key_env", "headers", "temperature",
       "max_completion_tokens", "request_timeout", "retries", "prices", "system_prompt"});
  auto config = std::make_shared<OpenAiConfig>();
  ParseEndpoint(ctx, node, *config);
  ParseAuth(ctx, node, *config);
  ParseSampling(ctx, node, *config);
  ParseRetries(ctx, node, *config);
  ParsePrices(ctx, node, *config);
  if (ctx.problems.count() != problems_before) return std::nullopt;
  return std::shared_ptr<const OpenAiConfig>(std::move(config));
}

std::shared_ptr<Agent> MakeOpenAiAgent(
    std::string name, std::shared_ptr<const OpenAiConfig> config,
    std::function<std::optional<std::string>(const std::string&)> getenv) {
  CAIRN_ASSERT(config != nullptr, "MakeOpenAiAgent without a configuration");
  if (!getenv) {
    getenv = [](const std::string& variable) -> std::optional<std::string> {
      const char* value = std::getenv(variable.c_str());  // NOLINT(concurrency-mt-unsafe)
      if (value == nullptr) return std::nullopt;
      return std::string(value);
    };
  }
  return std::make_shared<OpenAiAgent>(std::move(name), std::move(config), std::move(getenv));
}

}  // namespace cairn::agent
