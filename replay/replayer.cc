#include "replay/replayer.h"

#include <map>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "base/limits.h"
#include "engine/core/run_state.h"
#include "engine/expr/expression.h"
#include "policy/policy.h"
#include "replay/counterfactual_impl.h"
#include "storage/event_json.h"

namespace cairn::replay {
namespace {

using engine::StepInput;
using engine::StepOutput;
using engine::ToolSpec;

// The events the engine feeds to the interpreter (everything else is produced by it).
bool IsInput(const storage::EventBody& body) {
  return std::holds_alternative<storage::RunStarted>(body) ||
         std::holds_alternative<storage::EffectOutcome>(body) ||
         std::holds_alternative<storage::TimerFired>(body) ||
         std::holds_alternative<storage::EventReceived>(body) ||
         std::holds_alternative<storage::ControlRequested>(body) ||
         std::holds_alternative<storage::ApprovalResolved>(body) ||
         std::holds_alternative<storage::AgentDecided>(body);
}

// The engine spills large inline payloads to blobs when it records a transition; the
// produced side gets the same treatment so both compare as the log stores them.
void Spill(storage::Payload& p) {
  if (p.kind == storage::Payload::Kind::kJson && p.json.size() > limits::inline_payload_bytes_max) {
    p = storage::Payload::Blob(Sha256::Of(p.json));
  }
}

void SpillAll(storage::EventBody& body) {
  std::visit(
      [](auto& b) {
        using B = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<B, storage::TaskRouted>) Spill(b.input);
        if constexpr (std::is_same_v<B, storage::EffectIntent>) Spill(b.arguments);
        if constexpr (std::is_same_v<B, storage::TaskCompleted>) Spill(b.output);
        if constexpr (std::is_same_v<B, storage::RunStopped>) Spill(b.output);
        if constexpr (std::is_same_v<B, storage::ApprovalRequested>) Spill(b.arguments);
      },
      body);
}

// A run stopped by the engine itself because a step's transition could not be recorded
// (Engine FaultOnRefusedTransition): not interpreter output.
bool IsEngineFault(const storage::EventBody& body) {
  const auto* stopped = std::get_if<storage::RunStopped>(&body);
  return stopped != nullptr && stopped->reason == storage::StopReason::kFaulted &&
         stopped->error.title == "Transition could not be recorded";
}

// The JSON value an input event carries (StepInput::payload).
const storage::Payload* InputPayload(const storage::EventBody& body) {
  if (const auto* b = std::get_if<storage::RunStarted>(&body)) return &b->input;
  if (const auto* b = std::get_if<storage::EffectOutcome>(&body)) return &b->result;
  if (const auto* b = std::get_if<storage::EventReceived>(&body)) return &b->payload;
  if (const auto* b = std::get_if<storage::ControlRequested>(&body)) return &b->argument;
  return nullptr;
}

// Tool specs as the run saw them, from its own history: an effect_intent records the
// tool's effect, risk, executor and idempotency; a policy_verdict alone (a call refused
// before it started, or a read tool offered to an agent) records its risk, and an offer
// (verdict over the arguments `null`) only ever concerns a read tool.
std::map<std::string, ToolSpec> RecordedTools(const std::vector<storage::Event>& history) {
  std::map<std::string, ToolSpec> tools;
  static const Sha256 offer = Sha256::Of("null");  // hashed once, not once per run
  for (const storage::Event& e : history) {
    if (const auto* intent = std::get_if<storage::EffectIntent>(&e.body)) {
      ToolSpec& spec = tools[intent->tool];
      spec.name = intent->tool;
      spec.effect = intent->effect;
      spec.risk = intent->risk;
      spec.executor = intent->executor;
      spec.idempotent = intent->idempotent;
    }
  }
  for (const storage::Event& e : history) {
    if (const auto* verdict = std::get_if<storage::PolicyVerdict>(&e.body)) {
      if (verdict->tool.empty() || tools.count(verdict->tool) != 0) continue;
      ToolSpec& spec = tools[verdict->tool];
      spec.name = verdict->tool;
      spec.risk = verdict->risk;
      spec.effect = verdict->arguments_hash == offer ? storage::EffectKind::kRead
                                                     : storage::EffectKind::kWrite;
    }
  }
  return tools;
}

}  // namespace

struct Replayer::Impl {
  Impl(const storage::Store& s, ReplayOptions o) : store(s), options(std::move(o)) {}
  const storage::Store& store;
  ReplayOptions options;
  engine::Evaluator evaluator;
  std::map<Sha256, std::shared_ptr<const engine::Definition>> definitions;
  std::map<Sha256, std::shared_ptr<const policy::Policy>> policies;

