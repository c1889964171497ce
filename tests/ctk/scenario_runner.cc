#include "tests/ctk/scenario_runner.h"

#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <utility>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "base/json.h"
#include "engine/core/engine.h"
#include "engine/definition/definition.h"
#include "replay/replayer.h"
#include "storage/event.h"
#include "tests/ctk/ows_services.h"
#include "tests/ctk/yaml_value.h"
#include "tests/support/policies.h"
#include "tests/support/temp_dir.h"

namespace cairn::ctk {
namespace {

using namespace std::chrono_literals;
using engine::Engine;
using storage::RunStatus;

// Longest a scenario's run may take. The CTK's workflows finish in milliseconds; this only
// bounds a hang.
constexpr std::chrono::milliseconds kRunTimeout = 60s;
// Events read back from a run for the task-order steps and diagnostics.
constexpr size_t kHistoryEventsMax = 10'000;

// The outcome of one step.
struct StepResult {
  ScenarioOutcome::Kind kind = ScenarioOutcome::Kind::kPassed;
  std::string message;
  std::string short_reason;

  static StepResult Ok() { return {}; }
  static StepResult Fail(std::string message) {
    return {ScenarioOutcome::Kind::kFailed, std::move(message), ""};
  }
  bool ok() const { return kind == ScenarioOutcome::Kind::kPassed; }
};

std::string Describe(const storage::ErrorInfo& error) {
  Json fields = Json::object();
  if (!error.type.empty()) fields["type"] = error.type;
  if (error.status != 0) fields["status"] = error.status;
  if (!error.title.empty()) fields["title"] = error.title;
  if (!error.detail.empty()) fields["detail"] = error.detail;
  if (!error.instance.empty()) fields["instance"] = error.instance;
  return DumpJson(fields);
}

// The value at a dotted path ("content.id"); array elements by decimal index. Null if
// some part is missing.
const Json* Lookup(const Json& root, const std::string& path) {
  const Json* at = &root;
  std::stringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '.')) {
    if (at->is_object()) {
      auto it = at->find(part);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array() && !part.empty() &&
               part.find_first_not_of("0123456789") == std::string::npos && part.size() < 10 &&
               std::stoul(part) < at->size()) {
      at = &(*at)[std::stoul(part)];
    } else {
      return nullptr;
    }
  }
  return at;
}

// 'a', 'b.c' -> {a, b.c}; empty when the list is malformed.
std::vector<std::string> QuotedList(const std::string& text) {
  static const std::regex kItem("\\s*'([^']*)'\\s*(,|$)");
  std::vector<std::string> items;
  auto begin = std::sregex_iterator(text.begin(), text.end(), kItem);
  size_t covered = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    if (static_cast<size_t>(it->position()) != covered) return {};
    items.push_back((*it)[1]);
    covered += it->length();
  }
  return covered == text.size() ? items : std::vector<std::string>{};
}

// Where an HTTP endpoint URI connects: "host:port" (host lower case), or "" when the URI
// is not a literal absolute http(s) URI.
std::string ConnectTarget(const std::string& uri) {
  static const std::regex kAbsolute("(https?)://([^/?#]*)([/?#].*)?", std::regex::icase);
  std::smatch match;
  if (uri.find("${") != std::string::npos || !std::regex_match(uri, match, kAbsolute)) return "";
  std::string scheme = match[1];
  std::string authority = match[2];
  authority =
      authority.substr(authority.rfind('@') == std::string::npos ? 0 : authority.rfind('@') + 1);
  for (char& c : authority) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (authority.empty() || authority.front() == '[') return "";
  if (authority.find(':') != std::string::npos) return authority;
  return authority + (scheme.size() == 5 ? ":443" : ":80");
}

class ScenarioRun {
 public:
  ScenarioRun(const Feature& feature, const Scenario& scenario)
      : feature_(feature), scenario_(scenario) {}

  ScenarioOutcome Run() {
    std::vector<std::function<StepResult()>> bound;
    for (const Step& step : scenario_.steps) {
      StepResult result = Bind(step, &bound);
      if (!result.ok()) return Finish(step, result);
    }
    for (size_t i = 0; i < bound.size(); ++i) {
      StepResult result = bound[i]();
      if (!result.ok()) return Finish(scenario_.steps[i], result);
    }
    return {};
  }

