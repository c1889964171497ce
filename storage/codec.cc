#include "storage/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "base/limits.h"
#include "storage/event.capnp.h"

// Encoding choices (they shape the stored bytes; see storage/FORMAT.md):
//  - one message per value, standard unpacked serialization, always a single segment;
//  - Event.prevHash and RunHeader.chainHead are always 32 bytes; every other digest is
//    written only when non-zero (an all-zero digest means "absent" and reads back as zero);
//  - sub-structs equal to their default (an empty Actor, ErrorInfo, Usage, BudgetAmounts,
//    a `none` Payload) are not written at all; Cap'n Proto reads a missing struct as its
//    default, so the value round-trips and the event is smaller.
//
// Decoding choices (forward compatibility, see event.capnp):
//  - an Event.body union member this build does not know gives UnknownBody{which}, where
//    `which` is the raw union discriminant (0 = runStarted, ..., 16 = valueRecorded);
//  - an enum value this build does not know maps to the fallback named in EnumTraits below;
//  - an unknown Payload kind is kDataLoss: a value we cannot represent would be silently
//    dropped otherwise.

namespace cairn::storage {
namespace {

// Our writer always emits one segment. A reader accepts a few more, so that another
// writer may split a message, but never lets a segment table drive allocation or loops.
constexpr uint64_t kSegmentsMax = 64;
// First segment reused across encodes on a thread (8 KiB): most events fit, so encoding
// does not allocate or zero a fresh segment each time.
constexpr size_t kScratchWords = 1024;
// Decoding copies inputs up to this size to the stack rather than the heap.
constexpr size_t kInlineDecodeWords = 256;
constexpr size_t kWordBytes = sizeof(capnp::word);
constexpr size_t kDigestBytes = Sha256::kSize;

// --- Enumerations -------------------------------------------------------------------------
//
// C++ enums keep the schema's numbering (checked below), so encoding is a range-checked
// cast. Decoding maps any value past the last one this build knows (written by a newer
// cairn) to kFallback: the schema's own "unknown"/"unspecified" value where there is one,
// otherwise the value that fails safe. It never casts an out-of-range integer to an enum.

template <typename Enum>
struct EnumTraits;

#define CAIRN_ENUM_TRAITS(Enum, WireEnum, Last, WireLast, Fallback)               \
  template <>                                                                     \
  struct EnumTraits<Enum> {                                                       \
    using Wire = WireEnum;                                                        \
    static constexpr Enum kLast = Last;                                           \
    static constexpr Enum kFallback = Fallback;                                   \
    static_assert(static_cast<uint16_t>(WireLast) == static_cast<uint16_t>(Last), \
                  #Enum " numbering differs from the schema");                    \
  }

// The schema's own "not specified" values.
CAIRN_ENUM_TRAITS(RiskLevel, wire::RiskLevel, RiskLevel::kCritical, wire::RiskLevel::CRITICAL,
                  RiskLevel::kUnspecified);
CAIRN_ENUM_TRAITS(RunStatus, wire::RunStatus, RunStatus::kKilled, wire::RunStatus::KILLED,
                  RunStatus::kUnknown);
CAIRN_ENUM_TRAITS(StopReason, wire::StopReason, StopReason::kCancelled, wire::StopReason::CANCELLED,
                  StopReason::kNone);
// Fail closed: an unknown resolution never reads as approved.
CAIRN_ENUM_TRAITS(ApprovalResolution, wire::ApprovalResolution, ApprovalResolution::kExpired,
                  wire::ApprovalResolution::EXPIRED, ApprovalResolution::kRejected);
// An effect of unknown kind is treated as one that changes the world.
CAIRN_ENUM_TRAITS(EffectKind, wire::EffectKind, EffectKind::kWrite, wire::EffectKind::WRITE,
                  EffectKind::kWrite);
// No value fails safe for these two; the fallback is the schema's first value.
CAIRN_ENUM_TRAITS(TimerPurpose, wire::TimerPurpose, TimerPurpose::kBudgetWallClock,
                  wire::TimerPurpose::BUDGET_WALL_CLOCK, TimerPurpose::kWait);
CAIRN_ENUM_TRAITS(TaskRouted::Mode, wire::TaskRouted::Mode, TaskRouted::Mode::kAgentic,
                  wire::TaskRouted::Mode::AGENTIC, TaskRouted::Mode::kDeterministic);
// Fail closed: an unknown decision denies.
CAIRN_ENUM_TRAITS(PolicyVerdict::Decision, wire::PolicyVerdict::Decision,
                  PolicyVerdict::Decision::kDeny, wire::PolicyVerdict::Decision::DENY,
                  PolicyVerdict::Decision::kDeny);
// A verdict of unknown stage is treated as a first evaluation (it does not skip a re-check).
CAIRN_ENUM_TRAITS(PolicyVerdict::Stage, wire::PolicyVerdict::Stage,
                  PolicyVerdict::Stage::kBeforeCommit, wire::PolicyVerdict::Stage::BEFORE_COMMIT,
                  PolicyVerdict::Stage::kBeforeCall);
// We cannot tell whether an effect with an unknown outcome happened.
CAIRN_ENUM_TRAITS(EffectOutcome::Status, wire::EffectOutcome::Status,
                  EffectOutcome::Status::kTimedOut, wire::EffectOutcome::Status::TIMED_OUT,
                  EffectOutcome::Status::kIndeterminate);
// A task that ended in an unknown way did not complete.
CAIRN_ENUM_TRAITS(TaskCompleted::Status, wire::TaskCompleted::Status,
                  TaskCompleted::Status::kSkipped, wire::TaskCompleted::Status::SKIPPED,
                  TaskCompleted::Status::kFaulted);
// Budget is held rather than released when the phase is unknown.
CAIRN_ENUM_TRAITS(BudgetCharged::Phase, wire::BudgetCharged::Phase, BudgetCharged::Phase::kRelease,
                  wire::BudgetCharged::Phase::RELEASE, BudgetCharged::Phase::kReserve);
// The least destructive action: never an unknown value read as cancel or kill.
CAIRN_ENUM_TRAITS(ControlRequested::Action, wire::ControlRequested::Action,
                  ControlRequested::Action::kSignal, wire::ControlRequested::Action::SIGNAL,
                  ControlRequested::Action::kSignal);

#undef CAIRN_ENUM_TRAITS

template <typename Enum>
Enum FromWire(typename EnumTraits<Enum>::Wire value) {
  const auto raw = static_cast<uint16_t>(value);
  if (raw > static_cast<uint16_t>(EnumTraits<Enum>::kLast)) return EnumTraits<Enum>::kFallback;
  return static_cast<Enum>(raw);
}

capnp::Data::Reader Digest(const Sha256& digest) {
  return {digest.bytes().data(), digest.bytes().size()};
}

template <typename T>
bool IsDefault(const T& value) {
  return value == T{};
}

// --- Encoding -----------------------------------------------------------------------------

// Validates while a message is built. The first error wins; writers keep going with empty
// values so that they stay straight-line code, and the caller checks status() at the end.
class Encoder {
 public:
  explicit Encoder(std::string_view what) : what_(what) {}

