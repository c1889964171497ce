// ToolCatalog::LoadFile / LoadText: the operator's YAML tool catalog
// (engine/tools/catalog_file.cc).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "engine/tools/catalog.h"
#include "tests/support/assertions.h"
#include "tests/support/temp_dir.h"

namespace cairn::engine {
namespace {

using ::cairn::testing::HasSubstr;
using ::cairn::testing::IsError;
using ::cairn::testing::Must;
using ::cairn::testing::TempDir;

void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

constexpr const char* kExample = R"(tools:
  crm.get_account:
    description: Read an account
    effect: read
    risk: low
    idempotent: true
    executor: command
    command: /bin/cat
    timeout: 10s
  billing.change_plan:
    effect: write
    risk: high
    idempotent: true
    executor: http
    http: {method: POST, endpoint: "http://127.0.0.1:8080/plans", headers: {x-team: ops}}
  docs.search:
    effect: read
    risk: medium
    mcp:
      tool: search
      transport: {stdio: {command: uvx, arguments: [docs-mcp], environment: {MODE: "1"}}}
  notes.add:
    command: {command: /bin/sh, arguments: [-c, "cat >/dev/null; echo {}"]}
    timeout: 1m30s
)";

TEST(CatalogFileTest, LoadsEveryExecutorAndField) {
  ToolCatalog catalog;
  Must(catalog.LoadText(kExample, "tools.yaml"));
  ASSERT_EQ(catalog.size(), 4u);

  const ToolCatalog::Entry* crm = catalog.Find("crm.get_account");
  ASSERT_NE(crm, nullptr);
  EXPECT_EQ(crm->spec.description, "Read an account");
  EXPECT_EQ(crm->spec.effect, storage::EffectKind::kRead);
  EXPECT_EQ(crm->spec.risk, storage::RiskLevel::kLow);
  EXPECT_TRUE(crm->spec.idempotent);
  EXPECT_EQ(crm->spec.executor, "command");
  EXPECT_EQ(crm->spec.config, (Json{{"command", "/bin/cat"}}));
  EXPECT_EQ(crm->spec.timeout_ms, 10'000u);

  const ToolCatalog::Entry* billing = catalog.Find("billing.change_plan");
  ASSERT_NE(billing, nullptr);
  EXPECT_EQ(billing->spec.executor, "http");
  EXPECT_EQ(billing->spec.risk, storage::RiskLevel::kHigh);
  EXPECT_EQ(billing->spec.config, (Json{{"method", "post"},
                                        {"endpoint", "http://127.0.0.1:8080/plans"},
                                        {"headers", {{"x-team", "ops"}}}}));
  EXPECT_EQ(billing->spec.timeout_ms, 0u);  // the default

  const ToolCatalog::Entry* docs = catalog.Find("docs.search");
  ASSERT_NE(docs, nullptr);
  EXPECT_EQ(docs->spec.executor, "mcp");  // implied by the `mcp` key
  EXPECT_EQ(docs->spec.config, (Json{{"tool", "search"},
                                     {"transport",
                                      {{"stdio",
                                        {{"command", "uvx"},
                                         {"arguments", {"docs-mcp"}},
                                         {"environment", {{"MODE", "1"}}}}}}}}));

  const ToolCatalog::Entry* notes = catalog.Find("notes.add");
  ASSERT_NE(notes, nullptr);
  EXPECT_EQ(notes->spec.executor, "command");
  EXPECT_EQ(notes->spec.effect, storage::EffectKind::kWrite);  // default
  EXPECT_EQ(notes->spec.risk, storage::RiskLevel::kCritical);  // default
  EXPECT_FALSE(notes->spec.idempotent);                        // default
  EXPECT_EQ(notes->spec.timeout_ms, 90'000u);
  EXPECT_EQ(notes->spec.config["arguments"], (Json{"-c", "cat >/dev/null; echo {}"}));
}

TEST(CatalogFileTest, EmptyDocumentsHaveNoTools) {
  for (const char* text : {"", "tools:\n", "tools: {}\n", "# nothing\n"}) {
    ToolCatalog catalog;
    Must(catalog.LoadText(text, "empty.yaml"));
    EXPECT_EQ(catalog.size(), 0u) << text;
  }
}

TEST(CatalogFileTest, TimeoutForms) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"250", 250},      {"500ms", 500},    {"2s", 2000},      {"2m", 120'000},
      {"1h", 3'600'000}, {"1m30s", 90'000}, {"\"1500\"", 1500}};
  for (const auto& [text, ms] : cases) {
    ToolCatalog catalog;
    Must(catalog.LoadText(std::string("tools:\n  t:\n    command: cat\n    timeout: ") + text,
                          "t.yaml"));
    EXPECT_EQ(catalog.Find("t")->spec.timeout_ms, ms) << text;
  }
  for (const char* text : {"0", "10 s", "ten", "10d", "-5", "25h", "1.5s"}) {
    ToolCatalog catalog;
    EXPECT_TRUE(
        IsError(catalog.LoadText(
                    std::string("tools:\n  t:\n    command: cat\n    timeout: ") + text, "t.yaml"),
                StatusCode::kInvalidArgument, {"t.yaml:4:14: tool 't': timeout"}))
        << text;
  }
}

TEST(CatalogFileTest, UnknownKeysAreRefusedByNameWithTheirPosition) {
  ToolCatalog catalog;
  Status status = catalog.LoadText(
      "tools:\n"
      "  crm.get_account:\n"
      "    efect: read\n"
      "    command: cat\n",
      "tools.yaml");
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument,
                      {"tools.yaml:3:5: tool 'crm.get_account': tool: unknown key 'efect' "
                       "(expected description, effect, risk, idempotent, executor, command, "
                       "http, mcp, timeout)"}));
  EXPECT_EQ(catalog.size(), 0u);

  EXPECT_TRUE(IsError(catalog.LoadText("tool:\n  a: {command: cat}\n", "top.yaml"),
                      StatusCode::kInvalidArgument,
                      {"top.yaml:1:1: catalog: unknown key 'tool' (expected tools)"}));
  EXPECT_TRUE(IsError(
      catalog.LoadText("tools:\n  a:\n    http: {method: get, endpoint: 'http://x', query: 1}\n",
                       "h.yaml"),
      StatusCode::kInvalidArgument, {"h.yaml:3:47: tool 'a': http: unknown key 'query'"}));
  EXPECT_TRUE(
      IsError(catalog.LoadText("tools:\n  a:\n    mcp: {tool: x, transport: {stdio: {command: c, "
                               "cwd: /}}}\n",
                               "m.yaml"),
              StatusCode::kInvalidArgument, {"tool 'a': stdio: unknown key 'cwd'"}));
}

TEST(CatalogFileTest, BadValuesNameTheFieldAndWhatWasExpected) {
  struct Case {
    const char* tool_yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"effect: delete\n    command: cat", "effect: unknown value 'delete' (expected read, write)"},
      {"risk: extreme\n    command: cat",
       "risk: unknown value 'extreme' (expected low, medium, high, critical)"},
      {"idempotent: yes\n    command: cat", "idempotent: expected true or false, found 'yes'"},
      {"executor: cpp\n    command: cat", "cpp tools are registered in code"},
      {"executor: grpc\n    command: cat", "executor: unknown value 'grpc'"},
      {"executor: http\n    command: cat", "key 'command' does not apply to executor http"},
      {"executor: command", "executor command needs a 'command' key"},
      {"description: nothing to run", "missing executor configuration"},
      {"command: cat\n    http: {method: get, endpoint: 'http://x'}",
       "more than one executor configuration"},
      {"command: [cat]", "command: expected a command or a map"},
      {"command: {arguments: [x]}", "command: missing 'command'"},
      {"command: {command: cat, arguments: x}", "arguments: expected a list of strings"},
      {"command: {command: cat, environment: [A]}", "environment: expected a map of strings"},
      {"command: {command: cat, environment: {A: [1]}}",
       "environment.A: expected a string, found a list"},
      {"http: {method: fetch, endpoint: 'http://x'}", "unknown HTTP method 'fetch'"},
      {"http: {method: get}", "http: missing 'endpoint'"},
      {"http: {method: get, endpoint: 'ftp://x'}", "is not an http:// or https:// URL"},
      {"mcp: {transport: {stdio: {command: c}}}", "mcp: missing 'tool'"},
      {"mcp: {tool: t}", "mcp: missing 'transport'"},
      {"mcp: {tool: t, transport: {}}", "transport: expected exactly one of stdio and http"},
      {"mcp: {tool: t, transport: {http: {endpoint: 'https://m'}, stdio: {command: c}}}",
       "transport: expected exactly one of stdio and http"},
      {"command: ./no-such-tool", "command: './no-such-tool' is not a file"},
      {"description: [a]\n    command: cat", "description: expected a string, found a list"},
  };
  for (const Case& c : cases) {
    ToolCatalog catalog;
    Status status =
        catalog.LoadText(std::string("tools:\n  t:\n    ") + c.tool_yaml + "\n", "c.yaml");
    EXPECT_TRUE(
        IsError(status, StatusCode::kInvalidArgument, {"c.yaml:", "tool 't': ", c.expected}))
        << c.tool_yaml;
    EXPECT_EQ(catalog.size(), 0u);
  }
}

