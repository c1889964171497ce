// AgentRegistry: the agents file (format in agent/config.h) and agents made in code.
#include "agent/config.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "agent/command_agent.h"
#include "agent/openai_agent.h"
#include "agent/scripted_agent.h"
#include "base/limits.h"
#include "base/yaml_config.h"

namespace cairn::agent {
namespace {

constexpr size_t kNameBytesMax = 128;

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

// Empty when `name` is a valid agent name, else what is wrong with it.
std::string NameProblem(std::string_view name) {
  const std::string expected = " (expected 1 to 128 of A-Z a-z 0-9 _ . : -)";
  if (name.empty()) return "an agent name must not be empty" + expected;
  if (name.size() > kNameBytesMax) {
    return "agent name " + QuoteForMessage(name, 40) + " is too long" + expected;
  }
  for (char c : name) {
    if (!IsNameChar(c)) return "agent name " + QuoteForMessage(name) + " is not valid" + expected;
  }
  return "";
}

std::optional<std::string> GetEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// One agent's settings; null after adding problems.
std::shared_ptr<Agent> ParseAgent(const YamlContext& ctx, const std::string& name,
                                  const YAML::Node& key_node, const YAML::Node& node) {
  if (!node.IsMap()) {
    ctx.Add(node.IsNull() ? key_node : node,
            "expected a map of agent settings, found " + DescribeYamlNode(node));
    return nullptr;
  }
  // Without a kind there is nothing to check the other keys against.
  if (!yaml::Require(ctx, node, "agent", "kind", "openai, command or scripted")) return nullptr;
  if (node["kind"].IsScalar() && node["kind"].Scalar() == "recorded") {
    ctx.Add(node["kind"], "kind: recorded agents are made by replay, not configured in a file");
    return nullptr;
  }
  auto kind = yaml::OneOf(ctx, node["kind"], "kind", {"openai", "command", "scripted"});
  if (!kind) return nullptr;
  if (*kind == "scripted") {
    auto config = ParseScriptedConfig(ctx, node);
    return config ? MakeScriptedAgent(name, std::move(*config)) : nullptr;
  }
  if (*kind == "command") {
    auto config = ParseCommandConfig(ctx, node);
    return config ? MakeCommandAgent(name, std::move(*config)) : nullptr;
  }
  auto config = ParseOpenAiConfig(ctx, node);
  return config ? MakeOpenAiAgent(name, std::move(*config), GetEnv) : nullptr;
}

struct Parsed {
  std::map<std::string, std::shared_ptr<Agent>, std::less<>> agents;
  std::string default_name;
};

void ParseAgents(const YamlContext& top, const YAML::Node& agents, Parsed& parsed,
                 const std::filesystem::path* base_dir) {
  if (!agents.IsMap()) {
    top.Add(agents,
            "agents: expected a map of agent name to settings, found " + DescribeYamlNode(agents));
    return;
  }
  if (agents.size() > limits::agents_max) {
    top.Add(agents, "agents: " + std::to_string(agents.size()) +
                        " agents is more than the limit of " + std::to_string(limits::agents_max));
    return;
  }
  yaml::ForEachEntry(
      top, agents, "agents",
      [&](const std::string& name, const YAML::Node& key_node, const YAML::Node& node) {
        if (std::string problem = NameProblem(name); !problem.empty()) {
          top.Add(key_node, problem);
          return;
        }
        const YamlContext ctx{top.problems, "agent '" + name + "'", base_dir};
        if (auto agent = ParseAgent(ctx, name, key_node, node)) {
          parsed.agents.emplace(name, std::move(agent));
        }
      });
}

void ParseDocument(YamlProblems& problems, const YAML::Node& root, Parsed& parsed,
                   const std::filesystem::path* base_dir) {
  const YamlContext top{problems, "", base_dir};
  if (root.IsNull()) return;  // an empty file: no agents
  if (!root.IsMap()) {
    top.Add(root,
            "expected a map with the keys 'agents' and 'default', found " + DescribeYamlNode(root));
    return;
  }
  yaml::RefuseUnknownKeys(top, root, "agents file", {"default", "agents"});
  if (root["agents"] && !root["agents"].IsNull()) {
    ParseAgents(top, root["agents"], parsed, base_dir);
  }
  if (root["default"]) {
    auto name = yaml::NonEmptyString(top, root["default"], "default");
    if (!name) return;
    const bool defined = root["agents"] && root["agents"].IsMap() && root["agents"][*name];
    if (!defined) {
      top.Add(root["default"], "default: no agent named '" + *name + "' is defined");
      return;
    }
    parsed.default_name = std::move(*name);
  }
}

Result<std::shared_ptr<AgentRegistry>> LoadText(std::string_view yaml, std::string_view source_name,
                                                const std::filesystem::path* base_dir) {
  YamlProblems problems(source_name);
  std::optional<YAML::Node> root =
      ParseYamlText(problems, yaml, "agents file", limits::agents_file_bytes_max);
  if (!root) return problems.ToStatus();
  Parsed parsed;
  try {
    ParseDocument(problems, *root, parsed, base_dir);
  } catch (const YAML::Exception& e) {
    // Not expected (every access is checked first); kept so that no exception escapes.
    problems.Add(e.mark, "", e.msg);
  }
  if (!problems.empty()) return problems.ToStatus();
  auto registry = std::make_shared<AgentRegistry>();
  for (auto& [name, agent] : parsed.agents) {
    Status added = registry->Add(std::move(agent));
    CAIRN_ASSERT(added.ok(), "agent names were checked: " + added.ToString());
  }
  registry->set_default_name(std::move(parsed.default_name));
  registry->set_hash(Sha256::Of(yaml));
  return registry;
}

}  // namespace

AgentRegistry::AgentRegistry() : hash_(Sha256::Of("")) {}

Result<std::shared_ptr<AgentRegistry>> AgentRegistry::Load(std::string_view yaml,
                                                           std::string_view source_name,
                                                           const std::string& base_dir) {
  if (base_dir.empty()) return LoadText(yaml, source_name, nullptr);
  const std::filesystem::path dir(base_dir);
  return LoadText(yaml, source_name, &dir);
}

Result<std::shared_ptr<AgentRegistry>> AgentRegistry::LoadFile(const std::string& path) {
  Result<std::string> text = ReadTextFile(path, "agents file", limits::agents_file_bytes_max);
  if (!text.ok()) return text.status();
  std::error_code error;
  const std::filesystem::path base_dir =
      std::filesystem::absolute(std::filesystem::path(path), error).parent_path();
  return LoadText(*text, path, &base_dir);
}

Status AgentRegistry::Add(std::shared_ptr<Agent> agent) {
  if (agent == nullptr) return Status::InvalidArgument("no agent to add");
  const std::string& name = agent->name();
  if (std::string problem = NameProblem(name); !problem.empty()) {
    return Status::InvalidArgument(problem);
  }
  if (agents_.count(name) != 0) {
    return Status::AlreadyExists("an agent named '" + name + "' is already registered");
  }
  agents_.emplace(name, std::move(agent));
  return Status::Ok();
}

std::shared_ptr<Agent> AgentRegistry::Find(std::string_view name) const {
  if (name.empty()) {
    if (default_.empty()) return nullptr;
    name = default_;
  }
  auto it = agents_.find(name);
  return it == agents_.end() ? nullptr : it->second;
}

}  // namespace cairn::agent