  // `value` as Cap'n Proto text (or data); empty, with an error naming `field`, if it could
  // never fit in one encoded value.
  capnp::Text::Reader Text(std::string_view field, const std::string& value) {
    if (!Fits(field, value.size())) return {};
    return {value.data(), value.size()};
  }
  capnp::Data::Reader Data(std::string_view field, const std::string& value) {
    if (!Fits(field, value.size())) return {};
    return {reinterpret_cast<const kj::byte*>(value.data()), value.size()};
  }
  // A list length; 0 with an error if it could never fit.
  unsigned int Count(std::string_view field, size_t count) {
    if (!Fits(field, count * kWordBytes)) return 0;
    return static_cast<unsigned int>(count);
  }

  // `value` as its wire enum; the first enumerant, with an error, if out of range.
  template <typename E>
  typename EnumTraits<E>::Wire Enum(std::string_view field, E value) {
    const auto raw = static_cast<uint16_t>(value);
    if (raw > static_cast<uint16_t>(EnumTraits<E>::kLast)) {
      Fail(std::string(field) + " has value " + std::to_string(raw) +
           ", which is not in its enumeration");
      return {};
    }
    return static_cast<typename EnumTraits<E>::Wire>(raw);
  }

  void Fail(std::string message) {
    if (status_.ok()) status_ = Status::InvalidArgument(std::string(what_) + ": " + message);
  }
  const Status& status() const { return status_; }

 private:
  bool Fits(std::string_view field, size_t bytes) {
    if (bytes <= limits::event_bytes_max) return true;
    Fail(std::string(field) + " is " + std::to_string(bytes) +
         " bytes; an encoded value holds at most " + std::to_string(limits::event_bytes_max));
    return false;
  }