TEST(CatalogFileTest, ReportsEveryProblemOnItsOwnLine) {
  ToolCatalog catalog;
  Status status = catalog.LoadText(
      "tools:\n"
      "  a:\n"
      "    risk: huge\n"
      "    command: cat\n"
      "  b:\n"
      "    effect: maybe\n"
      "    command: cat\n",
      "two.yaml");
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument,
                      {"two.yaml:3:11: tool 'a': risk", "\ntwo.yaml:6:13: tool 'b': effect"}));
}

TEST(CatalogFileTest, ProblemsAreBounded) {
  std::string text = "tools:\n";
  for (int i = 0; i < 30; ++i) text += "  t" + std::to_string(i) + ": {risk: x, command: c}\n";
  ToolCatalog catalog;
  Status status = catalog.LoadText(text, "many.yaml");
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument, {"many.yaml: and 10 more problems"}));
  EXPECT_EQ(std::count(status.message().begin(), status.message().end(), '\n'), 20);
}

TEST(CatalogFileTest, DuplicatesAreRefused) {
  ToolCatalog catalog;
  EXPECT_TRUE(
      IsError(catalog.LoadText("tools:\n  a: {command: cat}\n  a: {command: cat}\n", "dup.yaml"),
              StatusCode::kInvalidArgument, {"dup.yaml:3:3: tools: 'a' appears twice"}));
  EXPECT_TRUE(IsError(
      catalog.LoadText("tools:\n  a: {command: cat, risk: low, risk: high}\n", "dupkey.yaml"),
      StatusCode::kInvalidArgument, {"tool 'a': tool: 'risk' appears twice"}));
}