  Result<std::shared_ptr<const engine::Definition>> DefinitionByHash(const Sha256& hash) {
    auto it = definitions.find(hash);
    if (it != definitions.end()) return it->second;
    CAIRN_ASSIGN_OR_RETURN(std::string canonical, store.GetDefinition(hash));
    engine::LoadOptions load;
    load.evaluator = &evaluator;  // the load's jq compiles serve the replay too
    CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const engine::Definition> def,
                           engine::LoadCanonicalDefinition(canonical, load));
    if (definitions.size() > 256) definitions.clear();
    definitions.emplace(hash, def);
    return def;
  }

  // As the engine resolves a run's policy (Engine PolicyByHash): stored as a blob by hash;
  // a zero hash or the default policy's hash is the default policy.
  Result<std::shared_ptr<const policy::Policy>> PolicyByHash(const Sha256& hash) {
    std::shared_ptr<const policy::Policy> fallback = policy::Policy::Default();
    if (hash.IsZero() || hash == fallback->hash()) return fallback;
    auto it = policies.find(hash);
    if (it != policies.end()) return it->second;
    CAIRN_ASSIGN_OR_RETURN(std::string text, store.GetBlob(hash));
    CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const policy::Policy> loaded,
                           policy::Policy::Load(text, "policy sha256:" + hash.Hex().substr(0, 16)));
    policies.emplace(hash, loaded);
    return loaded;
  }

  Result<Json> PayloadJson(const storage::Payload& p) {
    switch (p.kind) {
      case storage::Payload::Kind::kNone:
        return Json();
      case storage::Payload::Kind::kJson:
        return ParseJson(p.json, "an event payload", limits::run_data_bytes_max * 4);
      case storage::Payload::Kind::kBlob: {
        CAIRN_ASSIGN_OR_RETURN(std::string text, store.GetBlob(p.blob));
        return ParseJson(text, "an event payload blob", limits::run_data_bytes_max * 4);
      }
    }
    return Json();
  }

  Result<ReplayResult> Replay(const RunId& run_id, const std::vector<storage::Event>& history);
  // Feeds `history`'s inputs to `interpreter` and matches what it produces; sets
  // result.events, .steps, .divergence and .note. Errors: a payload that cannot be read
  // back, the counterfactual agent's.
  Status Walk(const std::vector<storage::Event>& history, engine::Interpreter& interpreter,
              internal::CounterfactualRun& counterfactual, ReplayResult& result);
};

namespace {

Json ProducedJson(const RunId& run_id, uint64_t seq, const storage::NewEvent& e) {
  storage::Event event;
  event.run_id = run_id;
  event.seq = EventSeq(seq);
  event.task_path = e.task_path;
  event.body = e.body;
  Json j = storage::EventToJson(event);
  // The produced side has no time or chain: those are the log's.
  j.erase("time");
  j.erase("time_ns");
  j.erase("prev_hash");
  j.erase("hash");
  return j;
}

std::string Mismatch(const storage::Event& recorded, const storage::NewEvent& produced) {
  const std::string_view rk = storage::KindName(recorded.body);
  const std::string_view pk = storage::KindName(produced.body);
  if (rk != pk) {
    return "the log has " + std::string(rk) + ", the code produced " + std::string(pk);
  }
  if (recorded.task_path != produced.task_path) {
    return std::string(rk) + " at task " + recorded.task_path + " in the log, at " +
           produced.task_path + " from the code";
  }
  return std::string(rk) + " with different fields";
}

}  // namespace

Result<ReplayResult> Replayer::Impl::Replay(const RunId& run_id,
                                            const std::vector<storage::Event>& history) {
  ReplayResult result;
  result.run_id = run_id;
  if (history.empty() || !std::holds_alternative<storage::RunStarted>(history.front().body)) {
    return Status::FailedPrecondition("run " + run_id.str() +
                                      ": its history does not begin with run_started");
  }
  const auto& started = std::get<storage::RunStarted>(history.front().body);
  std::shared_ptr<const engine::Definition> definition = options.definition;
  if (!definition) {
    CAIRN_ASSIGN_OR_RETURN(definition, DefinitionByHash(started.definition_hash));
  }
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const policy::Policy> policy,
                         PolicyByHash(started.policy_hash));
  auto recorded_tools = std::make_shared<std::map<std::string, ToolSpec>>(RecordedTools(history));
  const engine::ToolCatalog* catalog = options.catalog;
  engine::Interpreter interpreter(
      definition,
      [recorded_tools, catalog](std::string_view name) -> std::optional<ToolSpec> {
        auto it = recorded_tools->find(std::string(name));
        if (it != recorded_tools->end()) return it->second;
        if (catalog != nullptr) {
          if (const engine::ToolCatalog::Entry* e = catalog->Find(name)) return e->spec;
        }
        return std::nullopt;
      },
      policy);
  internal::CounterfactualRun counterfactual(run_id, history, definition, policy,
                                             options.counterfactual_policy,
                                             &options.counterfactual_agent);
  interpreter.set_policy_observer(counterfactual.Observer());
  CAIRN_RETURN_IF_ERROR(Walk(history, interpreter, counterfactual, result));
  counterfactual.Finish(result.events, result.differences, result.points);
  return result;
}

