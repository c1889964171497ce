#include "base/sha256.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "base/random.h"

namespace cairn {
namespace {

constexpr char kEmptyHex[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcHex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
// FIPS 180-2 two-block example.
constexpr char kTwoBlockInput[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr char kTwoBlockHex[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256::Of("").Hex(), kEmptyHex);
  EXPECT_EQ(Sha256::Of("abc").Hex(), kAbcHex);
  EXPECT_EQ(Sha256::Of(kTwoBlockInput).Hex(), kTwoBlockHex);
}

TEST(Sha256Test, MillionAs) {
  EXPECT_EQ(Sha256::Of(std::string(1'000'000, 'a')).Hex(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, TwoPartsEqualTheConcatenation) {
  EXPECT_EQ(Sha256::Of("ab", "c"), Sha256::Of("abc"));
  EXPECT_EQ(Sha256::Of("", "abc"), Sha256::Of("abc"));
  EXPECT_EQ(Sha256::Of("abc", ""), Sha256::Of("abc"));
  Random random(1);
  for (int i = 0; i < 100; ++i) {
    const std::string a = random.Bytes(random.Uniform(300));
    const std::string b = random.Bytes(random.Uniform(300));
    ASSERT_EQ(Sha256::Of(a, b), Sha256::Of(a + b));
  }
}

TEST(Sha256Test, DefaultIsZero) {
  const Sha256 zero;
  EXPECT_TRUE(zero.IsZero());
  EXPECT_EQ(zero.Hex(), std::string(64, '0'));
  EXPECT_FALSE(Sha256::Of("").IsZero());
  EXPECT_EQ(zero.view().size(), Sha256::kSize);
}

TEST(Sha256Test, HexRoundTrip) {
  const Sha256 digest = Sha256::Of("abc");
  auto parsed = Sha256::FromHex(digest.Hex());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, digest);
  std::string upper = kAbcHex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto from_upper = Sha256::FromHex(upper);
  ASSERT_TRUE(from_upper.ok());
  EXPECT_EQ(*from_upper, digest);
}

TEST(Sha256Test, BytesRoundTrip) {
  const Sha256 digest = Sha256::Of("abc");
  auto parsed = Sha256::FromBytes(digest.view());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, digest);
}

TEST(Sha256Test, FromHexRejectsWrongLength) {
  for (size_t n : {0, 1, 63, 65, 128}) {
    auto parsed = Sha256::FromHex(std::string(n, 'a'));
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << n;
    EXPECT_NE(parsed.status().message().find(std::to_string(n)), std::string::npos)
        << parsed.status().message();
  }
}

TEST(Sha256Test, FromHexRejectsNonHexNamingTheOffset) {
  std::string hex = kAbcHex;
  hex[10] = 'g';
  auto parsed = Sha256::FromHex(hex);
  ASSERT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("offset 10"), std::string::npos)
      << parsed.status().message();
  hex = kAbcHex;
  hex[63] = ' ';
  EXPECT_NE(Sha256::FromHex(hex).status().message().find("offset 63"), std::string::npos);
}

TEST(Sha256Test, FromBytesRejectsWrongLength) {
  for (size_t n : {0, 31, 33, 64}) {
    auto parsed = Sha256::FromBytes(std::string(n, '\x01'));
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << n;
    EXPECT_NE(parsed.status().message().find(std::to_string(n)), std::string::npos);
  }
}

TEST(Sha256Test, OrderingAndEquality) {
  const Sha256 a = Sha256::Of("a");
  const Sha256 b = Sha256::Of("b");
  EXPECT_NE(a, b);
  EXPECT_EQ(a < b, a.bytes() < b.bytes());
  EXPECT_LT(Sha256(), a);
}

TEST(HexEncodeTest, LowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x0f\xf0\xff", 4)), "000ff0ff");
  EXPECT_EQ(HexEncode("AZ"), "415a");
}

}  // namespace
}  // namespace cairn
