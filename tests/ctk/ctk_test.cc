// The OWS conformance test kit (CTK) run against cairn's engine: one GoogleTest test per
// scenario, named "Ctk.<Feature>/<Scenario>" (identifiers made of the titles' words).
//
// The CTK is external data, read when the binary starts: from $CAIRN_OWS_CTK_DIR, else
// from the directory the CMake cache variable CAIRN_OWS_CTK_DIR named at build time
// (default ../shared/ows/ctk beside the repository). The directory holds features/*.feature
// (or is that features directory). When it is absent there is one test, Ctk.KitAbsent,
// which is skipped with the reason; and any Ctk.* test named exactly in --gtest_filter (as
// ctest runs the tests it discovered earlier) is registered and skipped the same way, so
// that a kit removed after discovery is reported as skipped, never as passed.
//
// A scenario passes, is skipped (its workflow uses DSL features outside cairn's subset;
// the loader's refusal is the reason) or fails; see scenario_runner.h. A feature file
// that does not parse is one failing test, Ctk.<file>/Parse.
//
// At the end the binary prints one line:
//   CTK: N scenarios, P passed, S skipped (reasons...), F failed
//
// This file has its own main() (GTest::gtest_main is a static library, so this one is
// used): the tests are registered from the kit's files before RUN_ALL_TESTS.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/ctk/gherkin.h"
#include "tests/ctk/scenario_runner.h"

#ifndef CAIRN_OWS_CTK_DEFAULT_DIR
#error "CAIRN_OWS_CTK_DEFAULT_DIR must name the default CTK directory (tests/ctk/CMakeLists.txt)"
#endif

namespace cairn::ctk {
namespace {

constexpr const char* kSuite = "Ctk";

// What the scenarios did, for the summary line. Owned by main(); tests and the listener
// hold pointers. Used from the test thread only.
struct Ledger {
  std::set<std::string> counted;                    // full names of the tests counted
  std::map<std::string, std::string> skip_reasons;  // full name -> short reason
  std::string absent_reason;                        // why the kit is absent ("" if present)
};

// Every test of this binary: a body to run.
class CtkTest : public ::testing::Test {
 public:
  explicit CtkTest(std::function<void()> body) : body_(std::move(body)) {}
  void TestBody() override { body_(); }

