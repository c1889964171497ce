// Helpers shared by the definition tests.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "engine/definition/definition.h"
#include "tests/support/assertions.h"

namespace cairn::engine::testing {

// A valid `document:` header, 5 lines: a task list that follows starts on line 6.
inline constexpr std::string_view kHeader =
    "document:\n"
    "  dsl: '1.0.0'\n"
    "  namespace: test\n"
    "  name: wf\n"
    "  version: '0.1.0'\n";

inline std::string Doc(std::string_view rest) { return std::string(kHeader) + std::string(rest); }

inline Result<std::shared_ptr<const Definition>> Load(std::string_view text,
                                                      const LoadOptions& options = {}) {
  return LoadDefinition(text, "test.yaml", options);
}

inline std::shared_ptr<const Definition> MustLoad(std::string_view text,
                                                  const LoadOptions& options = {}) {
  auto definition = Load(text, options);
  EXPECT_TRUE(definition.ok()) << definition.status().ToString() << "\n" << text;
  if (!definition.ok()) throw std::runtime_error("load failed");
  return *definition;
}

// The load fails with kInvalidArgument and its message contains each part.
inline ::testing::AssertionResult Refused(std::string_view text,
                                          std::initializer_list<std::string_view> parts,
                                          const LoadOptions& options = {}) {
  auto definition = Load(text, options);
  if (definition.ok()) return ::testing::AssertionFailure() << "loaded:\n" << text;
  return cairn::testing::IsError(definition.status(), StatusCode::kInvalidArgument, parts);
}

inline std::string ReadTestData(std::string_view name) {
  std::ifstream in(std::string(CAIRN_DEFINITION_TEST_DATA) + "/" + std::string(name));
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(text.str().empty()) << "cannot read test data " << name;
  return text.str();
}

}  // namespace cairn::engine::testing
