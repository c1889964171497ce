#include "engine/definition/duration.h"

#include <array>
#include <string>

namespace cairn::engine {
namespace {

constexpr uint64_t kSecondMs = 1000;
constexpr uint64_t kMinuteMs = 60 * kSecondMs;
constexpr uint64_t kHourMs = 60 * kMinuteMs;
constexpr uint64_t kDayMs = 24 * kHourMs;
constexpr uint64_t kWeekMs = 7 * kDayMs;

// Digits beyond these cannot matter: the result is bounded far below 10^15 ms.
constexpr size_t kIntegerDigitsMax = 15;
constexpr size_t kFractionDigitsMax = 9;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string Quote(std::string_view text) {
  constexpr size_t kShown = 64;
  if (text.size() <= kShown) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, kShown)) + "...'";
}

Status Invalid(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid ISO 8601 duration " + Quote(text) + ": " +
                                 std::string(why) +
                                 " (expected e.g. PT30S, PT1M30S, P1DT2H, PT0.5S)");
}

Status TooLong(uint64_t ms_max) {
  return Status::InvalidArgument("is longer than the maximum, " + FormatDurationMs(ms_max));
}

// One "<number><designator>" component. `number` has digits with at most one '.'.
// Adds number * unit_ms (truncated to whole ms) to *total; false if it overflows `cap`.
bool AddComponent(std::string_view number, uint64_t unit_ms, uint64_t cap, uint64_t* total) {
  size_t dot = number.find('.');
  std::string_view whole = number.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : number.substr(dot + 1);
  uint64_t value = 0;
  for (char c : whole) value = value * 10 + static_cast<uint64_t>(c - '0');
  if (value > cap / unit_ms) return false;
  uint64_t ms = value * unit_ms;
  // fraction * unit_ms / 10^digits, exactly: unit_ms <= 1 week < 2^30 and digits <= 9.
  uint64_t numerator = 0;
  uint64_t denominator = 1;
  for (char c : fraction.substr(0, kFractionDigitsMax)) {
    numerator = numerator * 10 + static_cast<uint64_t>(c - '0');
    denominator *= 10;
  }
  ms += numerator * unit_ms / denominator;
  if (ms > cap - *total) return false;
  *total += ms;
  return true;
}

}  // namespace

Result<uint64_t> ParseIsoDuration(std::string_view text, uint64_t ms_max) {
  if (text.empty() || text[0] != 'P') return Invalid(text, "it must start with 'P'");
  size_t i = 1;
  bool in_time = false;
  bool any = false;
  std::string_view order = "WD";  // designators still allowed, in order
  uint64_t total = 0;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (in_time) return Invalid(text, "'T' appears twice");
      in_time = true;
      order = "HMS";
      ++i;
      if (i == text.size()) return Invalid(text, "nothing follows 'T'");
      continue;
    }
    size_t start = i;
    while (i < text.size() && (IsDigit(text[i]) || text[i] == '.')) ++i;
    std::string_view number = text.substr(start, i - start);
    size_t dot = number.find('.');
    if (number.empty() || number[0] == '.' || number.back() == '.' ||
        (dot != std::string_view::npos && number.find('.', dot + 1) != std::string_view::npos)) {
      return Invalid(text, "expected a number before each designator");
    }
    if (number.substr(0, dot).size() > kIntegerDigitsMax) return Invalid(text, "number too large");
    if (i == text.size()) return Invalid(text, "a number has no designator");
    char designator = text[i++];
    if (!in_time && (designator == 'Y' || designator == 'M')) {
      return Invalid(text, "years and months have no fixed length; use weeks or days");
    }
    size_t at = order.find(designator);
    if (at == std::string_view::npos) {
      return Invalid(text, std::string("unexpected '") + designator + "'");
    }
    order.remove_prefix(at + 1);
    uint64_t unit = 0;
    switch (designator) {
      case 'W':
        unit = kWeekMs;
        break;
      case 'D':
        unit = kDayMs;
        break;
      case 'H':
        unit = kHourMs;
        break;
      case 'M':
        unit = kMinuteMs;
        break;
      default:
        unit = kSecondMs;
        break;
    }
    if (!AddComponent(number, unit, ms_max, &total)) {
      return Status::InvalidArgument("duration " + Quote(text) + " " + TooLong(ms_max).message());
    }
    any = true;
  }
  if (!any) return Invalid(text, "it has no components");
  return total;
}

Result<uint64_t> DurationFromObject(const Json& object, uint64_t ms_max) {
  static constexpr std::array<std::pair<const char*, uint64_t>, 5> kUnits = {{
      {"days", kDayMs},
      {"hours", kHourMs},
      {"minutes", kMinuteMs},
      {"seconds", kSecondMs},
      {"milliseconds", 1},
  }};
  if (!object.is_object() || object.empty()) {
    return Status::InvalidArgument(
        "a duration object needs at least one of days, hours, minutes, seconds, "
        "milliseconds");
  }
  uint64_t total = 0;
  for (const auto& [key, value] : object.items()) {
    uint64_t unit = 0;
    for (const auto& [name, unit_ms] : kUnits) {
      if (key == name) unit = unit_ms;
    }
    if (unit == 0) {
      return Status::InvalidArgument("unknown duration property '" + key +
                                     "' (expected days, hours, minutes, seconds or "
                                     "milliseconds)");
    }
    if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<int64_t>() < 0)) {
      return Status::InvalidArgument("duration property '" + key +
                                     "' must be a non-negative integer, got " + DumpJson(value));
    }
    uint64_t count = value.get<uint64_t>();
    if (count > ms_max / unit || count * unit > ms_max - total) {
      return Status::InvalidArgument("duration " + DumpJson(value) + " " + key + " " +
                                     TooLong(ms_max).message());
    }
    total += count * unit;
  }
  return total;
}

std::string FormatDurationMs(uint64_t ms) {
  if (ms == 0) return "0ms";
  static constexpr std::array<std::pair<const char*, uint64_t>, 5> kParts = {
      {{"d", kDayMs}, {"h", kHourMs}, {"m", kMinuteMs}, {"s", kSecondMs}, {"ms", 1}}};
  std::string out;
  for (const auto& [suffix, unit] : kParts) {
    if (ms >= unit) {
      if (!out.empty()) out += " ";
      out += std::to_string(ms / unit) + suffix;
      ms %= unit;
    }
  }
  return out;
}

}  // namespace cairn::engine