TEST(CatalogFileTest, NothingIsRegisteredOnError) {
  ToolCatalog catalog;
  Must(catalog.LoadText("tools:\n  existing: {command: cat}\n", "first.yaml"));
  const Sha256 before = catalog.Hash();

  // The second tool clashes with one already registered: the first must not stay either.
  Status status = catalog.LoadText("tools:\n  fresh: {command: cat}\n  existing: {command: cat}\n",
                                   "second.yaml");
  EXPECT_TRUE(IsError(status, StatusCode::kInvalidArgument,
                      {"second.yaml:3:3: tool 'existing' is already registered"}));
  EXPECT_EQ(catalog.size(), 1u);
  EXPECT_FALSE(catalog.Contains("fresh"));
  EXPECT_EQ(catalog.Hash(), before);

  // A name the catalog refuses.
  EXPECT_TRUE(
      IsError(catalog.LoadText("tools:\n  ok.one: {command: cat}\n  'bad name': {command: cat}\n",
                               "names.yaml"),
              StatusCode::kInvalidArgument, {"names.yaml:3:3: ", "bad name"}));
  EXPECT_TRUE(IsError(catalog.LoadText("tools:\n  http: {command: cat}\n", "reserved.yaml"),
                      StatusCode::kInvalidArgument, {"reserved.yaml:2:3: ", "reserved"}));
  EXPECT_EQ(catalog.size(), 1u);
}

TEST(CatalogFileTest, InvalidYamlHasAPosition) {
  ToolCatalog catalog;
  EXPECT_TRUE(IsError(catalog.LoadText("tools:\n  a: {command: cat\n", "broken.yaml"),
                      StatusCode::kInvalidArgument, {"broken.yaml:", "invalid YAML"}));
  EXPECT_TRUE(IsError(catalog.LoadText("- a\n- b\n", "list.yaml"), StatusCode::kInvalidArgument,
                      {"list.yaml:1:1: expected a map with the key 'tools', found a list"}));
  EXPECT_TRUE(IsError(catalog.LoadText("tools: [a, b]\n", "list.yaml"),
                      StatusCode::kInvalidArgument,
                      {"list.yaml:1:8: tools: expected a map of tool name to settings"}));
}

TEST(CatalogFileTest, LoadFileResolvesRelativeCommandsAgainstItsDirectory) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.Sub("conf").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.Sub("conf/bin").c_str(), 0755), 0);
  WriteFile(dir.Sub("conf/bin/crm.py"), "#!/bin/sh\necho {}\n", 0755);
  WriteFile(dir.Sub("conf/bin/plain.txt"), "not a program\n", 0644);
  WriteFile(dir.Sub("conf/tools.yaml"),
            "tools:\n"
            "  crm.get: {command: ./bin/crm.py, effect: read}\n"
            "  crm.mcp: {mcp: {tool: t, transport: {stdio: {command: bin/../bin/crm.py}}}}\n"
            "  sys.cat: {command: cat}\n");
  ToolCatalog catalog;
  Must(catalog.LoadFile(dir.Sub("conf/tools.yaml")));
  EXPECT_EQ(catalog.Find("crm.get")->spec.config["command"], dir.Sub("conf/bin/crm.py"));
  EXPECT_EQ(catalog.Find("crm.mcp")->spec.config["transport"]["stdio"]["command"],
            dir.Sub("conf/bin/crm.py"));
  EXPECT_EQ(catalog.Find("sys.cat")->spec.config["command"], "cat");  // looked up in PATH

  WriteFile(dir.Sub("conf/bad.yaml"), "tools:\n  t: {command: ./bin/plain.txt}\n");
  ToolCatalog other;
  EXPECT_TRUE(IsError(other.LoadFile(dir.Sub("conf/bad.yaml")), StatusCode::kInvalidArgument,
                      {dir.Sub("conf/bad.yaml") + ":2:16: tool 't': command: './bin/plain.txt' (" +
                       dir.Sub("conf/bin/plain.txt") + ") is not executable"}));
}

