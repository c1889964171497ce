#include "base/sha256.h"

#include <openssl/evp.h>

#include "base/assert.h"

namespace cairn {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Sha256 Sha256::Of(std::string_view data) { return Of(data, {}); }

Sha256 Sha256::Of(std::string_view a, std::string_view b) {
  // One context per thread: EVP_MD_CTX_new per digest costs more than the hash itself
  // for the ~200-byte events that dominate.
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  EVP_MD_CTX* ctx = context.ctx;
  CAIRN_ASSERT(ctx != nullptr, "EVP_MD_CTX_new failed");
  Bytes out;
  unsigned int len = 0;
  const bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
                  EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, out.data(), &len) == 1;
  CAIRN_ASSERT(ok && len == kSize, "SHA-256 failed");
  return Sha256(out);
}

Result<Sha256> Sha256::FromBytes(std::string_view raw) {
  if (raw.size() != kSize) {
    return Status::InvalidArgument("SHA-256 digest must be 32 bytes, got " +
                                   std::to_string(raw.size()));
  }
  Bytes b;
  for (size_t i = 0; i < kSize; ++i) b[i] = static_cast<uint8_t>(raw[i]);
  return Sha256(b);
}

Result<Sha256> Sha256::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return Status::InvalidArgument("SHA-256 hex must be 64 characters, got " +
                                   std::to_string(hex.size()));
  }
  Bytes b;
  for (size_t i = 0; i < kSize; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("SHA-256 hex has a non-hex character at offset " +
                                     std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    b[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return Sha256(b);
}

std::string Sha256::Hex() const { return HexEncode(view()); }

bool Sha256::IsZero() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace cairn
