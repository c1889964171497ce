// Strong ids. A RunId is not a string and an EventSeq is not an integer: mixing them up
// is a compile error.
//
// RunId: 1..limits::run_id_bytes_max bytes of [A-Za-z0-9._:@-], so that ids are safe in
// file names, URLs, logs and storage keys. Either given by the caller (which makes starts
// idempotent) or generated: 26 characters, time-ordered (48-bit milliseconds, then 80
// random bits, Crockford base32, like a ULID), so listing by id is listing by age.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cairn {

class Random;

class RunId {
 public:
  RunId() = default;

  // Validates `text`. Errors: kInvalidArgument naming the offending byte or the length.
  static Result<RunId> Parse(std::string_view text);
  // A fresh time-ordered id.
  static RunId Generate(int64_t now_nanos, Random& random);
  // For ids already validated (read back from the store). Asserts validity.
  static RunId FromTrusted(std::string_view text);

  const std::string& str() const { return value_; }
  bool empty() const { return value_.empty(); }

  friend auto operator<=>(const RunId&, const RunId&) = default;
  friend bool operator==(const RunId&, const RunId&) = default;

 private:
  explicit RunId(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// True if `c` may appear in a run id.
bool IsRunIdChar(char c);

// Position of an event in its run's history: 0, 1, 2, ... with no holes.
class EventSeq {
 public:
  constexpr EventSeq() = default;
  constexpr explicit EventSeq(uint64_t v) : value_(v) {}
  constexpr uint64_t value() const { return value_; }
  constexpr EventSeq Next() const { return EventSeq(value_ + 1); }
  friend constexpr auto operator<=>(const EventSeq&, const EventSeq&) = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace cairn

template <>
struct std::hash<cairn::RunId> {
  size_t operator()(const cairn::RunId& id) const noexcept {
    return std::hash<std::string>()(id.str());
  }
};