namespace {

// Ends `result` with a divergence at history[at] (at == size: after the log's end).
void Diverge(ReplayResult& result, const std::vector<storage::Event>& history, size_t at,
             const storage::NewEvent* produced, std::string note) {
  Divergence d;
  d.run_id = result.run_id;
  d.seq = at < history.size() ? history[at].seq.value() : history.size();
  if (produced != nullptr) {
    d.task_path = produced->task_path;
    d.produced = ProducedJson(result.run_id, d.seq, *produced);
  } else if (at < history.size()) {
    d.task_path = history[at].task_path;
  }
  if (at < history.size()) d.recorded = storage::EventToJson(history[at]);
  d.note = std::move(note);
  result.divergence = std::move(d);
  result.events = at;
}

void EngineFault(ReplayResult& result, const storage::Event& e) {
  result.note = "stopped by the engine at seq " + std::to_string(e.seq.value()) +
                ": a transition could not be recorded";
}

// Matches a step's produced events against history[next...], advancing `next`, and shows
// the matched ones to `counterfactual`. False when the replay ends there (a divergence,
// or the engine's own fault).
bool MatchStep(const std::vector<storage::Event>& history, StepOutput& out,
               const engine::RunState& state, internal::CounterfactualRun& counterfactual,
               size_t& next, ReplayResult& result) {
  const size_t first = next;
  for (storage::NewEvent& produced : out.events) {
    SpillAll(produced.body);
    if (next == history.size()) {
      counterfactual.AfterStep(out, first, next - first, state);
      Diverge(result, history, next, &produced, "the code produced an event the log does not have");
      return false;
    }
    const storage::Event& recorded = history[next];
    if (IsEngineFault(recorded.body)) {
      counterfactual.AfterStep(out, first, next - first, state);
      EngineFault(result, recorded);
      result.events = history.size();
      return false;
    }
    if (recorded.task_path != produced.task_path || !(recorded.body == produced.body)) {
      counterfactual.AfterStep(out, first, next - first, state);
      Diverge(result, history, next, &produced, Mismatch(recorded, produced));
      return false;
    }
    ++next;
  }
  counterfactual.AfterStep(out, first, next - first, state);
  return true;
}

}  // namespace

Status Replayer::Impl::Walk(const std::vector<storage::Event>& history,
                            engine::Interpreter& interpreter,
                            internal::CounterfactualRun& counterfactual, ReplayResult& result) {
  engine::RunState state;
  state.run_id = result.run_id.str();
  size_t next = 0;  // the next recorded event to match
  bool more = false;
  while (next < history.size() || more) {
    StepInput input;
    if (more) {
      more = false;  // the engine steps again at once with a "continue" (time 0)
      if (next == history.size()) break;  // the log ends before that step was recorded
    } else {
      const storage::Event& e = history[next];
      if (IsEngineFault(e.body)) {
        EngineFault(result, e);
        next = history.size();
        break;
      }
      if (!IsInput(e.body)) {
        Diverge(result, history, next, nullptr,
                "the log has " + std::string(storage::KindName(e.body)) +
                    " where the code produced nothing more");
        return Status::Ok();
      }
      CAIRN_RETURN_IF_ERROR(counterfactual.BeforeInput(next));
      input.time_ns = e.time_ns;
      input.body = e.body;
      if (const storage::Payload* p = InputPayload(e.body)) {
        CAIRN_ASSIGN_OR_RETURN(input.payload, PayloadJson(*p));
      }
      ++next;
    }
    ++result.steps;
    Result<StepOutput> out = interpreter.Step(state, input, evaluator);
    if (!out.ok()) {
      Diverge(result, history, next == 0 ? 0 : next - 1, nullptr,
              "the interpreter refused the input: " + out.status().message());
      return Status::Ok();
    }
    if (!MatchStep(history, *out, state, counterfactual, next, result)) return Status::Ok();
    more = out->more;
  }
  result.events = next;
  return Status::Ok();
}

Replayer::Replayer(const storage::Store& store, ReplayOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
Replayer::~Replayer() = default;

Result<ReplayResult> Replayer::Replay(const RunId& run_id) {
  std::vector<storage::Event> history;
  CAIRN_RETURN_IF_ERROR(
      impl_->store.ScanHistory(run_id, 0, [&](const storage::StoredEvent& stored) {
        history.push_back(stored.event);
        return true;
      }));
  return impl_->Replay(run_id, history);
}

Result<ReplayResult> Replayer::Replay(const RunId& run_id,
                                      const std::vector<storage::Event>& history) {
  return impl_->Replay(run_id, history);
}

std::string DescribeDivergence(const Divergence& d) {
  return "run " + d.run_id.str() + " diverged at seq " + std::to_string(d.seq) + " (" +
         (d.task_path.empty() ? "/" : d.task_path) + "): " + d.note;
}

Json DivergenceToJson(const Divergence& d) {
  return Json{{"run_id", d.run_id.str()}, {"seq", d.seq},           {"task_path", d.task_path},
              {"recorded", d.recorded},   {"produced", d.produced}, {"note", d.note}};
}

}  // namespace cairn::replay