 private:
  std::function<void()> body_;
};

void Register(const std::string& name, const std::string& file, int line,
              std::function<void()> body) {
  ::testing::RegisterTest(kSuite, name.c_str(), nullptr, nullptr, file.c_str(), line,
                          [body = std::move(body)]() -> CtkTest* { return new CtkTest(body); });
}

// "Call HTTP With Content Output" -> "CallHTTPWithContentOutput".
std::string Identifier(const std::string& title) {
  std::string out;
  bool word_start = true;
  for (char c : title) {
    if (!std::isalnum(static_cast<unsigned char>(c))) {
      word_start = true;
      continue;
    }
    out += word_start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    word_start = false;
  }
  return out.empty() ? "Untitled" : out;
}

struct KitLocation {
  std::filesystem::path features;  // the directory holding *.feature
  std::string origin;              // where the path came from, for messages
};

KitLocation LocateKit() {
  KitLocation kit;
  const char* env = std::getenv("CAIRN_OWS_CTK_DIR");
  std::filesystem::path dir;
  if (env != nullptr && *env != '\0') {
    dir = env;
    kit.origin = "$CAIRN_OWS_CTK_DIR";
  } else {
    dir = CAIRN_OWS_CTK_DEFAULT_DIR;
    kit.origin = "the CMake cache variable CAIRN_OWS_CTK_DIR";
  }
  std::error_code error;
  kit.features = std::filesystem::is_directory(dir / "features", error) ? dir / "features" : dir;
  return kit;
}

std::vector<std::filesystem::path> FeatureFiles(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".feature" && entry.is_regular_file(error)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());  // a stable test order, whatever the filesystem's
  return files;
}

void RegisterScenarios(const std::shared_ptr<const Feature>& feature, const std::string& path,
                       Ledger* ledger, std::set<std::string>* names) {
  for (size_t index = 0; index < feature->scenarios.size(); ++index) {
    const Scenario& scenario = feature->scenarios[index];
    std::string name = Identifier(feature->name) + "/" + Identifier(scenario.name);
    if (!names->insert(name).second) {
      name += "_L" + std::to_string(scenario.line);
      names->insert(name);
    }
    std::string full = std::string(kSuite) + "." + name;
    ledger->counted.insert(full);
    Register(name, path, scenario.line, [feature, index, ledger, full] {
      ScenarioOutcome outcome = RunScenario(*feature, feature->scenarios[index]);
      switch (outcome.kind) {
        case ScenarioOutcome::Kind::kPassed:
          return;
        case ScenarioOutcome::Kind::kSkipped:
          ledger->skip_reasons[full] = outcome.short_reason;
          GTEST_SKIP() << outcome.message;
        case ScenarioOutcome::Kind::kFailed:
          FAIL() << outcome.message;
      }
    });
  }
}

// Registers the kit's scenarios; false (and the reason in the ledger) when it is absent.
bool RegisterKit(Ledger* ledger) {
  KitLocation kit = LocateKit();
  std::vector<std::filesystem::path> files = FeatureFiles(kit.features);
  if (files.empty()) {
    ledger->absent_reason = "the OWS CTK is not at " + kit.features.string() + " (from " +
                            kit.origin + "): no *.feature files there; set " +
                            "CAIRN_OWS_CTK_DIR to the kit's directory to run it";
    return false;
  }
  std::set<std::string> names;
  for (const std::filesystem::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    Result<Feature> feature = ParseFeature(text.str(), file.filename().string());
    if (!feature.ok()) {
      std::string name = Identifier(file.stem().string()) + "/Parse";
      ledger->counted.insert(std::string(kSuite) + "." + name);
      Register(name, file.string(), 1,
               [message = feature.status().ToString()] { FAIL() << message; });
      continue;
    }
    RegisterScenarios(std::make_shared<const Feature>(std::move(*feature)), file.string(), ledger,
                      &names);
  }
  return true;
}

// The kit is absent: Ctk.KitAbsent, and every Ctk.* test named exactly by the filter,
// skip with the reason.
void RegisterAbsentKit(const Ledger& ledger) {
  std::set<std::string> names = {"KitAbsent"};
  std::string filter = GTEST_FLAG_GET(filter);
  std::string positive = filter.substr(0, filter.find('-'));
  std::stringstream patterns(positive);
  std::string pattern;
  const std::string prefix = std::string(kSuite) + ".";
  while (std::getline(patterns, pattern, ':')) {
    if (pattern.rfind(prefix, 0) == 0 && pattern.find_first_of("*?") == std::string::npos) {
      names.insert(pattern.substr(prefix.size()));
    }
  }
  for (const std::string& name : names) {
    Register(name, __FILE__, __LINE__, [reason = ledger.absent_reason] { GTEST_SKIP() << reason; });
  }
}

// Counts the scenario tests as they end and prints the summary line at the end.
class SummaryPrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit SummaryPrinter(const Ledger* ledger) : ledger_(ledger) {}

  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (std::string(info.test_suite_name()) == kSuite) kit_tests_ran_ = true;
    std::string full = std::string(info.test_suite_name()) + "." + info.name();
    if (ledger_->counted.count(full) == 0) return;
    ++scenarios_;
    if (info.result()->Skipped()) {
      auto reason = ledger_->skip_reasons.find(full);
      ++reasons_[reason == ledger_->skip_reasons.end() ? "no reason" : reason->second];
      ++skipped_;
    } else if (info.result()->Failed()) {
      ++failed_;
    } else {
      ++passed_;
    }
  }

  // Printed when a Ctk.* test ran (not for a run of the runner's own tests only).
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    if (!kit_tests_ran_) return;
    std::string line = "CTK: " + std::to_string(scenarios_) + " scenarios, " +
                       std::to_string(passed_) + " passed, " + std::to_string(skipped_) +
                       " skipped";
    if (!reasons_.empty()) {
      line += " (";
      bool first = true;
      for (const auto& [reason, count] : reasons_) {
        line += (first ? "" : "; ") + std::to_string(count) + "x " + reason;
        first = false;
      }
      line += ")";
    }
    line += ", " + std::to_string(failed_) + " failed";
    if (!ledger_->absent_reason.empty()) line += " -- " + ledger_->absent_reason;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

 private:
  const Ledger* ledger_;
  bool kit_tests_ran_ = false;
  size_t scenarios_ = 0, passed_ = 0, skipped_ = 0, failed_ = 0;
  std::map<std::string, size_t> reasons_;
};

}  // namespace
}  // namespace cairn::ctk

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  cairn::ctk::Ledger ledger;
  if (!cairn::ctk::RegisterKit(&ledger)) cairn::ctk::RegisterAbsentKit(ledger);
  ::testing::UnitTest::GetInstance()->listeners().Append(new cairn::ctk::SummaryPrinter(&ledger));
  return RUN_ALL_TESTS();
}
