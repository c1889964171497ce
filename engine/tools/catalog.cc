#include "engine/tools/catalog.h"

#include <algorithm>
#include <cctype>

namespace cairn::engine {
namespace {

bool ValidToolName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
  });
}

std::string UpperAscii(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

}  // namespace

ToolSpec InlineToolSpec(std::string_view kind, const Json& with) {
  ToolSpec spec;
  spec.name = std::string(kind);
  spec.executor = std::string(kind);
  spec.effect = storage::EffectKind::kWrite;
  spec.risk = storage::RiskLevel::kCritical;
  if (kind == "http" && with.is_object()) {
    auto method = with.find("method");
    if (method != with.end() && method->is_string()) {
      const std::string m = UpperAscii(method->get<std::string>());
      // RFC 9110 §9.2.2: these methods are idempotent by definition.
      spec.idempotent = m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" ||
                        m == "DELETE" || m == "TRACE";
    }
  }
  return spec;
}

Json ToolSpecToJson(const ToolSpec& spec) {
  return Json{{"name", spec.name},
              {"description", spec.description},
              {"effect", std::string(storage::Name(spec.effect))},
              {"risk", std::string(storage::Name(spec.risk))},
              {"idempotent", spec.idempotent},
              {"executor", spec.executor},
              {"config", spec.config},
              {"timeout_ms", spec.timeout_ms}};
}

std::optional<ToolSpec> ToolSpecFromJson(const Json& json) {
  if (!json.is_object()) return std::nullopt;
  ToolSpec spec;
  try {
    spec.name = json.at("name").get<std::string>();
    spec.description = json.value("description", "");
    spec.idempotent = json.value("idempotent", false);
    spec.executor = json.at("executor").get<std::string>();
    spec.config = json.value("config", Json::object());
    spec.timeout_ms = json.value("timeout_ms", uint64_t{0});
    const std::string effect = json.value("effect", "write");
    const std::string risk = json.value("risk", "critical");
    spec.effect = storage::ParseEffectKind(effect).value_or(storage::EffectKind::kWrite);
    spec.risk = storage::ParseRiskLevel(risk).value_or(spec.risk);
  } catch (const Json::exception&) {
    return std::nullopt;
  }
  return spec;
}

Status ToolCatalog::Register(ToolSpec spec, CppTool callback) {
  if (!ValidToolName(spec.name)) {
    return Status::InvalidArgument("tool name '" + spec.name +
                                   "' is invalid (expected 1..128 of [A-Za-z0-9_.:-])");
  }
  if (spec.name == "http" || spec.name == "mcp" || spec.name == "agent" || spec.name == "shell") {
    return Status::InvalidArgument("tool name '" + spec.name +
                                   "' is reserved for the DSL's built-in calls");
  }
  static constexpr std::string_view kExecutors[] = {"cpp", "command", "http", "mcp"};
  if (std::find(std::begin(kExecutors), std::end(kExecutors), spec.executor) ==
      std::end(kExecutors)) {
    return Status::InvalidArgument("tool '" + spec.name + "': unknown executor '" + spec.executor +
                                   "' (expected cpp, command, http or mcp)");
  }
  if (spec.executor == "cpp" && !callback) {
    return Status::InvalidArgument("tool '" + spec.name + "': a cpp tool needs a callback");
  }
  if (spec.executor != "cpp" && callback) {
    return Status::InvalidArgument("tool '" + spec.name + "': only cpp tools take a callback");
  }
  if (!spec.config.is_object()) {
    return Status::InvalidArgument("tool '" + spec.name + "': config must be an object");
  }
  if (spec.executor == "http" && spec.config.value("output", "") == "exchange") {
    // "exchange" answers every status as a result: it is for the engine's own clients
    // (agents), never for a tool, whose failures must fail its task.
    return Status::InvalidArgument("tool '" + spec.name +
                                   "': http output 'exchange' is not for tools");
  }
  if (spec.risk == storage::RiskLevel::kUnspecified) spec.risk = storage::RiskLevel::kCritical;
  if (tools_.count(spec.name) != 0) {
    return Status::AlreadyExists("tool '" + spec.name + "' is already registered");
  }
  std::string name = spec.name;
  tools_.emplace(std::move(name), Entry{std::move(spec), std::move(callback)});
  return Status::Ok();
}

const ToolCatalog::Entry* ToolCatalog::Find(std::string_view name) const {
  auto it = tools_.find(name);
  return it == tools_.end() ? nullptr : &it->second;
}

Sha256 ToolCatalog::Hash() const {
  Json all = Json::array();
  for (const auto& [name, entry] : tools_) all.push_back(ToolSpecToJson(entry.spec));
  return Sha256::Of(DumpJson(all));
}

}  // namespace cairn::engine
