// GoogleTest helpers for Status and Result, shared by every test binary.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace cairn::testing {

// `text` contains `part`.
inline ::testing::AssertionResult HasSubstr(std::string_view text, std::string_view part) {
  if (text.find(part) != std::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// The status has `code` and its message contains every one of `parts`.
inline ::testing::AssertionResult IsError(const Status& status, StatusCode code,
                                          std::initializer_list<std::string_view> parts = {}) {
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeName(code) << ", got " << status.ToString();
  }
  for (std::string_view part : parts) {
    if (status.message().find(part) == std::string::npos) {
      return ::testing::AssertionFailure()
             << status.ToString() << " does not mention \"" << part << "\"";
    }
  }
  return ::testing::AssertionSuccess();
}

// Setup steps that must succeed: a failure is reported where the step was written and
// ends the test (gtest catches the exception).
inline void Must(const Status& status, std::source_location at = std::source_location::current()) {
  if (status.ok()) return;
  ADD_FAILURE_AT(at.file_name(), static_cast<int>(at.line())) << status.ToString();
  throw std::runtime_error("setup step failed: " + status.ToString());
}
template <typename T>
T Must(Result<T> result, std::source_location at = std::source_location::current()) {
  Must(result.status(), at);
  return std::move(result).value();
}

}  // namespace cairn::testing