  std::string_view what_;
  Status status_;
};

void Write(Encoder& e, std::string_view field, const Payload& v, wire::Payload::Builder b) {
  switch (v.kind) {
    case Payload::Kind::kNone:
      if (!v.json.empty() || !v.blob.IsZero()) {
        e.Fail(std::string(field) + ": a none payload carries data");
      }
      b.setNone();
      return;
    case Payload::Kind::kJson:
      if (!v.blob.IsZero()) e.Fail(std::string(field) + ": a JSON payload carries a blob digest");
      b.setJson(e.Text(field, v.json));
      return;
    case Payload::Kind::kBlob:
      if (!v.json.empty()) e.Fail(std::string(field) + ": a blob payload carries JSON text");
      b.setBlob(Digest(v.blob));
      return;
  }
  e.Fail(std::string(field) + ": payload kind " + std::to_string(static_cast<int>(v.kind)) +
         " is not none, json or blob");
}

void Write(Encoder& e, std::string_view field, const ErrorInfo& v, wire::ErrorInfo::Builder b) {
  b.setType(e.Text(field, v.type));
  b.setStatus(v.status);
  b.setTitle(e.Text(field, v.title));
  b.setDetail(e.Text(field, v.detail));
  b.setInstance(e.Text(field, v.instance));
}

void Write(Encoder& e, std::string_view field, const Actor& v, wire::Actor::Builder b) {
  b.setName(e.Text(field, v.name));
  b.setRole(e.Text(field, v.role));
}

void Write(const Usage& v, wire::Usage::Builder b) {
  b.setPromptTokens(v.prompt_tokens);
  b.setCompletionTokens(v.completion_tokens);
  b.setCostMicros(v.cost_micros);
  b.setCostKnown(v.cost_known);
  b.setCalls(v.calls);
}

void Write(const BudgetAmounts& v, wire::BudgetAmounts::Builder b) {
  b.setSteps(v.steps);
  b.setTokens(v.tokens);
  b.setCostMicros(v.cost_micros);
  b.setWallMs(v.wall_ms);
  b.setToolCalls(v.tool_calls);
}

void Write(Encoder& e, const RunStarted& v, wire::RunStarted::Builder b) {
  b.setWorkflowNamespace(e.Text("run_started.workflow_namespace", v.workflow_namespace));
  b.setWorkflowName(e.Text("run_started.workflow_name", v.workflow_name));
  b.setWorkflowVersion(e.Text("run_started.workflow_version", v.workflow_version));
  if (!v.definition_hash.IsZero()) b.setDefinitionHash(Digest(v.definition_hash));
  if (!IsDefault(v.input)) Write(e, "run_started.input", v.input, b.initInput());
  if (!v.policy_hash.IsZero()) b.setPolicyHash(Digest(v.policy_hash));
  b.setStartKey(e.Text("run_started.start_key", v.start_key));
  if (!IsDefault(v.started_by)) {
    Write(e, "run_started.started_by", v.started_by, b.initStartedBy());
  }
  b.setParentRunId(e.Text("run_started.parent_run_id", v.parent_run_id));
  if (!IsDefault(v.budget_limits)) Write(v.budget_limits, b.initBudgetLimits());
  if (!v.agent_config_hash.IsZero()) b.setAgentConfigHash(Digest(v.agent_config_hash));
  if (!v.tool_catalog_hash.IsZero()) b.setToolCatalogHash(Digest(v.tool_catalog_hash));
}

void Write(Encoder& e, const TaskRouted& v, wire::TaskRouted::Builder b) {
  b.setTaskName(e.Text("task_routed.task_name", v.task_name));
  b.setTaskKind(e.Text("task_routed.task_kind", v.task_kind));
  b.setMode(e.Enum("task_routed.mode", v.mode));
  if (!IsDefault(v.input)) Write(e, "task_routed.input", v.input, b.initInput());
  b.setAttempt(v.attempt);
}

void Write(Encoder& e, const AgentDecided& v, wire::AgentDecided::Builder b) {
  b.setAgent(e.Text("agent_decided.agent", v.agent));
  b.setModel(e.Text("agent_decided.model", v.model));
  b.setReasonCode(e.Text("agent_decided.reason_code", v.reason_code));
  b.setOption(e.Text("agent_decided.option", v.option));
  b.setRationale(e.Text("agent_decided.rationale", v.rationale));
  b.setHasConfidence(v.has_confidence);
  b.setConfidence(v.confidence);
  b.setStepsUsed(v.steps_used);
  if (!IsDefault(v.usage)) Write(v.usage, b.initUsage());
  if (!v.options.empty()) {
    auto options = b.initOptions(e.Count("agent_decided.options", v.options.size()));
    for (unsigned int i = 0; i < options.size(); ++i) {
      options.set(i, e.Text("agent_decided.options", v.options[i]));
    }
  }
  if (!v.request_blob.IsZero()) b.setRequestBlob(Digest(v.request_blob));
  if (!v.response_blob.IsZero()) b.setResponseBlob(Digest(v.response_blob));
  b.setDurationMs(v.duration_ms);
  b.setDetail(e.Text("agent_decided.detail", v.detail));
  b.setGoal(e.Text("agent_decided.goal", v.goal));
  b.setDecisionKey(e.Text("agent_decided.decision_key", v.decision_key));
}

void Write(Encoder& e, const PolicyVerdict& v, wire::PolicyVerdict::Builder b) {
  if (!v.policy_hash.IsZero()) b.setPolicyHash(Digest(v.policy_hash));
  b.setRuleId(e.Text("policy_verdict.rule_id", v.rule_id));
  b.setDecision(e.Enum("policy_verdict.decision", v.decision));
  b.setReasonCode(e.Text("policy_verdict.reason_code", v.reason_code));
  b.setTool(e.Text("policy_verdict.tool", v.tool));
  b.setRisk(e.Enum("policy_verdict.risk", v.risk));
  if (!v.arguments_hash.IsZero()) b.setArgumentsHash(Digest(v.arguments_hash));
  b.setStage(e.Enum("policy_verdict.stage", v.stage));
  b.setDetail(e.Text("policy_verdict.detail", v.detail));
}

void Write(Encoder& e, const ApprovalRequested& v, wire::ApprovalRequested::Builder b) {
  b.setApprovalId(e.Text("approval_requested.approval_id", v.approval_id));
  b.setTool(e.Text("approval_requested.tool", v.tool));
  if (!v.binding_hash.IsZero()) b.setBindingHash(Digest(v.binding_hash));
  if (!IsDefault(v.arguments)) {
    Write(e, "approval_requested.arguments", v.arguments, b.initArguments());
  }
  b.setExpiresAtNs(v.expires_at_ns);
  b.setOnExpiry(e.Enum("approval_requested.on_expiry", v.on_expiry));
  b.setRuleId(e.Text("approval_requested.rule_id", v.rule_id));
  b.setReason(e.Text("approval_requested.reason", v.reason));
  if (!v.approvers.empty()) {
    auto approvers = b.initApprovers(e.Count("approval_requested.approvers", v.approvers.size()));
    for (unsigned int i = 0; i < approvers.size(); ++i) {
      approvers.set(i, e.Text("approval_requested.approvers", v.approvers[i]));
    }
  }
}

void Write(Encoder& e, const ApprovalResolved& v, wire::ApprovalResolved::Builder b) {
  b.setApprovalId(e.Text("approval_resolved.approval_id", v.approval_id));
  b.setResolution(e.Enum("approval_resolved.resolution", v.resolution));
  if (!IsDefault(v.actor)) Write(e, "approval_resolved.actor", v.actor, b.initActor());
  b.setReason(e.Text("approval_resolved.reason", v.reason));
  if (!v.binding_hash.IsZero()) b.setBindingHash(Digest(v.binding_hash));
}

void Write(Encoder& e, const EffectIntent& v, wire::EffectIntent::Builder b) {
  b.setIdempotencyKey(e.Text("effect_intent.idempotency_key", v.idempotency_key));
  b.setTool(e.Text("effect_intent.tool", v.tool));
  b.setEffect(e.Enum("effect_intent.effect", v.effect));
  b.setRisk(e.Enum("effect_intent.risk", v.risk));
  if (!IsDefault(v.arguments)) {
    Write(e, "effect_intent.arguments", v.arguments, b.initArguments());
  }
  b.setAttempt(v.attempt);
  b.setExecutor(e.Text("effect_intent.executor", v.executor));
  b.setIdempotent(v.idempotent);
}

void Write(Encoder& e, const EffectOutcome& v, wire::EffectOutcome::Builder b) {
  b.setIdempotencyKey(e.Text("effect_outcome.idempotency_key", v.idempotency_key));
  b.setStatus(e.Enum("effect_outcome.status", v.status));
  if (!IsDefault(v.result)) Write(e, "effect_outcome.result", v.result, b.initResult());
  if (!IsDefault(v.error)) Write(e, "effect_outcome.error", v.error, b.initError());
  b.setDurationMs(v.duration_ms);
  b.setAttempt(v.attempt);
  if (!IsDefault(v.resolved_by)) {
    Write(e, "effect_outcome.resolved_by", v.resolved_by, b.initResolvedBy());
  }
}

void Write(Encoder& e, const TimerScheduled& v, wire::TimerScheduled::Builder b) {
  b.setTimerId(e.Text("timer_scheduled.timer_id", v.timer_id));
  b.setDueAtNs(v.due_at_ns);
  b.setPurpose(e.Enum("timer_scheduled.purpose", v.purpose));
}

void Write(Encoder& e, const TimerFired& v, wire::TimerFired::Builder b) {
  b.setTimerId(e.Text("timer_fired.timer_id", v.timer_id));
  b.setDueAtNs(v.due_at_ns);
  b.setPurpose(e.Enum("timer_fired.purpose", v.purpose));
}

void Write(Encoder& e, const TimerCancelled& v, wire::TimerCancelled::Builder b) {
  b.setTimerId(e.Text("timer_cancelled.timer_id", v.timer_id));
  b.setDueAtNs(v.due_at_ns);
}

void Write(Encoder& e, const EventReceived& v, wire::EventReceived::Builder b) {
  b.setEventType(e.Text("event_received.event_type", v.event_type));
  b.setSource(e.Text("event_received.source", v.source));
  b.setEventId(e.Text("event_received.event_id", v.event_id));
  if (!IsDefault(v.payload)) Write(e, "event_received.payload", v.payload, b.initPayload());
  if (!IsDefault(v.actor)) Write(e, "event_received.actor", v.actor, b.initActor());
}

void Write(Encoder& e, const TaskCompleted& v, wire::TaskCompleted::Builder b) {
  b.setTaskName(e.Text("task_completed.task_name", v.task_name));
  b.setStatus(e.Enum("task_completed.status", v.status));
  if (!IsDefault(v.output)) Write(e, "task_completed.output", v.output, b.initOutput());
  if (!IsDefault(v.error)) Write(e, "task_completed.error", v.error, b.initError());
  b.setThen(e.Text("task_completed.then", v.then));
  b.setAttempt(v.attempt);
}

void Write(Encoder& e, const BudgetCharged& v, wire::BudgetCharged::Builder b) {
  b.setPhase(e.Enum("budget_charged.phase", v.phase));
  b.setReservationId(e.Text("budget_charged.reservation_id", v.reservation_id));
  if (!IsDefault(v.amounts)) Write(v.amounts, b.initAmounts());
  b.setCostKnown(v.cost_known);
  if (!IsDefault(v.spent_after)) Write(v.spent_after, b.initSpentAfter());
  if (!IsDefault(v.reserved_after)) Write(v.reserved_after, b.initReservedAfter());
  b.setPurpose(e.Text("budget_charged.purpose", v.purpose));
}

void Write(Encoder& e, const RunStopped& v, wire::RunStopped::Builder b) {
  b.setReason(e.Enum("run_stopped.reason", v.reason));
  if (!IsDefault(v.output)) Write(e, "run_stopped.output", v.output, b.initOutput());
  if (!IsDefault(v.error)) Write(e, "run_stopped.error", v.error, b.initError());
  b.setDetail(e.Text("run_stopped.detail", v.detail));
  if (!IsDefault(v.actor)) Write(e, "run_stopped.actor", v.actor, b.initActor());
}

void Write(Encoder& e, const ControlRequested& v, wire::ControlRequested::Builder b) {
  b.setAction(e.Enum("control_requested.action", v.action));
  if (!IsDefault(v.actor)) Write(e, "control_requested.actor", v.actor, b.initActor());
  b.setReason(e.Text("control_requested.reason", v.reason));
  if (!IsDefault(v.argument)) {
    Write(e, "control_requested.argument", v.argument, b.initArgument());
  }
}

void Write(Encoder& e, const ValueRecorded& v, wire::ValueRecorded::Builder b) {
  b.setName(e.Text("value_recorded.name", v.name));
  if (!IsDefault(v.value)) Write(e, "value_recorded.value", v.value, b.initValue());
}

// Selects the union member matching the body's alternative.
struct BodyWriter {
  Encoder& e;
  wire::Event::Body::Builder b;

