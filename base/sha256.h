// SHA-256 digests (OpenSSL underneath). Used for the event hash chain, definition
// hashes and content-addressed blobs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cairn {

class Sha256 {
 public:
  static constexpr size_t kSize = 32;
  using Bytes = std::array<uint8_t, kSize>;

  // The all-zero digest: the prev_hash of a run's first event.
  Sha256() : bytes_{} {}
  explicit Sha256(const Bytes& b) : bytes_(b) {}

  // Digest of `data`.
  static Sha256 Of(std::string_view data);
  // Digest of `a || b`, without concatenating.
  static Sha256 Of(std::string_view a, std::string_view b);
  // From exactly 32 raw bytes; kInvalidArgument otherwise.
  static Result<Sha256> FromBytes(std::string_view raw);
  // From 64 hex characters; kInvalidArgument otherwise.
  static Result<Sha256> FromHex(std::string_view hex);

  const Bytes& bytes() const { return bytes_; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  std::string Hex() const;
  bool IsZero() const;

  friend auto operator<=>(const Sha256&, const Sha256&) = default;
  friend bool operator==(const Sha256&, const Sha256&) = default;

 private:
  Bytes bytes_;
};

// Lower-case hex of arbitrary bytes.
std::string HexEncode(std::string_view bytes);

}  // namespace cairn
