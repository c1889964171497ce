#include "base/ids.h"

#include <array>
#include <cstdio>
#include <string>

#include "base/limits.h"
#include "base/random.h"

namespace cairn {

namespace {

constexpr std::array<bool, 256> MakeRunIdTable() {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) {
    table[static_cast<size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                                    c == '-' || c == ':' || c == '@';
  }
  return table;
}

// Run ids are validated on every decode: a table keeps that to a load per byte.
constexpr std::array<bool, 256> kRunIdChars = MakeRunIdTable();

}  // namespace

bool IsRunIdChar(char c) { return kRunIdChars[static_cast<unsigned char>(c)]; }

Result<RunId> RunId::Parse(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("run id is empty");
  if (text.size() > limits::run_id_bytes_max) {
    return Status::InvalidArgument("run id is " + std::to_string(text.size()) +
                                   " bytes; at most " +
                                   std::to_string(limits::run_id_bytes_max) + " allowed");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (!IsRunIdChar(text[i])) {
      const auto byte = static_cast<unsigned char>(text[i]);
      char shown[8];
      if (byte >= 0x20 && byte < 0x7f) {
        shown[0] = '\'';
        shown[1] = static_cast<char>(byte);
        shown[2] = '\'';
        shown[3] = 0;
      } else {
        std::snprintf(shown, sizeof shown, "0x%02x", byte);
      }
      return Status::InvalidArgument("run id has character " + std::string(shown) +
                                     " at offset " + std::to_string(i) +
                                     "; allowed: letters, digits and . _ - : @");
    }
  }
  return RunId(std::string(text));
}

RunId RunId::FromTrusted(std::string_view text) {
  auto parsed = Parse(text);
  CAIRN_ASSERT(parsed.ok(), "invalid trusted run id: " + parsed.status().ToString());
  return std::move(parsed).value();
}

RunId RunId::Generate(int64_t now_nanos, Random& random) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const uint64_t millis = static_cast<uint64_t>(now_nanos < 0 ? 0 : now_nanos / 1'000'000);
  std::string out(26, '0');
  // 10 characters of time (50 bits, the top 2 always zero for 48-bit millis).
  for (int i = 9; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kAlphabet[(millis >> (5 * (9 - i))) & 31];
  }
  // 16 characters of randomness (80 bits).
  const uint64_t hi = random.Next64();
  const uint64_t lo = random.Next64();
  for (int i = 0; i < 16; ++i) {
    const uint64_t bits = i < 12 ? (hi >> (5 * i)) : (lo >> (5 * (i - 12)));
    out[10 + static_cast<size_t>(i)] = kAlphabet[bits & 31];
  }
  return RunId(std::move(out));
}

}  // namespace cairn