 private:
  using Handler = StepResult (ScenarioRun::*)(const Step&, const std::smatch&);
  struct StepDef {
    std::regex pattern;
    bool doc_string;  // the step takes a doc string
    Handler handler;
  };

  static const std::vector<StepDef>& Vocabulary() {
    static const std::vector<StepDef> steps = {
        {std::regex("a workflow with definition:"), true, &ScenarioRun::GivenDefinition},
        {std::regex("(?:given )?the workflow input is:"), true, &ScenarioRun::GivenInput},
        {std::regex("the workflow is executed"), false, &ScenarioRun::WhenExecuted},
        {std::regex("the workflow should complete"), false, &ScenarioRun::ThenCompletes},
        {std::regex("the workflow should complete with output:"), true, &ScenarioRun::ThenOutputIs},
        {std::regex("the workflow should fault"), false, &ScenarioRun::ThenFaults},
        {std::regex("the workflow should fault with error:"), true, &ScenarioRun::ThenErrorIs},
        {std::regex("the workflow should cancel"), false, &ScenarioRun::ThenCancels},
        {std::regex("the workflow output should have properties (.+)"), false,
         &ScenarioRun::ThenHasProperties},
        {std::regex("the workflow output should have a '([^']+)' property with value:"), true,
         &ScenarioRun::ThenPropertyIs},
        {std::regex(
             "the workflow output should have a '([^']+)' property containing (\\d+) items?"),
         false, &ScenarioRun::ThenPropertyCount},
        {std::regex("(\\S+) should run (first|last)"), false, &ScenarioRun::ThenRanAt},
        {std::regex("(\\S+) should run (before|after) (\\S+)"), false,
         &ScenarioRun::ThenRanRelative},
        {std::regex("(\\S+) should (complete|fault)"), false, &ScenarioRun::ThenTaskEnded},
    };
    return steps;
  }

  // Finds the one definition matching `step` and appends a call to it to `bound`.
  StepResult Bind(const Step& step, std::vector<std::function<StepResult()>>* bound) {
    for (const StepDef& def : Vocabulary()) {
      auto match = std::make_shared<std::smatch>();
      if (!std::regex_match(step.text, *match, def.pattern)) continue;
      if (def.doc_string != step.doc_string.has_value()) {
        return StepResult::Fail(def.doc_string ? "this step needs a doc string"
                                               : "this step takes no doc string");
      }
      Handler handler = def.handler;
      bound->push_back([this, &step, match, handler] { return (this->*handler)(step, *match); });
      return StepResult::Ok();
    }
    return StepResult::Fail("undefined step (not in the CTK vocabulary this runner knows)");
  }

  ScenarioOutcome Finish(const Step& step, const StepResult& result) {
    std::string where = feature_.source + ":" + std::to_string(step.line) + ": " + step.keyword +
                        " " + step.text + "\n";
    if (result.kind == ScenarioOutcome::Kind::kSkipped) {
      return {result.kind, where + result.message, result.short_reason};
    }
    return {result.kind, where + result.message + Diagnostics(), ""};
  }

  // ---- arrange ----

  Status OpenEngine() {
    if (engine_) return Status::Ok();
    temp_dir_ = std::make_unique<testing::TempDir>("cairn-ctk-");
    Result<std::unique_ptr<OwsServices>> services = OwsServices::Start();
    if (!services.ok()) return services.status();
    services_ = std::move(*services);
    engine::EngineOptions options;
    options.policy = cairn::testing::AllowAllPolicy();
    options.data_dir = temp_dir_->Sub("data");
    options.durability = storage::Durability::kBuffered;
    options.clock = &clock_;
    options.threads = 2;
    options.extra_ca_pem = services_->CertificatePem();
    options.http_connect_overrides = services_->ConnectOverrides();
    options.owner_description = "cairn ctk_test";
    Result<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
    if (!engine.ok()) return engine.status();
    engine_ = std::move(*engine);
    return Status::Ok();
  }

