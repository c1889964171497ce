// The event log's vocabulary as plain C++ values.
//
// These structs mirror storage/event.capnp one to one. The rest of cairn builds and reads
// events through them; only storage/codec.cc touches Cap'n Proto. All types are regular
// values (copyable, comparable with ==), thread-compatible.
//
// Adding a field: add it to event.capnp with the next ordinal, here, and in codec.cc
// (both directions), and to event_json.cc. Never renumber or reuse.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/sha256.h"

namespace cairn::storage {

// A JSON value carried by an event: absent, inline JSON text, or a blob reference.
struct Payload {
  enum class Kind : uint8_t { kNone, kJson, kBlob };
  Kind kind = Kind::kNone;
  std::string json;  // kJson: the JSON text
  Sha256 blob;       // kBlob: digest of a blob holding the JSON text

  static Payload None() { return {}; }
  static Payload Json(std::string text) { return {Kind::kJson, std::move(text), {}}; }
  static Payload Blob(const Sha256& digest) { return {Kind::kBlob, {}, digest}; }
  friend bool operator==(const Payload&, const Payload&) = default;
};

struct ErrorInfo {
  std::string type;
  int32_t status = 0;
  std::string title;
  std::string detail;
  std::string instance;
  bool empty() const { return type.empty() && status == 0 && title.empty() && detail.empty(); }
  friend bool operator==(const ErrorInfo&, const ErrorInfo&) = default;
};

struct Actor {
  std::string name;
  std::string role;
  friend bool operator==(const Actor&, const Actor&) = default;
};

struct Usage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  int64_t cost_micros = 0;
  bool cost_known = false;
  uint32_t calls = 0;
  friend bool operator==(const Usage&, const Usage&) = default;
};

struct BudgetAmounts {
  uint64_t steps = 0;
  uint64_t tokens = 0;
  int64_t cost_micros = 0;
  uint64_t wall_ms = 0;
  uint64_t tool_calls = 0;
  friend bool operator==(const BudgetAmounts&, const BudgetAmounts&) = default;
};

// Enumerations keep the schema's numbering. Values a newer writer added and this reader
// does not know decode as the `k...Unknown`/first value documented on each decoder.
enum class RiskLevel : uint8_t { kUnspecified = 0, kLow, kMedium, kHigh, kCritical };
enum class RunStatus : uint8_t {
  kUnknown = 0,
  kRunning,
  kWaiting,
  kBlocked,
  kCompleted,
  kFailed,
  kCancelled,
  kKilled
};
enum class StopReason : uint8_t {
  kNone = 0,
  kCompleted,
  kFaulted,
  kMaxSteps,
  kBudgetExhausted,
  kTimeout,
  kPolicyDenied,
  kApprovalDenied,
  kApprovalExpired,
  kKilled,
  kNondeterminism,
  kIndeterminateEffect,
  kCancelled
};
enum class ApprovalResolution : uint8_t { kApproved = 0, kRejected, kExpired };
enum class EffectKind : uint8_t { kRead = 0, kWrite };
enum class TimerPurpose : uint8_t {
  kWait = 0,
  kRetryBackoff,
  kTaskTimeout,
  kWorkflowTimeout,
  kApprovalExpiry,
  kListenTimeout,
  kBudgetWallClock
};

// True for completed, failed, cancelled and killed.
bool IsTerminal(RunStatus status);

// Stable snake_case names, as used in JSON output and CLI filters ("budget_exhausted").
std::string_view Name(RiskLevel v);
std::string_view Name(RunStatus v);
std::string_view Name(StopReason v);
std::string_view Name(ApprovalResolution v);
std::string_view Name(EffectKind v);
std::string_view Name(TimerPurpose v);
// The level / kind a Name() gives back; nullopt for any other text ("unspecified" is not
// a level one may ask for).
std::optional<RiskLevel> ParseRiskLevel(std::string_view name);
std::optional<EffectKind> ParseEffectKind(std::string_view name);
// Parses a RunStatus name; kInvalidArgument listing the valid names otherwise.
Result<RunStatus> ParseRunStatus(std::string_view name);

