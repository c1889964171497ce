// The agents file: what it accepts, and every refusal with its file:line:col.
#include "agent/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "base/limits.h"
#include "tests/agent/agent_test_util.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::agent {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using cairn::testing::Must;
using testing::LambdaAgent;

// The problems of loading `yaml`, one per line ("" when it loads).
std::string Problems(std::string_view yaml, const std::string& base_dir = "") {
  auto loaded = AgentRegistry::Load(yaml, "agents.yaml", base_dir);
  if (loaded.ok()) return "";
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  return loaded.status().message();
}

TEST(AgentRegistryTest, EmptyFileIsAnEmptyRegistry) {
  for (std::string_view text : {"", "# nothing\n", "agents:\n", "agents: {}\n"}) {
    auto registry = Must(AgentRegistry::Load(text, "agents.yaml"));
    EXPECT_EQ(registry->size(), 0u) << text;
    EXPECT_EQ(registry->default_name(), "");
    EXPECT_EQ(registry->Find(""), nullptr);
    EXPECT_EQ(registry->hash(), Sha256::Of(text));
  }
  EXPECT_EQ(AgentRegistry().hash(), Sha256::Of(""));
}

TEST(AgentRegistryTest, LoadsKindsAndTheDefault) {
  const std::string text =
      "default: planner\n"
      "agents:\n"
      "  planner:\n"
      "    kind: scripted\n"
      "    otherwise: {option: a, rationale: b}\n"
      "  triage:\n"
      "    kind: command\n"
      "    command: python3 triage.py\n"
      "  gpt:\n"
      "    kind: openai\n"
      "    base_url: http://127.0.0.1:9/v1\n"
      "    model: test-model\n";
  auto registry = Must(AgentRegistry::Load(text, "agents.yaml"));
  EXPECT_EQ(registry->size(), 3u);
  EXPECT_EQ(registry->default_name(), "planner");
  ASSERT_NE(registry->Find(""), nullptr);
  EXPECT_EQ(registry->Find("")->name(), "planner");
  EXPECT_EQ(registry->Find("planner")->kind(), "scripted");
  EXPECT_EQ(registry->Find("triage")->kind(), "command");
  EXPECT_EQ(registry->Find("gpt")->kind(), "openai");
  EXPECT_EQ(registry->Find("gpt")->name(), "gpt");
  EXPECT_EQ(registry->Find("nobody"), nullptr);
  EXPECT_EQ(registry->hash(), Sha256::Of(text));
}

TEST(AgentRegistryTest, TopLevelProblems) {
  EXPECT_EQ(Problems("- a\n- b\n"),
            "agents.yaml:1:1: expected a map with the keys 'agents' and 'default', found a list");
  EXPECT_EQ(Problems("agents: {}\nagent: {}\n"),
            "agents.yaml:2:1: agents file: unknown key 'agent' (expected default, agents)");
  EXPECT_EQ(Problems("agents: [a]\n"),
            "agents.yaml:1:9: agents: expected a map of agent name to settings, found a list");
  EXPECT_EQ(Problems("agents:\n  a: {kind: scripted, otherwise: {option: x, rationale: y}}\n"
                     "default: b\n"),
            "agents.yaml:3:10: default: no agent named 'b' is defined");
  EXPECT_EQ(Problems("default: ''\n"), "agents.yaml:1:10: default: must not be empty");
  EXPECT_EQ(Problems("agents: {a: 1\n"),
            "agents.yaml:2:1: invalid YAML: end of map flow not found");
}