  StepResult GivenDefinition(const Step& step, const std::smatch&) {
    if (Status status = OpenEngine(); !status.ok()) {
      return StepResult::Fail("cannot set up the engine: " + status.ToString());
    }
    // In place, so that the loader's positions are the feature file's.
    const std::string text = step.doc_string->InPlace();
    Result<engine::WorkflowRef> applied = engine_->ApplyDefinition(text, feature_.source);
    if (!applied.ok()) {
      std::string reason = UnsupportedFeatureReason(applied.status());
      if (reason.empty()) {
        return StepResult::Fail("the definition was refused: " + applied.status().ToString());
      }
      return {ScenarioOutcome::Kind::kSkipped,
              "outside cairn's subset: " + applied.status().message(), reason};
    }
    workflow_ = *applied;
    return CheckStaysOnThisMachine(text);
  }

  // Every HTTP call of the definition must go to a host the stub serves: the runner never
  // sends traffic off this machine, whatever a feature file says.
  StepResult CheckStaysOnThisMachine(const std::string& text) {
    Result<std::shared_ptr<const engine::Definition>> definition =
        engine::LoadDefinition(text, feature_.source);
    if (!definition.ok()) return StepResult::Fail("reloading: " + definition.status().ToString());
    const std::map<std::string, std::string> overrides = services_->ConnectOverrides();
    for (const engine::Task* task : (*definition)->tasks) {
      const auto* call = std::get_if<engine::CallBody>(&task->body);
      if (call == nullptr || call->kind != engine::CallBody::Kind::kHttp) continue;
      const Json& endpoint = call->with.is_object() ? call->with.value("endpoint", Json()) : Json();
      const Json& uri = endpoint.is_object() ? endpoint.value("uri", Json()) : endpoint;
      std::string target = uri.is_string() ? ConnectTarget(uri.get<std::string>()) : "";
      if (target.empty()) {
        return StepResult::Fail(task->path + ": cannot tell where this HTTP call goes (" +
                                DumpJson(uri) + "); the runner only runs calls to " +
                                "literal URIs it serves");
      }
      bool loopback = target.rfind("127.0.0.1:", 0) == 0 || target.rfind("localhost:", 0) == 0;
      if (!loopback && overrides.count(target) == 0) {
        return StepResult::Fail(task->path + ": calls " + target +
                                ", which the stub does not serve: refusing to leave this machine");
      }
    }
    return StepResult::Ok();
  }

  StepResult GivenInput(const Step& step, const std::smatch&) {
    Result<Json> input = DocValue(step);
    if (!input.ok()) return StepResult::Fail(input.status().ToString());
    input_ = std::move(*input);
    return StepResult::Ok();
  }

  // ---- act ----

  StepResult WhenExecuted(const Step&, const std::smatch&) {
    if (!workflow_) return StepResult::Fail("no workflow was defined before this step");
    engine::StartRequest request;
    request.workflow = "sha256:" + workflow_->hash.Hex();
    request.input = input_;
    request.started_by = {"ctk_test", "test"};
    Result<engine::StartResult> started = engine_->Start(std::move(request));
    if (!started.ok()) return StepResult::Fail("Start: " + started.status().ToString());
    run_id_ = started->run_id;
    Result<engine::RunInfo> info = engine_->Wait(run_id_, kRunTimeout);
    ReadHistory();
    if (!info.ok()) return StepResult::Fail("Wait: " + info.status().ToString());
    run_ = std::move(*info);
    // Every conformance run must replay from its log with no divergence (DESIGN.md §9).
    replay::Replayer replayer(engine_->store());
    Result<replay::ReplayResult> replayed = replayer.Replay(run_id_);
    if (!replayed.ok()) return StepResult::Fail("Replay: " + replayed.status().ToString());
    if (replayed->divergence) {
      return StepResult::Fail("Replay: " + replay::DescribeDivergence(*replayed->divergence) +
                              "; recorded " + DumpJson(replayed->divergence->recorded) +
                              "; produced " + DumpJson(replayed->divergence->produced));
    }
    return StepResult::Ok();
  }

  void ReadHistory() {
    Result<std::vector<storage::Event>> history =
        engine_->store().ReadHistory(run_id_, 0, kHistoryEventsMax);
    if (history.ok()) history_ = std::move(*history);
  }