struct RunStarted {
  std::string workflow_namespace;
  std::string workflow_name;
  std::string workflow_version;
  Sha256 definition_hash;
  Payload input;
  Sha256 policy_hash;
  std::string start_key;
  Actor started_by;
  std::string parent_run_id;
  BudgetAmounts budget_limits;
  Sha256 agent_config_hash;
  Sha256 tool_catalog_hash;
  friend bool operator==(const RunStarted&, const RunStarted&) = default;
};

struct TaskRouted {
  enum class Mode : uint8_t { kDeterministic = 0, kAgentic };
  std::string task_name;
  std::string task_kind;
  Mode mode = Mode::kDeterministic;
  Payload input;
  uint32_t attempt = 0;
  friend bool operator==(const TaskRouted&, const TaskRouted&) = default;
};

struct AgentDecided {
  std::string agent;
  std::string model;
  std::string reason_code;
  std::string option;
  std::string rationale;
  bool has_confidence = false;
  double confidence = 0;
  uint32_t steps_used = 0;
  Usage usage;
  std::vector<std::string> options;
  Sha256 request_blob;
  Sha256 response_blob;
  uint64_t duration_ms = 0;
  std::string detail;
  std::string goal;
  std::string decision_key;
  friend bool operator==(const AgentDecided&, const AgentDecided&) = default;
};

struct PolicyVerdict {
  enum class Decision : uint8_t { kAllow = 0, kRequireApproval, kDeny };
  enum class Stage : uint8_t { kBeforeCall = 0, kBeforeCommit };
  Sha256 policy_hash;
  std::string rule_id;
  Decision decision = Decision::kDeny;
  std::string reason_code;
  std::string tool;
  RiskLevel risk = RiskLevel::kUnspecified;
  Sha256 arguments_hash;
  Stage stage = Stage::kBeforeCall;
  std::string detail;
  friend bool operator==(const PolicyVerdict&, const PolicyVerdict&) = default;
};

struct ApprovalRequested {
  std::string approval_id;
  std::string tool;
  Sha256 binding_hash;
  Payload arguments;
  int64_t expires_at_ns = 0;
  ApprovalResolution on_expiry = ApprovalResolution::kRejected;
  std::string rule_id;
  std::string reason;
  std::vector<std::string> approvers;
  friend bool operator==(const ApprovalRequested&, const ApprovalRequested&) = default;
};

struct ApprovalResolved {
  std::string approval_id;
  ApprovalResolution resolution = ApprovalResolution::kRejected;
  Actor actor;
  std::string reason;
  Sha256 binding_hash;
  friend bool operator==(const ApprovalResolved&, const ApprovalResolved&) = default;
};

struct EffectIntent {
  std::string idempotency_key;
  std::string tool;
  EffectKind effect = EffectKind::kWrite;
  RiskLevel risk = RiskLevel::kUnspecified;
  Payload arguments;
  uint32_t attempt = 0;
  std::string executor;
  bool idempotent = false;
  friend bool operator==(const EffectIntent&, const EffectIntent&) = default;
};

struct EffectOutcome {
  enum class Status : uint8_t { kOk = 0, kFailed, kIndeterminate, kTimedOut };
  std::string idempotency_key;
  Status status = Status::kOk;
  Payload result;
  ErrorInfo error;
  uint64_t duration_ms = 0;
  uint32_t attempt = 0;
  Actor resolved_by;
  friend bool operator==(const EffectOutcome&, const EffectOutcome&) = default;
};

struct TimerScheduled {
  std::string timer_id;
  int64_t due_at_ns = 0;
  TimerPurpose purpose = TimerPurpose::kWait;
  friend bool operator==(const TimerScheduled&, const TimerScheduled&) = default;
};

struct TimerFired {
  std::string timer_id;
  int64_t due_at_ns = 0;
  TimerPurpose purpose = TimerPurpose::kWait;
  friend bool operator==(const TimerFired&, const TimerFired&) = default;
};

struct TimerCancelled {
  std::string timer_id;
  int64_t due_at_ns = 0;
  friend bool operator==(const TimerCancelled&, const TimerCancelled&) = default;
};

struct EventReceived {
  std::string event_type;
  std::string source;
  std::string event_id;
  Payload payload;
  Actor actor;
  friend bool operator==(const EventReceived&, const EventReceived&) = default;
};