TEST(AgentRegistryTest, AgentNamesAndKinds) {
  const std::string text =
      "agents:\n"
      "  bad name:\n"  // 2
      "    kind: scripted\n"
      "  ok.name:-_1:\n"                            // 4
      "    kind: magic\n"                           // 5
      "  nokind:\n"                                 // 6
      "    otherwise: {option: a, rationale: b}\n"  // 7
      "  replay:\n"                                 // 8
      "    kind: recorded\n"                        // 9
      "  empty:\n"                                  // 10
      "  " +
      std::string(129, 'n') +
      ":\n"  // 11
      "    kind: scripted\n";
  EXPECT_EQ(Problems(text),
            "agents.yaml:2:3: agent name 'bad name' is not valid (expected 1 to 128 of A-Z a-z "
            "0-9 _ . : -)\n"
            "agents.yaml:5:11: agent 'ok.name:-_1': kind: unknown value 'magic' (expected "
            "openai, command, scripted)\n"
            "agents.yaml:7:5: agent 'nokind': agent: missing 'kind' (openai, command or "
            "scripted)\n"
            "agents.yaml:9:11: agent 'replay': kind: recorded agents are made by replay, not "
            "configured in a file\n"
            "agents.yaml:10:3: agent 'empty': expected a map of agent settings, found nothing\n"
            "agents.yaml:11:3: agent name '" +
                std::string(40, 'n') +
                "...' (129 bytes) is too long (expected 1 to 128 of A-Z a-z 0-9 _ . : -)");
}

TEST(AgentRegistryTest, ScriptedProblems) {
  const std::string text =
      "agents:\n"
      "  s:\n"
      "    kind: scripted\n"
      "    rulez: []\n"  // 4
      "    rules:\n"
      "      - when: [{path: /context/x, gte: ten}]\n"  // 6
      "        option: a\n"
      "        rationale: r\n"
      "      - when: []\n"  // 9
      "        rationale: r\n"
      "        confidence: 1.5\n"            // 11
      "      - {option: a, rationale: r}\n"  // 12
      "      - when: [{path: x, eq: 1}]\n"   // 13
      "        option: a\n"
      "        rationale: r\n"
      "    call_tools: [{tool: crm.get, args: {}}, {arguments: {}}]\n"  // 16
      "    otherwise: starter\n";                                       // 17
  EXPECT_EQ(Problems(text),
            "agents.yaml:4:5: agent 's': agent: unknown key 'rulez' (expected kind, call_tools, "
            "rules, otherwise)\n"
            "agents.yaml:16:34: agent 's': call_tools: unknown key 'args' (expected tool, "
            "arguments)\n"
            "agents.yaml:16:45: agent 's': call_tools: missing 'tool'\n"
            "agents.yaml:6:16: agent 's': when: gte: expected a number, found string\n"
            "agents.yaml:9:9: agent 's': rule: missing 'option'\n"
            "agents.yaml:11:21: agent 's': confidence: expected a number from 0 to 1, found "
            "'1.5'\n"
            "agents.yaml:12:9: agent 's': rule: missing 'when' (a list of conditions; [] always "
            "holds)\n"
            "agents.yaml:13:16: agent 's': when: path: 'x' is not a JSON pointer (expected e.g. "
            "/arguments/amount)\n"
            "agents.yaml:17:16: agent 's': otherwise: expected a map {option, rationale, "
            "confidence?}, found 'starter'");
  EXPECT_EQ(Problems("agents:\n  s:\n    kind: scripted\n"),
            "agents.yaml:3:5: agent 's': a scripted agent needs 'rules', 'otherwise' or both");
}