TEST(CatalogFileTest, CommandToolsAreShellLinesWhoseProgramIsResolved) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.Sub("my tools").c_str(), 0755), 0);
  WriteFile(dir.Sub("my tools/crm.py"), "#!/bin/sh\necho {}\n", 0755);
  WriteFile(dir.Sub("my tools/tools.yaml"),
            "tools:\n"
            "  flags: {command: './crm.py --verbose \"$1\"', effect: read}\n"
            "  quoted: {command: \"'kept as written' x\"}\n"
            "  line: {command: 'cat | wc -l'}\n"
            "  server: {mcp: {tool: t, transport: {stdio: {command: ./crm.py}}}}\n");
  ToolCatalog catalog;
  Must(catalog.LoadFile(dir.Sub("my tools/tools.yaml")));
  // The program's path has a space: it is quoted for the shell, the rest kept.
  EXPECT_EQ(catalog.Find("flags")->spec.config["command"],
            "'" + dir.Sub("my tools/crm.py") + "' --verbose \"$1\"");
  EXPECT_EQ(catalog.Find("quoted")->spec.config["command"], "'kept as written' x");
  EXPECT_EQ(catalog.Find("line")->spec.config["command"], "cat | wc -l");
  // An MCP server is executed directly: its path is not quoted.
  EXPECT_EQ(catalog.Find("server")->spec.config["transport"]["stdio"]["command"],
            dir.Sub("my tools/crm.py"));

  ToolCatalog other;
  EXPECT_TRUE(IsError(other.LoadText("tools:\n  t: {command: './nope.sh --x'}\n", "t.yaml"),
                      StatusCode::kInvalidArgument,
                      {"t.yaml:2:16: tool 't': command: './nope.sh' is not a file"}));
}

TEST(CatalogFileTest, LoadFileErrorsNameTheFile) {
  TempDir dir;
  ToolCatalog catalog;
  EXPECT_TRUE(IsError(catalog.LoadFile(dir.Sub("missing.yaml")), StatusCode::kNotFound,
                      {"cannot read tool catalog " + dir.Sub("missing.yaml")}));
  EXPECT_TRUE(
      IsError(catalog.LoadFile(dir.path()), StatusCode::kInvalidArgument, {"is a directory"}));
  WriteFile(dir.Sub("big.yaml"), "# " + std::string(2 << 20, 'x') + "\n");
  EXPECT_TRUE(IsError(catalog.LoadFile(dir.Sub("big.yaml")), StatusCode::kInvalidArgument,
                      {"big.yaml", "limit"}));
}

TEST(CatalogFileTest, SpecsHashTheSameWhateverTheirOrderInTheFile) {
  ToolCatalog a;
  ToolCatalog b;
  Must(a.LoadText("tools:\n  x: {command: cat}\n  y: {command: cat, risk: low}\n", "a.yaml"));
  Must(b.LoadText("tools:\n  y: {risk: low, command: cat}\n  x: {command: cat}\n", "b.yaml"));
  EXPECT_EQ(a.Hash(), b.Hash());
  EXPECT_TRUE(HasSubstr(ToolSpecToJson(a.Find("y")->spec).dump(), "\"risk\":\"low\""));
}

}  // namespace
}  // namespace cairn::engine

namespace cairn::engine {
namespace {

TEST(CatalogTest, HttpToolsCannotUseTheExchangeOutput) {
  ToolCatalog catalog;
  ToolSpec spec;
  spec.name = "billing.charge";
  spec.executor = "http";
  spec.config =
      Json{{"method", "post"}, {"endpoint", "http://127.0.0.1:1/x"}, {"output", "exchange"}};
  const Status registered = catalog.Register(spec);
  EXPECT_EQ(registered.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(registered.message().find("'exchange' is not for tools"), std::string::npos);
  EXPECT_EQ(catalog.size(), 0u);
}

}  // namespace
}  // namespace cairn::engine
