#include "storage/event.h"

#include <array>
#include <string>

namespace cairn::storage {
namespace {

// Names are part of the JSONL export format and of CLI filters: never rename one.
constexpr std::array<std::string_view, 5> kRiskLevelNames = {"unspecified", "low", "medium", "high",
                                                             "critical"};
constexpr std::array<std::string_view, 8> kRunStatusNames = {
    "unknown", "running", "waiting", "blocked", "completed", "failed", "cancelled", "killed"};
constexpr std::array<std::string_view, 13> kStopReasonNames = {
    "none",          "completed",        "faulted",
    "max_steps",     "budget_exhausted", "timeout",
    "policy_denied", "approval_denied",  "approval_expired",
    "killed",        "nondeterminism",   "indeterminate_effect",
    "cancelled"};
constexpr std::array<std::string_view, 3> kApprovalResolutionNames = {"approved", "rejected",
                                                                      "expired"};
constexpr std::array<std::string_view, 2> kEffectKindNames = {"read", "write"};
constexpr std::array<std::string_view, 7> kTimerPurposeNames = {
    "wait",           "retry_backoff",    "task_timeout", "workflow_timeout", "approval_expiry",
    "listen_timeout", "budget_wall_clock"};
// In EventBody's alternative order; UnknownBody last.
constexpr std::array<std::string_view, std::variant_size_v<EventBody>> kKindNames = {
    "run_started",       "task_routed",        "agent_decided",
    "policy_verdict",    "approval_requested", "approval_resolved",
    "effect_intent",     "effect_outcome",     "timer_scheduled",
    "timer_fired",       "timer_cancelled",    "event_received",
    "task_completed",    "budget_charged",     "run_stopped",
    "control_requested", "value_recorded",     "unknown"};

static_assert(kRiskLevelNames.size() == static_cast<size_t>(RiskLevel::kCritical) + 1);
static_assert(kRunStatusNames.size() == static_cast<size_t>(RunStatus::kKilled) + 1);
static_assert(kStopReasonNames.size() == static_cast<size_t>(StopReason::kCancelled) + 1);
static_assert(kApprovalResolutionNames.size() ==
              static_cast<size_t>(ApprovalResolution::kExpired) + 1);
static_assert(kEffectKindNames.size() == static_cast<size_t>(EffectKind::kWrite) + 1);
static_assert(kTimerPurposeNames.size() == static_cast<size_t>(TimerPurpose::kBudgetWallClock) + 1);

// A value outside the enumeration (only possible through a cast bug) gets "unknown" rather
// than undefined behaviour.
template <typename Enum, size_t N>
std::string_view Lookup(const std::array<std::string_view, N>& names, Enum v) {
  const auto i = static_cast<size_t>(v);
  return i < N ? names[i] : std::string_view("unknown");
}

}  // namespace

bool IsTerminal(RunStatus status) {
  switch (status) {
    case RunStatus::kCompleted:
    case RunStatus::kFailed:
    case RunStatus::kCancelled:
    case RunStatus::kKilled:
      return true;
    case RunStatus::kUnknown:
    case RunStatus::kRunning:
    case RunStatus::kWaiting:
    case RunStatus::kBlocked:
      return false;
  }
  return false;
}

std::string_view Name(RiskLevel v) { return Lookup(kRiskLevelNames, v); }
std::string_view Name(RunStatus v) { return Lookup(kRunStatusNames, v); }
std::string_view Name(StopReason v) { return Lookup(kStopReasonNames, v); }
std::string_view Name(ApprovalResolution v) { return Lookup(kApprovalResolutionNames, v); }
std::string_view Name(EffectKind v) { return Lookup(kEffectKindNames, v); }
std::string_view Name(TimerPurpose v) { return Lookup(kTimerPurposeNames, v); }

std::optional<RiskLevel> ParseRiskLevel(std::string_view name) {
  for (size_t i = 1; i < kRiskLevelNames.size(); ++i) {
    if (kRiskLevelNames[i] == name) return static_cast<RiskLevel>(i);
  }
  return std::nullopt;
}

std::optional<EffectKind> ParseEffectKind(std::string_view name) {
  for (size_t i = 0; i < kEffectKindNames.size(); ++i) {
    if (kEffectKindNames[i] == name) return static_cast<EffectKind>(i);
  }
  return std::nullopt;
}

Result<RunStatus> ParseRunStatus(std::string_view name) {
  for (size_t i = 0; i < kRunStatusNames.size(); ++i) {
    if (kRunStatusNames[i] == name) return static_cast<RunStatus>(i);
  }
  std::string msg = "unknown run status '" + std::string(name) + "'; expected one of: ";
  for (size_t i = 0; i < kRunStatusNames.size(); ++i) {
    if (i > 0) msg += ", ";
    msg += kRunStatusNames[i];
  }
  return Status::InvalidArgument(std::move(msg));
}

std::string_view KindName(const EventBody& body) {
  const size_t i = body.index();  // variant_npos if valueless
  return i < kKindNames.size() ? kKindNames[i] : std::string_view("unknown");
}

}  // namespace cairn::storage