  void operator()(const RunStarted& v) { Write(e, v, b.initRunStarted()); }
  void operator()(const TaskRouted& v) { Write(e, v, b.initTaskRouted()); }
  void operator()(const AgentDecided& v) { Write(e, v, b.initAgentDecided()); }
  void operator()(const PolicyVerdict& v) { Write(e, v, b.initPolicyVerdict()); }
  void operator()(const ApprovalRequested& v) { Write(e, v, b.initApprovalRequested()); }
  void operator()(const ApprovalResolved& v) { Write(e, v, b.initApprovalResolved()); }
  void operator()(const EffectIntent& v) { Write(e, v, b.initEffectIntent()); }
  void operator()(const EffectOutcome& v) { Write(e, v, b.initEffectOutcome()); }
  void operator()(const TimerScheduled& v) { Write(e, v, b.initTimerScheduled()); }
  void operator()(const TimerFired& v) { Write(e, v, b.initTimerFired()); }
  void operator()(const TimerCancelled& v) { Write(e, v, b.initTimerCancelled()); }
  void operator()(const EventReceived& v) { Write(e, v, b.initEventReceived()); }
  void operator()(const TaskCompleted& v) { Write(e, v, b.initTaskCompleted()); }
  void operator()(const BudgetCharged& v) { Write(e, v, b.initBudgetCharged()); }
  void operator()(const RunStopped& v) { Write(e, v, b.initRunStopped()); }
  void operator()(const ControlRequested& v) { Write(e, v, b.initControlRequested()); }
  void operator()(const ValueRecorded& v) { Write(e, v, b.initValueRecorded()); }
  void operator()(const UnknownBody& v) {
    e.Fail("body: an unknown body kind (union member " + std::to_string(v.which) +
           ", from a newer writer) cannot be encoded");
  }
};

void Write(Encoder& e, const Event& v, wire::Event::Builder b) {
  if (v.run_id.empty()) e.Fail("run_id is empty");
  b.setRunId(e.Text("run_id", v.run_id.str()));
  if (v.seq.value() >= limits::events_per_run_max) {
    e.Fail("seq " + std::to_string(v.seq.value()) + " is not below " +
           std::to_string(limits::events_per_run_max));
  }
  b.setSeq(v.seq.value());
  b.setTimeNs(v.time_ns);
  b.setPrevHash(Digest(v.prev_hash));  // always 32 bytes, zero for seq 0
  b.setTaskPath(e.Text("task_path", v.task_path));
  if (v.body.valueless_by_exception()) {
    e.Fail("body is empty");
    return;
  }
  std::visit(BodyWriter{e, b.initBody()}, v.body);
}

// Left out when empty, like other defaults.
void Write(Encoder& e, const std::vector<TimerRef>& v, wire::RunHeader::Builder b) {
  if (v.empty()) return;
  if (v.size() > limits::timers_per_run_max) {
    e.Fail("timers has " + std::to_string(v.size()) + " entries; at most " +
           std::to_string(limits::timers_per_run_max));
    return;
  }
  auto timers = b.initTimers(e.Count("timers", v.size()));
  for (unsigned int i = 0; i < timers.size(); ++i) {
    if (v[i].timer_id.empty()) e.Fail("timers[" + std::to_string(i) + "].timer_id is empty");
    timers[i].setTimerId(e.Text("timers.timer_id", v[i].timer_id));
    timers[i].setDueAtNs(v[i].due_at_ns);
    timers[i].setPurpose(e.Enum("timers.purpose", v[i].purpose));
  }
}

void Write(Encoder& e, const RunHeader& v, wire::RunHeader::Builder b) {
  if (v.run_id.empty()) e.Fail("run_id is empty");
  b.setRunId(e.Text("run_id", v.run_id.str()));
  b.setStatus(e.Enum("status", v.status));
  b.setStopReason(e.Enum("stop_reason", v.stop_reason));
  b.setWorkflowNamespace(e.Text("workflow_namespace", v.workflow_namespace));
  b.setWorkflowName(e.Text("workflow_name", v.workflow_name));
  b.setWorkflowVersion(e.Text("workflow_version", v.workflow_version));
  if (!v.definition_hash.IsZero()) b.setDefinitionHash(Digest(v.definition_hash));
  if (!v.policy_hash.IsZero()) b.setPolicyHash(Digest(v.policy_hash));
  b.setCreatedAtNs(v.created_at_ns);
  b.setUpdatedAtNs(v.updated_at_ns);
  if (v.next_seq > limits::events_per_run_max) {
    e.Fail("next_seq " + std::to_string(v.next_seq) + " is above " +
           std::to_string(limits::events_per_run_max));
  }
  b.setNextSeq(v.next_seq);
  b.setChainHead(Digest(v.chain_head));  // always 32 bytes, zero when the run has no event
  b.setStartKey(e.Text("start_key", v.start_key));
  b.setParentRunId(e.Text("parent_run_id", v.parent_run_id));
  if (!IsDefault(v.budget_limits)) Write(v.budget_limits, b.initBudgetLimits());
  if (!IsDefault(v.budget_spent)) Write(v.budget_spent, b.initBudgetSpent());
  if (!IsDefault(v.budget_reserved)) Write(v.budget_reserved, b.initBudgetReserved());
  b.setWaitingOn(e.Text("waiting_on", v.waiting_on));
  b.setEngineState(e.Data("engine_state", v.engine_state));
  Write(e, v.timers, b);
}

void StoreLittleEndian32(uint32_t value, char* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

// Writes the segment table and the one segment to `*out`.
Status Serialize(std::string_view what,
                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments, std::string* out) {
  CAIRN_ASSERT(segments.size() == 1, "codec: message is not a single segment");
  const size_t words = segments[0].size();
  const size_t bytes = kWordBytes + words * kWordBytes;
  if (bytes > limits::event_bytes_max) {
    return Status::InvalidArgument(std::string(what) + ": encoding is " + std::to_string(bytes) +
                                   " bytes; at most " + std::to_string(limits::event_bytes_max) +
                                   " allowed (move large payloads to blobs)");
  }
  // Segment table: (segment count - 1) = 0, then the segment's size in words.
  char table[kWordBytes] = {};
  StoreLittleEndian32(static_cast<uint32_t>(words), table + 4);
  out->clear();
  out->reserve(bytes);
  out->append(table, kWordBytes);
  out->append(reinterpret_cast<const char*>(segments[0].begin()), words * kWordBytes);
  return Status::Ok();
}

kj::ArrayPtr<capnp::word> ScratchSegment() {
  // Zero-initialized; every MallocMessageBuilder given it zeroes what it used on
  // destruction, as Cap'n Proto requires for reuse.
  thread_local capnp::word scratch[kScratchWords];
  return {scratch, kScratchWords};
}

template <typename Root, typename Value>
Status Encode(std::string_view what, const Value& value, std::string* out) {
  CAIRN_ASSERT(out != nullptr, "codec: null output");
  try {
    capnp::MallocMessageBuilder message(ScratchSegment());
    Encoder encoder(what);
    Write(encoder, value, message.initRoot<Root>());
    CAIRN_RETURN_IF_ERROR(encoder.status());
    if (message.getSegmentsForOutput().size() == 1) {
      return Serialize(what, message.getSegmentsForOutput(), out);
    }
    // Larger than the scratch segment: copy into one segment of exactly the needed size
    // (the root's total size plus the root pointer).
    const auto root = message.getRoot<Root>().asReader();
    const uint64_t words = root.totalSize().wordCount + 1;
    if (words * kWordBytes > limits::event_bytes_max) {
      return Status::InvalidArgument(std::string(what) + ": encoding is about " +
                                     std::to_string(words * kWordBytes) + " bytes; at most " +
                                     std::to_string(limits::event_bytes_max) +
                                     " allowed (move large payloads to blobs)");
    }
    capnp::MallocMessageBuilder single(static_cast<unsigned int>(words));
    single.setRoot(root);
    return Serialize(what, single.getSegmentsForOutput(), out);
  } catch (const kj::Exception& e) {
    return Status::Internal(std::string(what) +
                            ": Cap'n Proto failed to encode: " + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Status::Internal(std::string(what) + ": encoding failed: " + e.what());
  }
}

// --- Decoding -----------------------------------------------------------------------------

// Copies out of a message under validation. The first error wins; readers keep going with
// default values, and the caller checks status() at the end.
//
// Cap'n Proto charges struct and list reads to the traversal limit but not text or data,
// so a message whose pointers all target one large text could make a naive reader copy
// gigabytes out of a few kilobytes. The decoder therefore charges every copied byte to a
// budget equal to the input size: a well-formed message never copies more than it holds
// (each non-empty text or data needs its own pointer and its own bytes).
class Decoder {
 public:
  Decoder(std::string_view what, size_t budget_bytes) : what_(what), budget_(budget_bytes) {}

  std::string Text(capnp::Text::Reader r) { return Copy(r.begin(), r.size()); }
  // Like Text(), into `*out`, reusing its capacity.
  void TextInto(capnp::Text::Reader r, std::string* out) {
    if (Charge(r.size())) {
      out->assign(r.begin(), r.size());
    } else {
      out->clear();
    }
  }
  std::string Data(capnp::Data::Reader r) {
    return Copy(reinterpret_cast<const char*>(r.begin()), r.size());
  }

  // A digest that must be present: exactly 32 bytes.
  Sha256 RequiredHash(std::string_view field, capnp::Data::Reader r) {
    if (r.size() == kDigestBytes) return ToSha256(r);
    Fail(std::string(field) + " is " + std::to_string(r.size()) + " bytes; expected 32");
    return {};
  }
  // An optional digest: absent (empty) reads as the zero digest, otherwise exactly 32 bytes.
  Sha256 OptionalHash(std::string_view field, capnp::Data::Reader r) {
    if (r.size() == 0) return {};
    if (r.size() == kDigestBytes) return ToSha256(r);
    Fail(std::string(field) + " is " + std::to_string(r.size()) + " bytes; expected 32 or none");
    return {};
  }

  void Fail(std::string message) {
    if (status_.ok()) status_ = Status::DataLoss(std::string(what_) + ": " + message);
  }
  const Status& status() const { return status_; }

 private:
  std::string Copy(const char* data, size_t size) {
    if (!Charge(size)) return {};
    return std::string(data, size);
  }

  // Charges a copy of `size` bytes to the budget; false (and the decode fails) when the
  // copies would exceed the message's own size, i.e. pointers overlap.
  bool Charge(size_t size) {
    if (size == 0) return true;
    const size_t charge = size + kWordBytes;  // the bytes plus the pointer that names them
    if (charge > budget_) {
      Fail("text and data fields hold more bytes than the " + std::to_string(budget_ + spent_) +
           "-byte message (overlapping pointers)");
      return false;
    }
    budget_ -= charge;
    spent_ += charge;
    return true;
  }

  static Sha256 ToSha256(capnp::Data::Reader r) {
    Sha256::Bytes bytes;
    std::memcpy(bytes.data(), r.begin(), kDigestBytes);
    return Sha256(bytes);
  }

  std::string_view what_;
  size_t budget_;
  size_t spent_ = 0;
  Status status_;
};

// Readers write into `*v`, overwriting every field, so that a scan can decode each event
// of a run into one Event and reuse the capacity of its strings and lists. A field the
// message leaves out reads as its default, exactly as in a fresh value.

void Read(Decoder& d, std::string_view field, wire::Payload::Reader r, Payload* v) {
  switch (r.which()) {
    case wire::Payload::NONE:
      v->kind = Payload::Kind::kNone;
      v->json.clear();
      v->blob = {};
      return;
    case wire::Payload::JSON:
      v->kind = Payload::Kind::kJson;
      d.TextInto(r.getJson(), &v->json);
      v->blob = {};
      return;
    case wire::Payload::BLOB:
      v->kind = Payload::Kind::kBlob;
      v->json.clear();
      v->blob = d.RequiredHash(field, r.getBlob());
      return;
  }
  d.Fail(std::string(field) + ": unknown payload kind " +
         std::to_string(static_cast<uint16_t>(r.which())));
  v->kind = Payload::Kind::kNone;
  v->json.clear();
  v->blob = {};
}

void Read(Decoder& d, wire::ErrorInfo::Reader r, ErrorInfo* v) {
  d.TextInto(r.getType(), &v->type);
  v->status = r.getStatus();
  d.TextInto(r.getTitle(), &v->title);
  d.TextInto(r.getDetail(), &v->detail);
  d.TextInto(r.getInstance(), &v->instance);
}

void Read(Decoder& d, wire::Actor::Reader r, Actor* v) {
  d.TextInto(r.getName(), &v->name);
  d.TextInto(r.getRole(), &v->role);
}

Usage Read(wire::Usage::Reader r) {
  return {r.getPromptTokens(), r.getCompletionTokens(), r.getCostMicros(), r.getCostKnown(),
          r.getCalls()};
}

BudgetAmounts Read(wire::BudgetAmounts::Reader r) {
  return {r.getSteps(), r.getTokens(), r.getCostMicros(), r.getWallMs(), r.getToolCalls()};
}

void Read(Decoder& d, wire::RunStarted::Reader r, RunStarted* v) {
  d.TextInto(r.getWorkflowNamespace(), &v->workflow_namespace);
  d.TextInto(r.getWorkflowName(), &v->workflow_name);
  d.TextInto(r.getWorkflowVersion(), &v->workflow_version);
  v->definition_hash = d.OptionalHash("run_started.definition_hash", r.getDefinitionHash());
  Read(d, "run_started.input", r.getInput(), &v->input);
  v->policy_hash = d.OptionalHash("run_started.policy_hash", r.getPolicyHash());
  d.TextInto(r.getStartKey(), &v->start_key);
  Read(d, r.getStartedBy(), &v->started_by);
  d.TextInto(r.getParentRunId(), &v->parent_run_id);
  v->budget_limits = Read(r.getBudgetLimits());
  v->agent_config_hash = d.OptionalHash("run_started.agent_config_hash", r.getAgentConfigHash());
  v->tool_catalog_hash = d.OptionalHash("run_started.tool_catalog_hash", r.getToolCatalogHash());
}

void Read(Decoder& d, wire::TaskRouted::Reader r, TaskRouted* v) {
  d.TextInto(r.getTaskName(), &v->task_name);
  d.TextInto(r.getTaskKind(), &v->task_kind);
  v->mode = FromWire<TaskRouted::Mode>(r.getMode());
  Read(d, "task_routed.input", r.getInput(), &v->input);
  v->attempt = r.getAttempt();
}

// Reuses the list's elements, and their capacity, for the first entries.
void Read(Decoder& d, capnp::List<capnp::Text>::Reader r, std::vector<std::string>* v) {
  v->resize(r.size());
  for (unsigned int i = 0; i < r.size(); ++i) d.TextInto(r[i], &(*v)[i]);
}

void Read(Decoder& d, wire::AgentDecided::Reader r, AgentDecided* v) {
  d.TextInto(r.getAgent(), &v->agent);
  d.TextInto(r.getModel(), &v->model);
  d.TextInto(r.getReasonCode(), &v->reason_code);
  d.TextInto(r.getOption(), &v->option);
  d.TextInto(r.getRationale(), &v->rationale);
  v->has_confidence = r.getHasConfidence();
  v->confidence = r.getConfidence();
  v->steps_used = r.getStepsUsed();
  v->usage = Read(r.getUsage());
  Read(d, r.getOptions(), &v->options);
  v->request_blob = d.OptionalHash("agent_decided.request_blob", r.getRequestBlob());
  v->response_blob = d.OptionalHash("agent_decided.response_blob", r.getResponseBlob());
  v->duration_ms = r.getDurationMs();
  d.TextInto(r.getDetail(), &v->detail);
  d.TextInto(r.getGoal(), &v->goal);
  d.TextInto(r.getDecisionKey(), &v->decision_key);
}

void Read(Decoder& d, wire::PolicyVerdict::Reader r, PolicyVerdict* v) {
  v->policy_hash = d.OptionalHash("policy_verdict.policy_hash", r.getPolicyHash());
  d.TextInto(r.getRuleId(), &v->rule_id);
  v->decision = FromWire<PolicyVerdict::Decision>(r.getDecision());
  d.TextInto(r.getReasonCode(), &v->reason_code);
  d.TextInto(r.getTool(), &v->tool);
  v->risk = FromWire<RiskLevel>(r.getRisk());
  v->arguments_hash = d.OptionalHash("policy_verdict.arguments_hash", r.getArgumentsHash());
  v->stage = FromWire<PolicyVerdict::Stage>(r.getStage());
  d.TextInto(r.getDetail(), &v->detail);
}

void Read(Decoder& d, wire::ApprovalRequested::Reader r, ApprovalRequested* v) {
  d.TextInto(r.getApprovalId(), &v->approval_id);
  d.TextInto(r.getTool(), &v->tool);
  v->binding_hash = d.OptionalHash("approval_requested.binding_hash", r.getBindingHash());
  Read(d, "approval_requested.arguments", r.getArguments(), &v->arguments);
  v->expires_at_ns = r.getExpiresAtNs();
  v->on_expiry = FromWire<ApprovalResolution>(r.getOnExpiry());
  d.TextInto(r.getRuleId(), &v->rule_id);
  d.TextInto(r.getReason(), &v->reason);
  Read(d, r.getApprovers(), &v->approvers);
}

void Read(Decoder& d, wire::ApprovalResolved::Reader r, ApprovalResolved* v) {
  d.TextInto(r.getApprovalId(), &v->approval_id);
  v->resolution = FromWire<ApprovalResolution>(r.getResolution());
  Read(d, r.getActor(), &v->actor);
  d.TextInto(r.getReason(), &v->reason);
  v->binding_hash = d.OptionalHash("approval_resolved.binding_hash", r.getBindingHash());
}

void Read(Decoder& d, wire::EffectIntent::Reader r, EffectIntent* v) {
  d.TextInto(r.getIdempotencyKey(), &v->idempotency_key);
  d.TextInto(r.getTool(), &v->tool);
  v->effect = FromWire<EffectKind>(r.getEffect());
  v->risk = FromWire<RiskLevel>(r.getRisk());
  Read(d, "effect_intent.arguments", r.getArguments(), &v->arguments);
  v->attempt = r.getAttempt();
  d.TextInto(r.getExecutor(), &v->executor);
  v->idempotent = r.getIdempotent();
}

void Read(Decoder& d, wire::EffectOutcome::Reader r, EffectOutcome* v) {
  d.TextInto(r.getIdempotencyKey(), &v->idempotency_key);
  v->status = FromWire<EffectOutcome::Status>(r.getStatus());
  Read(d, "effect_outcome.result", r.getResult(), &v->result);
  Read(d, r.getError(), &v->error);
  v->duration_ms = r.getDurationMs();
  v->attempt = r.getAttempt();
  Read(d, r.getResolvedBy(), &v->resolved_by);
}

void Read(Decoder& d, wire::TimerScheduled::Reader r, TimerScheduled* v) {
  d.TextInto(r.getTimerId(), &v->timer_id);
  v->due_at_ns = r.getDueAtNs();
  v->purpose = FromWire<TimerPurpose>(r.getPurpose());
}

void Read(Decoder& d, wire::TimerFired::Reader r, TimerFired* v) {
  d.TextInto(r.getTimerId(), &v->timer_id);
  v->due_at_ns = r.getDueAtNs();
  v->purpose = FromWire<TimerPurpose>(r.getPurpose());
}

void Read(Decoder& d, wire::TimerCancelled::Reader r, TimerCancelled* v) {
  d.TextInto(r.getTimerId(), &v->timer_id);
  v->due_at_ns = r.getDueAtNs();
}

void Read(Decoder& d, wire::EventReceived::Reader r, EventReceived* v) {
  d.TextInto(r.getEventType(), &v->event_type);
  d.TextInto(r.getSource(), &v->source);
  d.TextInto(r.getEventId(), &v->event_id);
  Read(d, "event_received.payload", r.getPayload(), &v->payload);
  Read(d, r.getActor(), &v->actor);
}

void Read(Decoder& d, wire::TaskCompleted::Reader r, TaskCompleted* v) {
  d.TextInto(r.getTaskName(), &v->task_name);
  v->status = FromWire<TaskCompleted::Status>(r.getStatus());
  Read(d, "task_completed.output", r.getOutput(), &v->output);
  Read(d, r.getError(), &v->error);
  d.TextInto(r.getThen(), &v->then);
  v->attempt = r.getAttempt();
}

void Read(Decoder& d, wire::BudgetCharged::Reader r, BudgetCharged* v) {
  v->phase = FromWire<BudgetCharged::Phase>(r.getPhase());
  d.TextInto(r.getReservationId(), &v->reservation_id);
  v->amounts = Read(r.getAmounts());
  v->cost_known = r.getCostKnown();
  v->spent_after = Read(r.getSpentAfter());
  v->reserved_after = Read(r.getReservedAfter());
  d.TextInto(r.getPurpose(), &v->purpose);
}

void Read(Decoder& d, wire::RunStopped::Reader r, RunStopped* v) {
  v->reason = FromWire<StopReason>(r.getReason());
  Read(d, "run_stopped.output", r.getOutput(), &v->output);
  Read(d, r.getError(), &v->error);
  d.TextInto(r.getDetail(), &v->detail);
  Read(d, r.getActor(), &v->actor);
}

void Read(Decoder& d, wire::ControlRequested::Reader r, ControlRequested* v) {
  v->action = FromWire<ControlRequested::Action>(r.getAction());
  Read(d, r.getActor(), &v->actor);
  d.TextInto(r.getReason(), &v->reason);
  Read(d, "control_requested.argument", r.getArgument(), &v->argument);
}

void Read(Decoder& d, wire::ValueRecorded::Reader r, ValueRecorded* v) {
  d.TextInto(r.getName(), &v->name);
  Read(d, "value_recorded.value", r.getValue(), &v->value);
}

// Reads into the body's alternative `Body` when it already holds one (a scan over a run
// sees long stretches of one kind), otherwise into a freshly emplaced one.
template <typename Body, typename Reader>
void ReadBody(Decoder& d, Reader r, EventBody* out) {
  Body* body = std::get_if<Body>(out);
  if (body == nullptr) body = &out->emplace<Body>();
  Read(d, r, body);
}

void Read(Decoder& d, wire::Event::Body::Reader r, EventBody* out) {
  using Body = wire::Event::Body;
  switch (r.which()) {
    case Body::RUN_STARTED:
      return ReadBody<RunStarted>(d, r.getRunStarted(), out);
    case Body::TASK_ROUTED:
      return ReadBody<TaskRouted>(d, r.getTaskRouted(), out);
    case Body::AGENT_DECIDED:
      return ReadBody<AgentDecided>(d, r.getAgentDecided(), out);
    case Body::POLICY_VERDICT:
      return ReadBody<PolicyVerdict>(d, r.getPolicyVerdict(), out);
    case Body::APPROVAL_REQUESTED:
      return ReadBody<ApprovalRequested>(d, r.getApprovalRequested(), out);
    case Body::APPROVAL_RESOLVED:
      return ReadBody<ApprovalResolved>(d, r.getApprovalResolved(), out);
    case Body::EFFECT_INTENT:
      return ReadBody<EffectIntent>(d, r.getEffectIntent(), out);
    case Body::EFFECT_OUTCOME:
      return ReadBody<EffectOutcome>(d, r.getEffectOutcome(), out);
    case Body::TIMER_SCHEDULED:
      return ReadBody<TimerScheduled>(d, r.getTimerScheduled(), out);
    case Body::TIMER_FIRED:
      return ReadBody<TimerFired>(d, r.getTimerFired(), out);
    case Body::TIMER_CANCELLED:
      return ReadBody<TimerCancelled>(d, r.getTimerCancelled(), out);
    case Body::EVENT_RECEIVED:
      return ReadBody<EventReceived>(d, r.getEventReceived(), out);
    case Body::TASK_COMPLETED:
      return ReadBody<TaskCompleted>(d, r.getTaskCompleted(), out);
    case Body::BUDGET_CHARGED:
      return ReadBody<BudgetCharged>(d, r.getBudgetCharged(), out);
    case Body::RUN_STOPPED:
      return ReadBody<RunStopped>(d, r.getRunStopped(), out);
    case Body::CONTROL_REQUESTED:
      return ReadBody<ControlRequested>(d, r.getControlRequested(), out);
    case Body::VALUE_RECORDED:
      return ReadBody<ValueRecorded>(d, r.getValueRecorded(), out);
  }
  // A member added by a newer writer: kept, but not interpretable by this build.
  out->emplace<UnknownBody>(UnknownBody{static_cast<uint16_t>(r.which())});
}

RunId ReadRunId(Decoder& d, capnp::Text::Reader r) {
  auto parsed = RunId::Parse(std::string_view(r.begin(), r.size()));
  if (!parsed.ok()) {
    d.Fail("run_id: " + parsed.status().message());
    return {};
  }
  return std::move(parsed).value();
}

void Read(Decoder& d, wire::Event::Reader r, Event* out) {
  // Scans decode a run's events into one Event: the id is usually the one already there.
  const capnp::Text::Reader run_id = r.getRunId();
  if (out->run_id.empty() || out->run_id.str() != std::string_view(run_id.begin(), run_id.size())) {
    out->run_id = ReadRunId(d, run_id);
  }
  out->seq = EventSeq(r.getSeq());
  if (out->seq.value() >= limits::events_per_run_max) {
    d.Fail("seq " + std::to_string(out->seq.value()) + " is not below " +
           std::to_string(limits::events_per_run_max));
  }
  out->time_ns = r.getTimeNs();
  out->prev_hash = d.RequiredHash("prev_hash", r.getPrevHash());
  d.TextInto(r.getTaskPath(), &out->task_path);
  Read(d, r.getBody(), &out->body);
}

// Reuses the list's elements, and their capacity, for the first entries.
void Read(Decoder& d, capnp::List<wire::TimerRef>::Reader r, std::vector<TimerRef>* v) {
  if (r.size() > limits::timers_per_run_max) {
    d.Fail("timers has " + std::to_string(r.size()) + " entries; at most " +
           std::to_string(limits::timers_per_run_max));
    v->clear();
    return;
  }
  v->resize(r.size());
  for (unsigned int i = 0; i < r.size(); ++i) {
    TimerRef& timer = (*v)[i];
    d.TextInto(r[i].getTimerId(), &timer.timer_id);
    if (timer.timer_id.empty()) d.Fail("timers[" + std::to_string(i) + "].timer_id is empty");
    timer.due_at_ns = r[i].getDueAtNs();
    timer.purpose = FromWire<TimerPurpose>(r[i].getPurpose());
  }
}

void Read(Decoder& d, wire::RunHeader::Reader r, RunHeader* out) {
  out->run_id = ReadRunId(d, r.getRunId());
  out->status = FromWire<RunStatus>(r.getStatus());
  out->stop_reason = FromWire<StopReason>(r.getStopReason());
  out->workflow_namespace = d.Text(r.getWorkflowNamespace());
  out->workflow_name = d.Text(r.getWorkflowName());
  out->workflow_version = d.Text(r.getWorkflowVersion());
  out->definition_hash = d.OptionalHash("definition_hash", r.getDefinitionHash());
  out->policy_hash = d.OptionalHash("policy_hash", r.getPolicyHash());
  out->created_at_ns = r.getCreatedAtNs();
  out->updated_at_ns = r.getUpdatedAtNs();
  out->next_seq = r.getNextSeq();
  if (out->next_seq > limits::events_per_run_max) {
    d.Fail("next_seq " + std::to_string(out->next_seq) + " is above " +
           std::to_string(limits::events_per_run_max));
  }
  // Written as 32 bytes; older or foreign writers may leave it out for an empty run.
  out->chain_head = d.OptionalHash("chain_head", r.getChainHead());
  out->start_key = d.Text(r.getStartKey());
  out->parent_run_id = d.Text(r.getParentRunId());
  out->budget_limits = Read(r.getBudgetLimits());
  out->budget_spent = Read(r.getBudgetSpent());
  out->budget_reserved = Read(r.getBudgetReserved());
  out->waiting_on = d.Text(r.getWaitingOn());
  out->engine_state = d.Data(r.getEngineState());
  Read(d, r.getTimers(), &out->timers);
}

uint32_t LoadLittleEndian32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// Checks the segment table against the input before Cap'n Proto sees it: a bounded
// segment count, and segments that add up to exactly the input (no truncation, no
// trailing bytes). `bytes` is non-empty and a whole number of words.
Status CheckFraming(std::string_view what, std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t words = bytes.size() / kWordBytes;
  const uint64_t segments = uint64_t{LoadLittleEndian32(p)} + 1;
  if (segments > kSegmentsMax) {
    return Status::DataLoss(std::string(what) + ": segment table claims " +
                            std::to_string(segments) + " segments; at most " +
                            std::to_string(kSegmentsMax) + " allowed");
  }
  const uint64_t table_words = segments / 2 + 1;  // count + sizes, padded to a word
  if (table_words > words) {
    return Status::DataLoss(std::string(what) + ": truncated in the segment table (" +
                            std::to_string(bytes.size()) + " bytes)");
  }
  uint64_t total = table_words;
  for (uint64_t i = 0; i < segments; ++i) total += LoadLittleEndian32(p + 4 * (i + 1));
  if (total > words) {
    return Status::DataLoss(std::string(what) + ": truncated: the segment table needs " +
                            std::to_string(total * kWordBytes) + " bytes, " +
                            std::to_string(bytes.size()) + " present");
  }
  if (total < words) {
    return Status::DataLoss(std::string(what) + ": " +
                            std::to_string((words - total) * kWordBytes) +
                            " trailing bytes after the message");
  }
  return Status::Ok();
}

// The input as words: Cap'n Proto reads whole words, and stored bytes may sit at any
// address. Aligned input is read where it is; otherwise it is copied, small inputs to the
// stack. `bytes` must outlive this.
class AlignedWords {
 public:
  explicit AlignedWords(std::string_view bytes) : size_(bytes.size() / kWordBytes) {
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
      words_ = reinterpret_cast<const capnp::word*>(bytes.data());
      return;
    }
    capnp::word* copy = inline_;
    if (size_ > kInlineDecodeWords) {
      heap_ = std::make_unique_for_overwrite<capnp::word[]>(size_);
      copy = heap_.get();
    }
    std::memcpy(static_cast<void*>(copy), bytes.data(), size_ * kWordBytes);
    words_ = copy;
  }
  AlignedWords(const AlignedWords&) = delete;
  AlignedWords& operator=(const AlignedWords&) = delete;

  kj::ArrayPtr<const capnp::word> words() const { return {words_, size_}; }

 private:
  size_t size_;
  const capnp::word* words_ = nullptr;
  std::unique_ptr<capnp::word[]> heap_;
  capnp::word inline_[kInlineDecodeWords];
};

// `what` names the value in errors; the messages are built only on an error path (this
// runs once per event of every scan).
template <typename Root, typename Value>
Status Decode(std::string_view what, std::string_view bytes, Value* out) {
  auto data_loss = [what](const std::string& message) {
    return Status::DataLoss(std::string(what) + ": " + message);
  };
  if (bytes.empty()) return data_loss("empty");
  if (bytes.size() > limits::event_bytes_max) {
    return data_loss(std::to_string(bytes.size()) + " bytes; at most " +
                     std::to_string(limits::event_bytes_max) + " allowed");
  }
  if (bytes.size() % kWordBytes != 0) {
    return data_loss(std::to_string(bytes.size()) + " bytes is not a whole number of 8-byte words");
  }
  CAIRN_RETURN_IF_ERROR(CheckFraming(what, bytes));
  Value& value = *out;
  Decoder decoder(what, bytes.size());
  try {
    const AlignedWords input(bytes);
    capnp::ReaderOptions options;
    options.traversalLimitInWords = limits::decode_traversal_words_max;
    options.nestingLimit = limits::decode_nesting_max;
    capnp::FlatArrayMessageReader reader(input.words(), options);
    if (reader.getEnd() != input.words().end()) {
      return data_loss("trailing bytes after the message");
    }
    Read(decoder, reader.getRoot<Root>(), &value);
  } catch (const kj::Exception& e) {
    return data_loss(std::string("malformed Cap'n Proto: ") + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return data_loss(std::string("cannot decode: ") + e.what());
  } catch (...) {
    return data_loss("cannot decode: unknown exception");
  }
  return decoder.status();
}

}  // namespace

Status EncodeEvent(const Event& event, std::string* out) {
  return Encode<wire::Event>("event", event, out);
}

Result<std::string> EncodeEvent(const Event& event) {
  std::string out;
  CAIRN_RETURN_IF_ERROR(EncodeEvent(event, &out));
  return out;
}

Status DecodeEvent(std::string_view bytes, Event* out) {
  return Decode<wire::Event>("event", bytes, out);
}

Result<Event> DecodeEvent(std::string_view bytes) {
  Event event;
  CAIRN_RETURN_IF_ERROR(DecodeEvent(bytes, &event));
  return event;
}

Status EncodeRunHeader(const RunHeader& header, std::string* out) {
  return Encode<wire::RunHeader>("run header", header, out);
}

Result<std::string> EncodeRunHeader(const RunHeader& header) {
  std::string out;
  CAIRN_RETURN_IF_ERROR(EncodeRunHeader(header, &out));
  return out;
}

Result<RunHeader> DecodeRunHeader(std::string_view bytes) {
  RunHeader header;
  CAIRN_RETURN_IF_ERROR(Decode<wire::RunHeader>("run header", bytes, &header));
  return header;
}

}  // namespace cairn::storage
