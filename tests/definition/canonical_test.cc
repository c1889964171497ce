// The canonical form and its hash: stable across YAML and JSON, key order, comments and
// quoting styles; LoadCanonicalDefinition round-trips.
#include <gtest/gtest.h>

#include <string>

#include "engine/definition/definition.h"
#include "tests/definition/definition_test_util.h"

namespace cairn::engine {
namespace {

using testing::Load;
using testing::MustLoad;
using testing::ReadTestData;

constexpr std::string_view kYaml = R"(# comment
document:
  dsl: '1.0.0'
  namespace: test
  name: wf
  version: 0.1.0
do:
  - a:
      set:
        n: 1
        f: 2.5
        e: 1e3
        b: true
        z: ~
        s: "quoted"
        q: '7'
        h: 0x10
        neg: -3
      then: b
  - b:
      wait: {seconds: 3}
)";

constexpr std::string_view kJson = R"({
  "do": [
    {"a": {"then": "b", "set": {"s": "quoted", "q": "7", "z": null, "b": true, "e": 1000.0,
                                "f": 2.5, "n": 1, "h": 16, "neg": -3}}},
    {"b": {"wait": {"seconds": 3}}}
  ],
  "document": {"version": "0.1.0", "name": "wf", "namespace": "test", "dsl": "1.0.0"}
})";

TEST(CanonicalTest, YamlAndEquivalentJsonHashTheSame) {
  auto yaml = MustLoad(kYaml);
  auto json = MustLoad(kJson);
  EXPECT_EQ(yaml->canonical, json->canonical);
  EXPECT_EQ(yaml->hash, json->hash);
  EXPECT_EQ(yaml->hash, Sha256::Of(yaml->canonical));
}

TEST(CanonicalTest, TheCanonicalFormIsSortedCompactJson) {
  auto definition = MustLoad(kYaml);
  EXPECT_EQ(definition->canonical,
            R"({"do":[{"a":{"set":{"b":true,"e":1000.0,"f":2.5,"h":16,"n":1,"neg":-3,)"
            R"("q":"7","s":"quoted","z":null},"then":"b"}},{"b":{"wait":{"seconds":3}}}],)"
            R"("document":{"dsl":"1.0.0","name":"wf","namespace":"test","version":"0.1.0"}})");
}

TEST(CanonicalTest, KeyOrderAndStyleDoNotChangeTheHash) {
  auto a = MustLoad(
      "document: {dsl: '1.0.0', namespace: t, name: w, version: '1.0.0'}\n"
      "do: [{x: {wait: PT1S}}]\n");
  auto b = MustLoad(
      "do:\n  - x:\n      wait: \"PT1S\"\ndocument:\n  version: \"1.0.0\"\n"
      "  name: w\n  namespace: t\n  dsl: 1.0.0\n");
  EXPECT_EQ(a->hash, b->hash);
}

TEST(CanonicalTest, DifferentDefinitionsHashDifferently) {
  auto a = MustLoad(
      "document: {dsl: '1.0.0', namespace: t, name: w, version: '1.0.0'}\n"
      "do: [{x: {wait: PT1S}}]\n");
  auto b = MustLoad(
      "document: {dsl: '1.0.0', namespace: t, name: w, version: '1.0.0'}\n"
      "do: [{x: {wait: PT2S}}]\n");
  auto c = MustLoad(
      "document: {dsl: '1.0.0', namespace: t, name: w, version: '1.0.0'}\n"
      "do: [{x: {set: {v: '1'}}}]\n");
  auto d = MustLoad(
      "document: {dsl: '1.0.0', namespace: t, name: w, version: '1.0.0'}\n"
      "do: [{x: {set: {v: 1}}}]\n");
  EXPECT_NE(a->hash, b->hash);
  EXPECT_NE(c->hash, d->hash);  // the string '1' and the number 1 differ
}

TEST(CanonicalTest, LoadCanonicalDefinitionRoundTrips) {
  for (std::string text : {std::string(kYaml), std::string(kJson), ReadTestData("full.yaml")}) {
    auto original = MustLoad(text);
    auto reloaded = LoadCanonicalDefinition(original->canonical);
    ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
    EXPECT_EQ((*reloaded)->hash, original->hash);
    EXPECT_EQ((*reloaded)->canonical, original->canonical);
    EXPECT_EQ((*reloaded)->tasks.size(), original->tasks.size());
    EXPECT_EQ((*reloaded)->source_name.rfind("sha256:", 0), 0u);
    for (size_t i = 0; i < original->tasks.size(); ++i) {
      EXPECT_EQ((*reloaded)->tasks[i]->path, original->tasks[i]->path);
      EXPECT_EQ((*reloaded)->tasks[i]->id, original->tasks[i]->id);
    }
  }
}

TEST(CanonicalTest, StringsThatNeedEscapingRoundTrip) {
  auto definition = MustLoad(R"({"document": {"dsl": "1.0.0", "namespace": "n", "name": "x",
      "version": "1.0.0"}, "do": [{"a": {"set": {"s": "tab\t nl\n quote\" bs\\ ctl\u0001 \u00e9 😀 slash\/"}}}]})");
  auto reloaded = LoadCanonicalDefinition(definition->canonical);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_EQ((*reloaded)->hash, definition->hash);
  EXPECT_EQ(std::get<SetBody>((*reloaded)->do_[0].body).value.at("s"),
            "tab\t nl\n quote\" bs\\ ctl\x01 \xC3\xA9 \xF0\x9F\x98\x80 slash/");
}

TEST(CanonicalTest, NonCanonicalBytesAreRefused) {
  auto definition = MustLoad(kYaml);
  std::string spaced = definition->canonical;
  spaced.insert(1, " ");
  auto reloaded = LoadCanonicalDefinition(spaced);
  ASSERT_FALSE(reloaded.ok());
  EXPECT_TRUE(cairn::testing::HasSubstr(reloaded.status().message(), "not in canonical form"));
  EXPECT_FALSE(LoadCanonicalDefinition(std::string(kYaml)).ok());
  // A canonical document that fails the checks fails them again.
  auto invalid = LoadCanonicalDefinition(R"({"do":[{"a":{"fork":{}}}],"document":{}})");
  ASSERT_FALSE(invalid.ok());
  EXPECT_TRUE(cairn::testing::HasSubstr(invalid.status().message(), "sha256:"));
  EXPECT_TRUE(cairn::testing::HasSubstr(invalid.status().message(), "`fork` tasks"));
}

}  // namespace
}  // namespace cairn::engine