  // ---- assert: the run ----

  StepResult ExpectStatus(RunStatus wanted) {
    if (!run_) return StepResult::Fail("the workflow was not executed before this step");
    if (run_->header.status == wanted) return StepResult::Ok();
    std::string seen = "expected the run to be " + std::string(storage::Name(wanted)) +
                       ", but it is " + std::string(storage::Name(run_->header.status)) +
                       " (stop reason " + std::string(storage::Name(run_->header.stop_reason)) +
                       ")";
    if (!run_->error.empty()) seen += "; error " + Describe(run_->error);
    if (!run_->waiting_on.empty()) seen += "; waiting on " + run_->waiting_on;
    return StepResult::Fail(seen);
  }

  StepResult ThenCompletes(const Step&, const std::smatch&) {
    return ExpectStatus(RunStatus::kCompleted);
  }
  StepResult ThenFaults(const Step&, const std::smatch&) {
    return ExpectStatus(RunStatus::kFailed);
  }
  StepResult ThenCancels(const Step&, const std::smatch&) {
    return ExpectStatus(RunStatus::kCancelled);
  }

  StepResult ThenOutputIs(const Step& step, const std::smatch&) {
    StepResult completed = ExpectOutput();
    if (!completed.ok()) return completed;
    Result<Json> expected = DocValue(step);
    if (!expected.ok()) return StepResult::Fail(expected.status().ToString());
    if (*run_->output == *expected) return StepResult::Ok();
    return StepResult::Fail("output differs\n  expected: " + DumpJson(*expected) +
                            "\n  actual:   " + DumpJson(*run_->output));
  }

  StepResult ThenErrorIs(const Step& step, const std::smatch&) {
    StepResult faulted = ExpectStatus(RunStatus::kFailed);
    if (!faulted.ok()) return faulted;
    Result<Json> expected = DocValue(step);
    if (!expected.ok()) return StepResult::Fail(expected.status().ToString());
    if (!expected->is_object()) return StepResult::Fail("the expected error is not a mapping");
    const storage::ErrorInfo& error = run_->error;
    const Json actual = {{"type", error.type},
                         {"status", error.status},
                         {"title", error.title},
                         {"detail", error.detail},
                         {"instance", error.instance}};
    std::string differences;
    for (const auto& [field, value] : expected->items()) {
      if (!actual.contains(field)) {
        differences += "\n  '" + field + "': not a field of an OWS error";
      } else if (actual[field] != value) {
        differences += "\n  '" + field + "': expected " + DumpJson(value) + ", actual " +
                       DumpJson(actual[field]);
      }
    }
    if (differences.empty()) return StepResult::Ok();
    return StepResult::Fail("the error differs (" + Describe(error) + "):" + differences);
  }

  // ---- assert: the output ----

  StepResult ExpectOutput() {
    StepResult completed = ExpectStatus(RunStatus::kCompleted);
    if (!completed.ok()) return completed;
    if (!run_->output) return StepResult::Fail("the run completed without an output");
    return StepResult::Ok();
  }

  StepResult ThenHasProperties(const Step&, const std::smatch& match) {
    std::vector<std::string> paths = QuotedList(match[1].str());
    if (paths.empty()) return StepResult::Fail("expected a list of quoted properties: 'a', 'b.c'");
    StepResult completed = ExpectOutput();
    if (!completed.ok()) return completed;
    std::string missing;
    for (const std::string& path : paths) {
      if (Lookup(*run_->output, path) == nullptr)
        missing += (missing.empty() ? "'" : ", '") + path + "'";
    }
    if (missing.empty()) return StepResult::Ok();
    return StepResult::Fail("the output has no " + missing + ": " + DumpJson(*run_->output));
  }

  StepResult ThenPropertyIs(const Step& step, const std::smatch& match) {
    StepResult completed = ExpectOutput();
    if (!completed.ok()) return completed;
    Result<Json> expected = DocValue(step);
    if (!expected.ok()) return StepResult::Fail(expected.status().ToString());
    const Json* actual = Lookup(*run_->output, match[1].str());
    if (actual == nullptr) {
      return StepResult::Fail("the output has no '" + match[1].str() +
                              "': " + DumpJson(*run_->output));
    }
    if (*actual == *expected) return StepResult::Ok();
    return StepResult::Fail("'" + match[1].str() + "' differs\n  expected: " + DumpJson(*expected) +
                            "\n  actual:   " + DumpJson(*actual));
  }

