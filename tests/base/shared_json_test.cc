#include "base/shared_json.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace cairn {
namespace {

TEST(SharedJsonTest, DefaultIsNull) {
  SharedJson value;
  EXPECT_TRUE(value->is_null());
  EXPECT_EQ(value.Dump(), "null");
  EXPECT_TRUE(std::move(value).Take().is_null());
}

TEST(SharedJsonTest, CopiesShareOneValue) {
  SharedJson a = Json{{"ticket", "T-1"}, {"amount", 120}};
  SharedJson b = a;
  EXPECT_TRUE(a.SharesWith(b));
  EXPECT_EQ(&*a, &*b);
  EXPECT_EQ(*b, (Json{{"ticket", "T-1"}, {"amount", 120}}));
}

TEST(SharedJsonTest, AssigningGivesAnotherValueAndLeavesCopiesAlone) {
  SharedJson a = Json{{"n", 1}};
  SharedJson b = a;
  b = Json{{"n", 2}};
  EXPECT_FALSE(a.SharesWith(b));
  EXPECT_EQ(*a, (Json{{"n", 1}}));
  EXPECT_EQ(*b, (Json{{"n", 2}}));
}

TEST(SharedJsonTest, TakeMovesOutOnlyWhenUnshared) {
  SharedJson a = Json{{"list", {1, 2, 3}}};
  SharedJson b = a;
  Json copied = std::move(b).Take();  // `a` still holds the value: copied
  EXPECT_EQ(copied, (Json{{"list", {1, 2, 3}}}));
  EXPECT_EQ(*a, (Json{{"list", {1, 2, 3}}}));
  EXPECT_TRUE(b->is_null());  // NOLINT(bugprone-use-after-move): Take leaves it null
  const Json* held = &*a;
  const Json* element = &(*held)["list"];
  Json moved = std::move(a).Take();  // the only holder: moved, not copied
  EXPECT_EQ(&moved["list"], element);
  EXPECT_EQ(moved, (Json{{"list", {1, 2, 3}}}));
}

TEST(SharedJsonTest, DumpUsesTheGivenTextOrWritesIt) {
  const Json value{{"b", true}, {"a", "x"}};
  EXPECT_EQ(SharedJson(value).Dump(), DumpJson(value));
  SharedJson with_text(value, DumpJson(value));
  EXPECT_EQ(with_text.Dump(), R"({"a":"x","b":true})");
  SharedJson copy = with_text;
  EXPECT_EQ(copy.Dump(), R"({"a":"x","b":true})");
}

TEST(SharedJsonTest, KeepsADumpOnlyWhenUnshared) {
  SharedJson alone = Json{{"n", 1}};
  alone.KeepDump("kept");  // the test's marker: a real caller passes DumpJson(value)
  EXPECT_EQ(alone.Dump(), "kept");
  alone.KeepDump("again");  // a kept text is not replaced
  EXPECT_EQ(alone.Dump(), "kept");

  SharedJson shared = Json{{"n", 2}};
  SharedJson other = shared;
  shared.KeepDump("kept");  // another holder may be reading the value: not kept
  EXPECT_EQ(shared.Dump(), R"({"n":2})");
  EXPECT_EQ(other.Dump(), R"({"n":2})");
}

}  // namespace
}  // namespace cairn