TEST(AgentRegistryTest, CommandProblems) {
  cairn::testing::TempDir dir("cairn-agents-");
  { std::ofstream(dir.Sub("plain.txt")) << "not a program"; }
  const std::string text =
      "agents:\n"
      "  c1:\n"
      "    kind: command\n"
      "    arguments: --x\n"    // 4
      "    timeout: 2 hours\n"  // 5
      "    shell: bash\n"       // 6
      "  c2:\n"
      "    kind: command\n"
      "    command: ./missing.py --flag\n"  // 9
      "  c3:\n"
      "    kind: command\n"
      "    command: ./plain.txt\n"   // 12
      "    environment: {A: [1]}\n"  // 13
      "    timeout: 2h\n"            // 14
      "  c4:\n"
      "    kind: command\n"
      "    command: python3 agent.py\n"
      "    arguments: [--strict]\n";  // 18
  const std::string problems = Problems(text, dir.path());
  EXPECT_EQ(problems,
            "agents.yaml:6:5: agent 'c1': agent: unknown key 'shell' (expected kind, command, "
            "arguments, environment, timeout)\n"
            "agents.yaml:3:5: agent 'c1': agent: missing 'command' (a shell command line)\n"
            "agents.yaml:4:16: agent 'c1': arguments: expected a list of strings, found '--x'\n"
            "agents.yaml:5:14: agent 'c1': timeout: '2 hours' is not a duration (expected e.g. "
            "500ms, 10s, 2m, 1h, 1d, 1m30s, or an integer of milliseconds)\n"
            "agents.yaml:9:14: agent 'c2': command: './missing.py' (" +
                dir.Sub("missing.py") +
                ") is not a file\n"
                "agents.yaml:12:14: agent 'c3': command: './plain.txt' (" +
                dir.Sub("plain.txt") +
                ") is not executable: Permission denied\n"
                "agents.yaml:13:22: agent 'c3': environment.A: expected a string, found a list\n"
                "agents.yaml:14:14: agent 'c3': timeout: '2h' is longer than the limit of "
                "3600000 ms\n"
                "agents.yaml:18:16: agent 'c4': arguments: the command line does not use them "
                "(they are $1, $2, ... of the line: write e.g. 'command: ./agent.py \"$@\"')");
}

TEST(AgentRegistryTest, FileBounds) {
  std::string big = "agents: {}\n# " + std::string(limits::agents_file_bytes_max, 'x') + "\n";
  EXPECT_TRUE(HasSubstr(Problems(big), "is more than the limit of 1048576"));

  std::string many = "agents:\n";
  for (size_t i = 0; i <= limits::agents_max; ++i) {
    many +=
        "  a" + std::to_string(i) + ": {kind: scripted, otherwise: {option: x, rationale: y}}\n";
  }
  EXPECT_EQ(Problems(many), "agents.yaml:2:3: agents: 1001 agents is more than the limit of 1000");

  cairn::testing::TempDir dir("cairn-agents-");
  EXPECT_TRUE(IsError(AgentRegistry::LoadFile(dir.Sub("nope.yaml")).status(), StatusCode::kNotFound,
                      {"agents file", "nope.yaml"}));
  EXPECT_TRUE(IsError(AgentRegistry::LoadFile(dir.path()).status(), StatusCode::kInvalidArgument,
                      {"is a directory"}));
  { std::ofstream(dir.Sub("bad.yaml")) << "agents:\n  x: {kind: nope}\n"; }
  EXPECT_EQ(AgentRegistry::LoadFile(dir.Sub("bad.yaml")).status().message(),
            dir.Sub("bad.yaml") +
                ":2:13: agent 'x': kind: unknown value 'nope' (expected openai, command, "
                "scripted)");
}

TEST(AgentRegistryTest, ManyProblemsAreCounted) {
  std::string text = "agents:\n";
  for (int i = 0; i < 25; ++i) text += "  a" + std::to_string(i) + ": {kind: nope}\n";
  const std::string problems = Problems(text);
  EXPECT_TRUE(HasSubstr(problems, "agents.yaml: and 5 more problems"));
}

TEST(AgentRegistryTest, AddInCode) {
  AgentRegistry registry;
  auto agent = std::make_shared<LambdaAgent>(testing::Answers({"a", "b", std::nullopt}), "x.y");
  EXPECT_TRUE(registry.Add(agent).ok());
  EXPECT_TRUE(IsError(registry.Add(agent), StatusCode::kAlreadyExists, {"'x.y'"}));
  EXPECT_TRUE(IsError(registry.Add(std::make_shared<LambdaAgent>(
                          testing::Answers({"a", "b", std::nullopt}), "a b")),
                      StatusCode::kInvalidArgument, {"'a b' is not valid"}));
  EXPECT_TRUE(IsError(registry.Add(nullptr), StatusCode::kInvalidArgument));
  EXPECT_EQ(registry.Find(""), nullptr);
  registry.set_default_name("x.y");
  EXPECT_EQ(registry.Find(""), agent);
  EXPECT_EQ(registry.size(), 1u);
}

}  // namespace
}  // namespace cairn::agent