  StepResult ThenPropertyCount(const Step&, const std::smatch& match) {
    StepResult completed = ExpectOutput();
    if (!completed.ok()) return completed;
    const Json* actual = Lookup(*run_->output, match[1].str());
    if (actual == nullptr || !(actual->is_array() || actual->is_object())) {
      return StepResult::Fail("the output has no array or object '" + match[1].str() +
                              "': " + DumpJson(*run_->output));
    }
    if (std::to_string(actual->size()) == match[2].str()) return StepResult::Ok();
    return StepResult::Fail("'" + match[1].str() + "' has " + std::to_string(actual->size()) +
                            " items, expected " + match[2].str() + ": " + DumpJson(*actual));
  }

  // ---- assert: tasks, from the recorded events ----

  // Seq of the first event of `kind` for the task `name` (completed: with `status`).
  std::optional<uint64_t> FirstEvent(
      const std::string& name, bool routed,
      storage::TaskCompleted::Status status = storage::TaskCompleted::Status::kCompleted) const {
    for (const storage::Event& event : history_) {
      if (const auto* body = std::get_if<storage::TaskRouted>(&event.body)) {
        if (routed && body->task_name == name) return event.seq.value();
      } else if (const auto* done = std::get_if<storage::TaskCompleted>(&event.body)) {
        if (!routed && done->task_name == name && done->status == status) return event.seq.value();
      }
    }
    return std::nullopt;
  }

  std::vector<std::string> RoutedOrder() const {
    std::vector<std::string> order;
    for (const storage::Event& event : history_) {
      if (const auto* body = std::get_if<storage::TaskRouted>(&event.body))
        order.push_back(body->task_name);
    }
    return order;
  }

  StepResult ThenRanAt(const Step&, const std::smatch& match) {
    if (!run_) return StepResult::Fail("the workflow was not executed before this step");
    std::vector<std::string> order = RoutedOrder();
    std::string list;
    for (const std::string& name : order) list += (list.empty() ? "" : ", ") + name;
    if (order.empty()) return StepResult::Fail("no task ran");
    const std::string& seen = match[2].str() == "first" ? order.front() : order.back();
    if (seen == match[1].str()) return StepResult::Ok();
    return StepResult::Fail(match[1].str() + " did not run " + match[2].str() +
                            "; tasks in the order they started: " + list);
  }

  StepResult ThenRanRelative(const Step&, const std::smatch& match) {
    if (!run_) return StepResult::Fail("the workflow was not executed before this step");
    bool after = match[2].str() == "after";
    // "A after B": A started after B completed. "A before B": A completed before B started.
    const std::string earlier = (after ? match[3] : match[1]).str();
    const std::string later = (after ? match[1] : match[3]).str();
    std::optional<uint64_t> earlier_done = FirstEvent(earlier, false);
    std::optional<uint64_t> later_started = FirstEvent(later, true);
    if (!earlier_done) return StepResult::Fail(earlier + " never completed");
    if (!later_started) return StepResult::Fail(later + " never ran");
    if (*earlier_done < *later_started) return StepResult::Ok();
    return StepResult::Fail(later + " started (event " + std::to_string(*later_started) +
                            ") before " + earlier + " completed (event " +
                            std::to_string(*earlier_done) + ")");
  }

  StepResult ThenTaskEnded(const Step&, const std::smatch& match) {
    if (!run_) return StepResult::Fail("the workflow was not executed before this step");
    auto status = match[2].str() == "complete" ? storage::TaskCompleted::Status::kCompleted
                                               : storage::TaskCompleted::Status::kFaulted;
    if (FirstEvent(match[1].str(), false, status)) return StepResult::Ok();
    return StepResult::Fail(match[1].str() + " has no task_completed event with status " +
                            (match[2].str() == "complete" ? "completed" : "faulted"));
  }

  // ---- diagnostics ----

