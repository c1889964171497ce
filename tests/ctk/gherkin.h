// A parser for the subset of Gherkin the OWS conformance kit (CTK) is written in.
//
// Supported: one `Feature:` per file with its free-text description, `Scenario:` (or
// `Example:`) blocks, steps (`Given`, `When`, `Then`, `And`, `But`, `*`), doc strings
// fenced with `"""` or ``` and an optional media type (`"""yaml`), `#` comment lines, `@tag`
// lines and blank lines. A doc string loses the indentation of its opening fence (as in
// Cucumber), and an escaped fence inside it (\"\"\") is unescaped.
//
// Refused by name, never ignored (the CTK does not use them, and skipping them would run
// a scenario other than the one written): `Background`, `Scenario Outline` / `Examples`,
// `Rule`, data tables, text after a step that is not a doc string, a second `Feature`.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cairn::ctk {

struct DocString {
  std::string media_type;  // "yaml" for """yaml; "" when none is given
  std::string content;     // the lines between the fences, indentation removed
  int line = 0;            // 1-based line of the opening fence
  int column = 0;          // 1-based column of the opening fence

  // `content` placed where it is in the file: `line` newlines, then each line indented
  // back by the fence's indentation. A YAML parser's line and column for this text are
  // those of the feature file (lines indented less than the fence excepted).
  std::string InPlace() const;
};

struct Step {
  std::string keyword;  // as written: "Given", "When", "Then", "And", "But" or "*"
  std::string text;     // the rest of the line, trimmed
  int line = 0;
  std::optional<DocString> doc_string;
};

struct Scenario {
  std::string name;
  int line = 0;
  std::vector<std::string> tags;  // "@slow", in the order written
  std::vector<Step> steps;
};

struct Feature {
  std::string source;  // the name given to ParseFeature (a file name)
  std::string name;
  std::string description;  // the free text after `Feature:`, lines trimmed, "\n"-joined
  int line = 0;
  std::vector<std::string> tags;
  std::vector<Scenario> scenarios;
};

// Parses one feature file. On error: kInvalidArgument "SOURCE:LINE: what is wrong", for
// the first problem found.
Result<Feature> ParseFeature(std::string_view text, std::string_view source);

}  // namespace cairn::ctk
