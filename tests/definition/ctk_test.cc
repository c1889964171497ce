// Every workflow of the OWS conformance kit (../shared/ows/ctk/features/*.feature) that
// stays within cairn's subset loads; the others are refused, naming what is unsupported.
//
// The CTK is external data: it is read at test time from $CAIRN_OWS_CTK_DIR, or from
// ../shared/ows/ctk beside the repository. When it is absent the tests are skipped with
// the reason, never passed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/definition/definition.h"
#include "tests/support/assertions.h"

namespace cairn::engine {
namespace {

using cairn::testing::HasSubstr;

struct Scenario {
  std::string feature;  // file name
  std::string name;     // "Scenario: ..." title
  int line = 0;         // of the opening """yaml
  std::string yaml;
};

std::filesystem::path CtkDir() {
  if (const char* dir = std::getenv("CAIRN_OWS_CTK_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return std::filesystem::path(CAIRN_SOURCE_DIR) / ".." / "shared" / "ows" / "ctk";
}

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r") - begin + 1);
}

// The workflow definitions of one feature file: the """yaml block after each
// "Given a workflow with definition:", with the block's indentation removed.
std::vector<Scenario> ReadFeature(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<Scenario> out;
  std::string line;
  std::string scenario;
  bool want_block = false;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string trimmed = Trim(line);
    if (trimmed.rfind("Scenario:", 0) == 0) scenario = Trim(trimmed.substr(9));
    if (trimmed.find("a workflow with definition:") != std::string::npos) want_block = true;
    if (!want_block || trimmed != "\"\"\"yaml") continue;
    want_block = false;
    size_t indent = line.find('"');
    Scenario entry{path.filename().string(), scenario, number, ""};
    while (std::getline(in, line)) {
      ++number;
      if (Trim(line) == "\"\"\"") break;
      entry.yaml += (line.size() >= indent ? line.substr(indent) : Trim(line)) + "\n";
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<Scenario> AllScenarios() {
  std::vector<Scenario> all;
  std::filesystem::path features = CtkDir() / "features";
  std::error_code error;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(features, error)) {
    if (entry.path().extension() == ".feature") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    for (Scenario& scenario : ReadFeature(file)) all.push_back(std::move(scenario));
  }
  return all;
}

// What each refused scenario must name: by feature, or by feature and scenario.
std::string ExpectedRefusal(const Scenario& scenario) {
  if (scenario.feature == "branch.feature") return "`fork` tasks are not supported";
  if (scenario.feature == "emit.feature") return "`emit` tasks are not supported";
  if (scenario.feature == "call.feature" && scenario.name.find("OpenAPI") != std::string::npos) {
    return "`call: openapi` is not supported";
  }
  return "";
}

class CtkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::is_directory(CtkDir() / "features")) {
      GTEST_SKIP() << "the OWS CTK is not at " << CtkDir().string()
                   << " (set CAIRN_OWS_CTK_DIR to its directory)";
    }
    scenarios_ = AllScenarios();
  }
  std::vector<Scenario> scenarios_;
};

TEST_F(CtkTest, EveryWorkflowInTheSubsetLoadsAndTheOthersAreRefusedByName) {
  ASSERT_GE(scenarios_.size(), 20u) << "the feature files were not parsed";
  size_t loaded = 0;
  size_t refused = 0;
  for (const Scenario& scenario : scenarios_) {
    SCOPED_TRACE(scenario.feature + ":" + std::to_string(scenario.line) + " " + scenario.name);
    auto definition = LoadDefinition(scenario.yaml, scenario.feature);
    std::string refusal = ExpectedRefusal(scenario);
    if (refusal.empty()) {
      EXPECT_TRUE(definition.ok()) << definition.status().ToString() << "\n" << scenario.yaml;
      loaded += definition.ok();
      continue;
    }
    ASSERT_FALSE(definition.ok()) << scenario.yaml;
    EXPECT_TRUE(HasSubstr(definition.status().message(), refusal));
    // The refusal is positioned in the feature's workflow: "FEATURE:LINE:COL: /do/...".
    EXPECT_TRUE(HasSubstr(definition.status().message(), scenario.feature + ":"));
    ++refused;
  }
  EXPECT_EQ(refused, 4u);  // fork, emit, two openapi calls
  EXPECT_GE(loaded, 16u);
}

TEST_F(CtkTest, TaskPathsAreTheErrorInstancesTheKitExpects) {
  std::map<std::string, std::shared_ptr<const Definition>> by_name;
  for (const Scenario& scenario : scenarios_) {
    auto definition = LoadDefinition(scenario.yaml, scenario.feature);
    if (definition.ok()) by_name[(*definition)->name] = *definition;
  }
  ASSERT_TRUE(by_name.count("raise-custom-error"));
  EXPECT_EQ(by_name["raise-custom-error"]->do_.at(0).path, "/do/0/raiseError");
  ASSERT_TRUE(by_name.count("try-catch-404"));
  const Task& attempt = by_name["try-catch-404"]->do_.at(0);
  const auto& body = std::get<TryBody>(attempt.body);
  EXPECT_EQ(body.tasks.at(0).path, "/do/0/tryGetPet/try/0/getPet");
  EXPECT_EQ(body.catch_.as, "err");
  EXPECT_EQ(body.catch_.do_.at(0).path, "/do/0/tryGetPet/catch/do/0/setError");
  ASSERT_TRUE(by_name.count("for"));
  const auto& loop = std::get<ForBody>(by_name["for"]->do_.at(0).body);
  EXPECT_EQ(loop.each, "color");
  EXPECT_EQ(loop.at, "index");
  EXPECT_EQ(loop.tasks.at(0).path, "/do/0/loopColors/do/0/markProcessed");
  ASSERT_TRUE(by_name.count("explicit-sequence"));
  const TaskList& tasks = by_name["explicit-sequence"]->do_;
  EXPECT_EQ(tasks.at(0).then.kind, FlowDirective::Kind::kGoto);
  EXPECT_EQ(tasks.at(0).then.target_index, 2u);
  EXPECT_EQ(tasks.at(1).then.kind, FlowDirective::Kind::kEnd);
  EXPECT_EQ(tasks.at(2).then.target_index, 1u);
}

}  // namespace
}  // namespace cairn::engine