  // A step's doc string as a JSON value; errors positioned in the feature file.
  Result<Json> DocValue(const Step& step) const {
    return YamlToJson(step.doc_string->InPlace(), feature_.source);
  }

  std::string Diagnostics() const {
    std::string out;
    if (!history_.empty()) out += "\nevents of run " + run_id_.str() + ":";
    for (const storage::Event& event : history_) out += "\n  " + DescribeEvent(event);
    if (services_) {
      std::vector<testing::StubRequest> requests = services_->Requests();
      if (!requests.empty()) out += "\nHTTP requests served by the stub:";
      for (const testing::StubRequest& request : requests) {
        out += "\n  " + request.method + " " + request.Header("host") + " " + request.target;
      }
    }
    return out;
  }

  static std::string PayloadText(const storage::Payload& payload) {
    switch (payload.kind) {
      case storage::Payload::Kind::kNone:
        return "";
      case storage::Payload::Kind::kJson:
        return " " + payload.json.substr(0, 300);
      case storage::Payload::Kind::kBlob:
        return " blob:" + payload.blob.Hex().substr(0, 12);
    }
    return "";
  }

  static std::string DescribeEvent(const storage::Event& event) {
    std::string line = std::to_string(event.seq.value()) + " " +
                       std::string(storage::KindName(event.body)) + " " + event.task_path;
    if (const auto* routed = std::get_if<storage::TaskRouted>(&event.body)) {
      line += " [" + routed->task_name + "]";
    } else if (const auto* done = std::get_if<storage::TaskCompleted>(&event.body)) {
      static constexpr const char* kStatus[] = {"completed", "faulted", "skipped"};
      line += " [" + done->task_name + "] " + kStatus[static_cast<int>(done->status)];
      if (!done->then.empty()) line += " then=" + done->then;
      line += done->error.empty() ? PayloadText(done->output) : " error " + Describe(done->error);
    } else if (const auto* outcome = std::get_if<storage::EffectOutcome>(&event.body)) {
      line += outcome->error.empty() ? PayloadText(outcome->result)
                                     : " error " + Describe(outcome->error);
    } else if (const auto* intent = std::get_if<storage::EffectIntent>(&event.body)) {
      line += " " + intent->tool + PayloadText(intent->arguments);
    } else if (const auto* stopped = std::get_if<storage::RunStopped>(&event.body)) {
      line += " " + std::string(storage::Name(stopped->reason));
      line += stopped->error.empty() ? PayloadText(stopped->output)
                                     : " error " + Describe(stopped->error);
    }
    return line;
  }

  const Feature& feature_;
  const Scenario& scenario_;
  SystemClock clock_;
  // Destroyed in reverse: the engine closes before the stub it calls and the directory
  // it writes go away.
  std::unique_ptr<testing::TempDir> temp_dir_;
  std::unique_ptr<OwsServices> services_;
  std::unique_ptr<Engine> engine_;
  std::optional<engine::WorkflowRef> workflow_;
  Json input_ = Json::object();
  RunId run_id_;
  std::optional<engine::RunInfo> run_;
  std::vector<storage::Event> history_;
};

}  // namespace

std::string UnsupportedFeatureReason(const Status& refusal) {
  if (refusal.code() != StatusCode::kInvalidArgument) return "";
  std::set<std::string> reasons;
  std::stringstream lines(refusal.message());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.find(" not supported") == std::string::npos) return "";
    // "FILE:LINE:COL: /do/0/task/fork: `fork` tasks are not supported (supported: ...)"
    size_t path = line.find(": /");
    size_t what = path == std::string::npos ? std::string::npos : line.find(": ", path + 2);
    std::string reason = what == std::string::npos ? line : line.substr(what + 2);
    reasons.insert(reason.substr(0, reason.find(" (")));
  }
  std::string joined;
  for (const std::string& reason : reasons) joined += (joined.empty() ? "" : "; ") + reason;
  return joined;
}

ScenarioOutcome RunScenario(const Feature& feature, const Scenario& scenario) {
  try {
    return ScenarioRun(feature, scenario).Run();
  } catch (const std::exception& e) {
    return {ScenarioOutcome::Kind::kFailed, "exception: " + std::string(e.what()), ""};
  }
}

}  // namespace cairn::ctk