struct TaskCompleted {
  enum class Status : uint8_t { kCompleted = 0, kFaulted, kSkipped };
  std::string task_name;
  Status status = Status::kCompleted;
  Payload output;
  ErrorInfo error;
  std::string then;
  uint32_t attempt = 0;
  friend bool operator==(const TaskCompleted&, const TaskCompleted&) = default;
};

struct BudgetCharged {
  enum class Phase : uint8_t { kReserve = 0, kSettle, kRelease };
  Phase phase = Phase::kReserve;
  std::string reservation_id;
  BudgetAmounts amounts;
  bool cost_known = false;
  BudgetAmounts spent_after;
  BudgetAmounts reserved_after;
  std::string purpose;
  friend bool operator==(const BudgetCharged&, const BudgetCharged&) = default;
};

struct RunStopped {
  StopReason reason = StopReason::kNone;
  Payload output;
  ErrorInfo error;
  std::string detail;
  Actor actor;
  friend bool operator==(const RunStopped&, const RunStopped&) = default;
};

struct ControlRequested {
  enum class Action : uint8_t { kCancel = 0, kKill, kResume, kResolveEffect, kSignal };
  Action action = Action::kCancel;
  Actor actor;
  std::string reason;
  Payload argument;
  friend bool operator==(const ControlRequested&, const ControlRequested&) = default;
};

struct ValueRecorded {
  std::string name;
  Payload value;
  friend bool operator==(const ValueRecorded&, const ValueRecorded&) = default;
};

// Written by a newer cairn with a body kind this build does not know. Such events are
// kept and hashed as stored bytes, but cannot be interpreted.
struct UnknownBody {
  uint16_t which = 0;
  friend bool operator==(const UnknownBody&, const UnknownBody&) = default;
};

// The order of alternatives is the schema's union order: index() + 5 is the ordinal.
using EventBody =
    std::variant<RunStarted, TaskRouted, AgentDecided, PolicyVerdict, ApprovalRequested,
                 ApprovalResolved, EffectIntent, EffectOutcome, TimerScheduled, TimerFired,
                 TimerCancelled, EventReceived, TaskCompleted, BudgetCharged, RunStopped,
                 ControlRequested, ValueRecorded, UnknownBody>;

// snake_case name of the body's kind: "run_started", "agent_decided", ...
std::string_view KindName(const EventBody& body);

struct Event {
  RunId run_id;
  EventSeq seq;
  int64_t time_ns = 0;
  Sha256 prev_hash;
  std::string task_path;
  EventBody body;
  friend bool operator==(const Event&, const Event&) = default;
};

// A timer a run has scheduled that has neither fired nor been cancelled.
struct TimerRef {
  std::string timer_id;
  int64_t due_at_ns = 0;
  TimerPurpose purpose = TimerPurpose::kWait;
  friend bool operator==(const TimerRef&, const TimerRef&) = default;
};

// The run header: one per run, rewritten by every transition. The store owns next_seq,
// chain_head, created_at_ns, updated_at_ns and timers; everything else is the caller's.
struct RunHeader {
  RunId run_id;
  RunStatus status = RunStatus::kUnknown;
  StopReason stop_reason = StopReason::kNone;
  std::string workflow_namespace;
  std::string workflow_name;
  std::string workflow_version;
  Sha256 definition_hash;
  Sha256 policy_hash;
  int64_t created_at_ns = 0;
  int64_t updated_at_ns = 0;
  uint64_t next_seq = 0;
  Sha256 chain_head;
  std::string start_key;
  std::string parent_run_id;
  BudgetAmounts budget_limits;
  BudgetAmounts budget_spent;
  BudgetAmounts budget_reserved;
  std::string waiting_on;
  std::string engine_state;
  // Outstanding timers in scheduling order, maintained by the store from timer_scheduled,
  // timer_fired and timer_cancelled events; cleared (and their index keys deleted) when
  // the run stops. At most limits::timers_per_run_max.
  std::vector<TimerRef> timers;
  friend bool operator==(const RunHeader&, const RunHeader&) = default;
};

}  // namespace cairn::storage
