#include "tests/ctk/gherkin.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

namespace cairn::ctk {
namespace {

constexpr std::string_view kWhitespace = " \t";

std::string_view Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(kWhitespace);
  return text.substr(begin, end - begin + 1);
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Replaces every `from` in `text` with `to`.
std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

// Keywords of full Gherkin that this subset refuses, with why.
constexpr std::array<std::string_view, 6> kRefusedKeywords = {
    "Background:", "Scenario Outline:", "Scenario Template:", "Examples:", "Scenarios:", "Rule:"};
constexpr std::array<std::string_view, 6> kStepKeywords = {"Given", "When", "Then",
                                                           "And",   "But",  "*"};

class Parser {
 public:
  Parser(std::string_view text, std::string_view source)
      : lines_(SplitLines(text)), source_(source) {
    feature_.source = std::string(source);
  }

  Result<Feature> Run() {
    for (index_ = 0; index_ < lines_.size(); ++index_) {
      Status status = ParseLine(lines_[index_]);
      if (!status.ok()) return status;
    }
    if (feature_.line == 0) return Error(1, "no `Feature:` line");
    return std::move(feature_);
  }

 private:
  int LineNumber() const { return static_cast<int>(index_) + 1; }

  Status Error(int line, std::string_view what) const {
    return Status::InvalidArgument(source_ + ":" + std::to_string(line) + ": " + std::string(what));
  }

  Status ParseLine(std::string_view raw) {
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') return Status::Ok();
    if (line.front() == '@') return ParseTags(line);
    if (StartsWith(line, "Feature:")) return StartFeature(line.substr(8));
    for (std::string_view keyword : kRefusedKeywords) {
      if (StartsWith(line, keyword)) {
        return Error(LineNumber(), "`" + std::string(keyword.substr(0, keyword.size() - 1)) +
                                       "` is not supported by this Gherkin subset");
      }
    }
    if (StartsWith(line, "Scenario:")) return StartScenario(line.substr(9));
    if (StartsWith(line, "Example:")) return StartScenario(line.substr(8));
    if (line.front() == '|') return Error(LineNumber(), "data tables are not supported");
    if (StartsWith(line, "\"\"\"") || StartsWith(line, "```")) return ParseDocString(raw);
    if (std::optional<Step> step = MatchStep(line)) return AddStep(std::move(*step));
    return AddFreeText(line);
  }

  Status ParseTags(std::string_view line) {
    while (!line.empty()) {
      size_t end = line.find_first_of(kWhitespace);
      std::string_view tag = line.substr(0, end);
      if (tag.front() != '@')
        return Error(LineNumber(), "expected tags, got '" + std::string(tag) + "'");
      pending_tags_.emplace_back(tag);
      line = end == std::string_view::npos ? std::string_view() : Trim(line.substr(end));
    }
    return Status::Ok();
  }

  Status StartFeature(std::string_view name) {
    if (feature_.line != 0) return Error(LineNumber(), "a second `Feature:` in one file");
    feature_.name = std::string(Trim(name));
    feature_.line = LineNumber();
    feature_.tags = std::exchange(pending_tags_, {});
    return Status::Ok();
  }

  Status StartScenario(std::string_view name) {
    if (feature_.line == 0) return Error(LineNumber(), "`Scenario:` before `Feature:`");
    Scenario scenario;
    scenario.name = std::string(Trim(name));
    scenario.line = LineNumber();
    scenario.tags = std::exchange(pending_tags_, {});
    if (scenario.name.empty()) return Error(LineNumber(), "a scenario without a name");
    feature_.scenarios.push_back(std::move(scenario));
    return Status::Ok();
  }

  static std::optional<Step> MatchStep(std::string_view line) {
    for (std::string_view keyword : kStepKeywords) {
      if (!StartsWith(line, keyword) || line.size() <= keyword.size()) continue;
      if (line[keyword.size()] != ' ' && line[keyword.size()] != '\t') continue;
      return Step{std::string(keyword), std::string(Trim(line.substr(keyword.size()))), 0, {}};
    }
    return std::nullopt;
  }

  Status AddStep(Step step) {
    if (feature_.scenarios.empty()) {
      return Error(LineNumber(), "a step outside a scenario: '" + step.text + "'");
    }
    step.line = LineNumber();
    feature_.scenarios.back().steps.push_back(std::move(step));
    return Status::Ok();
  }

  // Text that is not a keyword: the feature's description, or a scenario's before its
  // first step. Anywhere else it is a mistake (a misspelt keyword, say).
  Status AddFreeText(std::string_view line) {
    if (feature_.line == 0)
      return Error(LineNumber(), "text before `Feature:`: '" + std::string(line) + "'");
    if (feature_.scenarios.empty()) {
      if (!feature_.description.empty()) feature_.description += "\n";
      feature_.description += line;
      return Status::Ok();
    }
    if (feature_.scenarios.back().steps.empty()) return Status::Ok();
    return Error(LineNumber(), "expected a step, a doc string or a new scenario, got '" +
                                   std::string(line) + "'");
  }

  Status ParseDocString(std::string_view raw) {
    const int opening = LineNumber();
    if (feature_.scenarios.empty() || feature_.scenarios.back().steps.empty()) {
      return Error(opening, "a doc string outside a step");
    }
    Step& step = feature_.scenarios.back().steps.back();
    if (step.doc_string) return Error(opening, "a second doc string for one step");
    size_t indent = raw.find_first_not_of(kWhitespace);
    std::string_view fence = raw.substr(indent, 3);
    DocString doc{std::string(Trim(raw.substr(indent + 3))), "", opening,
                  static_cast<int>(indent) + 1};
    const char mark = fence.front();
    const std::string escaped = {'\\', mark, '\\', mark, '\\', mark};
    std::string content;
    for (++index_; index_ < lines_.size(); ++index_) {
      std::string_view line = lines_[index_];
      if (Trim(line) == fence) {
        doc.content = ReplaceAll(std::move(content), escaped, fence);
        step.doc_string = std::move(doc);
        return Status::Ok();
      }
      // Remove the fence's indentation, and no more; a line indented less loses only its
      // own leading whitespace.
      size_t strip = std::min(indent, line.find_first_not_of(kWhitespace));
      if (index_ > static_cast<size_t>(opening)) content += "\n";
      content += line.substr(std::min(strip, line.size()));
    }
    return Error(opening,
                 "a doc string that is never closed (expected " + std::string(fence) + ")");
  }

  std::vector<std::string_view> lines_;
  std::string source_;
  size_t index_ = 0;
  Feature feature_;
  std::vector<std::string> pending_tags_;
};

}  // namespace

std::string DocString::InPlace() const {
  std::string text(static_cast<size_t>(line), '\n');
  const std::string indent(static_cast<size_t>(column > 0 ? column - 1 : 0), ' ');
  for (std::string_view rest = content;;) {
    size_t end = rest.find('\n');
    std::string_view one = rest.substr(0, end);
    if (!one.empty()) text += indent;
    text += one;
    text += '\n';
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return text;
}

Result<Feature> ParseFeature(std::string_view text, std::string_view source) {
  return Parser(text, source).Run();
}

}  // namespace cairn::ctk
