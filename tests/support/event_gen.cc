#include "tests/support/event_gen.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/assert.h"
#include "base/limits.h"

namespace cairn::testing {
namespace {

namespace st = ::cairn::storage;

constexpr std::string_view kRunIdAlphabet =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-";
// Pieces of text: ASCII, JSON-hostile punctuation, multi-byte UTF-8 and NUL.
constexpr std::array<std::string_view, 12> kTextPieces = {"a",
                                                          "Z",
                                                          "7",
                                                          " ",
                                                          "-",
                                                          "\"",
                                                          "\\",
                                                          "\n",
                                                          "\xc3\xa9" /* é */,
                                                          "\xe2\x86\x92" /* → */,
                                                          "\xf0\x9f\x99\x82" /* 🙂 */,
                                                          std::string_view("\0", 1)};

// Draws field values. A "dense" generator gives every field a non-default value; otherwise
// each field is non-default with probability 7/8, so that defaults are covered too.
class Gen {
 public:
  Gen(Random& rng, size_t payload_bytes, bool dense)
      : rng_(rng), payload_bytes_(payload_bytes), dense_(dense) {}

  Random& rng() { return rng_; }
  bool Set() { return dense_ || !rng_.OneIn(8); }

  // Non-empty text of 1..max_len pieces.
  std::string Text(size_t max_len = 16) {
    std::string out;
    const size_t n = 1 + rng_.Uniform(max_len);
    for (size_t i = 0; i < n; ++i) {
      // Mostly letters, so that text stays readable in failure output.
      out += rng_.OneIn(4) ? kTextPieces[rng_.Uniform(kTextPieces.size())]
                           : kTextPieces[rng_.Uniform(3)];
    }
    return out;
  }
  std::string MaybeText(size_t max_len = 16) { return Set() ? Text(max_len) : std::string(); }

  Sha256 MaybeHash() {
    if (!Set()) return {};
    Sha256 digest = Sha256::Of(rng_.Bytes(8));
    return digest.IsZero() ? Sha256::Of("x") : digest;
  }

  uint64_t MaybeU64() {
    if (!Set()) return 0;
    // Small values read well in failures; the full range reaches the limits.
    const uint64_t v = rng_.OneIn(2) ? rng_.Uniform(1000) : rng_.Next64();
    return v == 0 ? 1 : v;
  }
  uint32_t MaybeU32() {
    if (!Set()) return 0;
    return 1 + static_cast<uint32_t>(rng_.Uniform(rng_.OneIn(2) ? 1000 : 0xffffffffu));
  }
  int64_t MaybeI64() {
    if (!Set()) return 0;
    const int64_t v = rng_.OneIn(2) ? rng_.Range(-1000, 1000) : static_cast<int64_t>(rng_.Next64());
    return v == 0 ? -1 : v;
  }
  int32_t MaybeI32() {
    if (!Set()) return 0;
    const int64_t v = rng_.OneIn(2) ? rng_.Range(-600, 600) : rng_.Range(INT32_MIN, INT32_MAX);
    return v == 0 ? 200 : static_cast<int32_t>(v);
  }
  bool MaybeTrue() { return Set() && (dense_ || rng_.OneIn(2)); }

  // A value in [0, last]; never the first (default) value when dense.
  template <typename Enum>
  Enum MaybeEnum(Enum last) {
    const auto n = static_cast<uint64_t>(last);
    if (dense_) return static_cast<Enum>(1 + rng_.Uniform(n));
    return static_cast<Enum>(rng_.Uniform(n + 1));
  }

  st::Payload MaybePayload() {
    const uint64_t pick = dense_ ? 1 + rng_.Uniform(2) : rng_.Uniform(5);
    if (pick == 0) return st::Payload::None();
    if (pick == 2) return st::Payload::Blob(Sha256::Of(rng_.Bytes(8)));
    const size_t bytes = payload_bytes_ == 0 ? 2 : 1 + rng_.Uniform(2 * payload_bytes_);
    return st::Payload::Json(MakeJson(rng_, bytes));
  }

  st::ErrorInfo MaybeError() {
    if (!Set()) return {};
    return {"https://serverlessworkflow.io/spec/1.0.0/errors/" + Text(8), MaybeI32(), MaybeText(),
            MaybeText(40), "/do/" + std::to_string(rng_.Uniform(10))};
  }

  st::Actor MaybeActor() {
    if (!Set()) return {};
    return {Text(12), dense_ || rng_.OneIn(2) ? "operator" : ""};
  }

  st::Usage MaybeUsage() { return {MaybeU64(), MaybeU64(), MaybeI64(), MaybeTrue(), MaybeU32()}; }

  st::BudgetAmounts MaybeBudget() {
    return {MaybeU64(), MaybeU64(), MaybeI64(), MaybeU64(), MaybeU64()};
  }

 private:
  Random& rng_;
  size_t payload_bytes_;
  bool dense_;
};

st::RunStarted GenRunStarted(Gen& g) {
  st::RunStarted v;
  v.workflow_namespace = g.MaybeText();
  v.workflow_name = g.MaybeText();
  v.workflow_version = g.MaybeText(6);
  v.definition_hash = g.MaybeHash();
  v.input = g.MaybePayload();
  v.policy_hash = g.MaybeHash();
  v.start_key = g.MaybeText(32);
  v.started_by = g.MaybeActor();
  v.parent_run_id = g.Set() ? RandomRunId(g.rng()).str() : "";
  v.budget_limits = g.MaybeBudget();
  v.agent_config_hash = g.MaybeHash();
  v.tool_catalog_hash = g.MaybeHash();
  return v;
}

st::TaskRouted GenTaskRouted(Gen& g) {
  return {g.MaybeText(), g.MaybeText(6), g.MaybeEnum(st::TaskRouted::Mode::kAgentic),
          g.MaybePayload(), g.MaybeU32()};
}

st::AgentDecided GenAgentDecided(Gen& g) {
  st::AgentDecided v;
  v.agent = g.MaybeText();
  v.model = g.MaybeText();
  v.reason_code = g.MaybeText(8);
  v.option = g.MaybeText();
  v.rationale = g.MaybeText(64);
  v.has_confidence = g.MaybeTrue();
  if (v.has_confidence) v.confidence = 1e-6 * static_cast<double>(1 + g.rng().Uniform(1'000'000));
  v.steps_used = g.MaybeU32();
  v.usage = g.MaybeUsage();
  if (g.Set()) {
    v.options.resize(1 + g.rng().Uniform(4));
    for (auto& option : v.options) option = g.MaybeText();
  }
  v.request_blob = g.MaybeHash();
  v.response_blob = g.MaybeHash();
  v.duration_ms = g.MaybeU64();
  v.detail = g.MaybeText(32);
  v.goal = g.MaybeText(32);
  v.decision_key = g.MaybeText(16);
  return v;
}

st::PolicyVerdict GenPolicyVerdict(Gen& g) {
  st::PolicyVerdict v;
  v.policy_hash = g.MaybeHash();
  v.rule_id = g.MaybeText();
  v.decision = g.MaybeEnum(st::PolicyVerdict::Decision::kDeny);
  v.reason_code = g.MaybeText(8);
  v.tool = g.MaybeText();
  v.risk = g.MaybeEnum(st::RiskLevel::kCritical);
  v.arguments_hash = g.MaybeHash();
  v.stage = g.MaybeEnum(st::PolicyVerdict::Stage::kBeforeCommit);
  v.detail = g.MaybeText(32);
  return v;
}

st::ApprovalRequested GenApprovalRequested(Gen& g) {
  st::ApprovalRequested v{
      g.MaybeText(),    g.MaybeText(),   g.MaybeHash(),
      g.MaybePayload(), g.MaybeI64(),    g.MaybeEnum(st::ApprovalResolution::kExpired),
      g.MaybeText(),    g.MaybeText(32), {}};
  if (g.Set()) {
    v.approvers.resize(1 + g.rng().Uniform(3));
    for (auto& approver : v.approvers) approver = g.MaybeText();
  }
  return v;
}

st::ApprovalResolved GenApprovalResolved(Gen& g) {
  return {g.MaybeText(), g.MaybeEnum(st::ApprovalResolution::kExpired), g.MaybeActor(),
          g.MaybeText(32), g.MaybeHash()};
}

st::EffectIntent GenEffectIntent(Gen& g) {
  return {g.MaybeText(32),
          g.MaybeText(),
          g.MaybeEnum(st::EffectKind::kWrite),
          g.MaybeEnum(st::RiskLevel::kCritical),
          g.MaybePayload(),
          g.MaybeU32(),
          g.MaybeText(8),
          g.MaybeTrue()};
}

st::EffectOutcome GenEffectOutcome(Gen& g) {
  return {g.MaybeText(32),  g.MaybeEnum(st::EffectOutcome::Status::kTimedOut),
          g.MaybePayload(), g.MaybeError(),
          g.MaybeU64(),     g.MaybeU32(),
          g.MaybeActor()};
}

st::TimerScheduled GenTimerScheduled(Gen& g) {
  // The store requires a timer id of 1..limits::timer_id_bytes_max bytes.
  return {"t-" + g.MaybeText(), g.MaybeI64(), g.MaybeEnum(st::TimerPurpose::kBudgetWallClock)};
}

st::TimerFired GenTimerFired(Gen& g) {
  return {g.MaybeText(), g.MaybeI64(), g.MaybeEnum(st::TimerPurpose::kBudgetWallClock)};
}

st::TimerCancelled GenTimerCancelled(Gen& g) { return {g.MaybeText(), g.MaybeI64()}; }

st::EventReceived GenEventReceived(Gen& g) {
  return {g.MaybeText(), g.MaybeText(), g.MaybeText(), g.MaybePayload(), g.MaybeActor()};
}

st::TaskCompleted GenTaskCompleted(Gen& g) {
  return {g.MaybeText(),    g.MaybeEnum(st::TaskCompleted::Status::kSkipped),
          g.MaybePayload(), g.MaybeError(),
          g.MaybeText(8),   g.MaybeU32()};
}

st::BudgetCharged GenBudgetCharged(Gen& g) {
  return {g.MaybeEnum(st::BudgetCharged::Phase::kRelease),
          g.MaybeText(),
          g.MaybeBudget(),
          g.MaybeTrue(),
          g.MaybeBudget(),
          g.MaybeBudget(),
          g.MaybeText()};
}

st::RunStopped GenRunStopped(Gen& g) {
  return {g.MaybeEnum(st::StopReason::kCancelled), g.MaybePayload(), g.MaybeError(),
          g.MaybeText(32), g.MaybeActor()};
}

st::ControlRequested GenControlRequested(Gen& g) {
  return {g.MaybeEnum(st::ControlRequested::Action::kSignal), g.MaybeActor(), g.MaybeText(32),
          g.MaybePayload()};
}

st::ValueRecorded GenValueRecorded(Gen& g) { return {g.MaybeText(), g.MaybePayload()}; }

// In EventBody's alternative order.
using BodyGenerator = st::EventBody (*)(Gen&);
template <auto Fn>
st::EventBody Wrap(Gen& g) {
  return Fn(g);
}
constexpr std::array<BodyGenerator, kEventBodyKinds> kBodyGenerators = {
    Wrap<GenRunStarted>,       Wrap<GenTaskRouted>,        Wrap<GenAgentDecided>,
    Wrap<GenPolicyVerdict>,    Wrap<GenApprovalRequested>, Wrap<GenApprovalResolved>,
    Wrap<GenEffectIntent>,     Wrap<GenEffectOutcome>,     Wrap<GenTimerScheduled>,
    Wrap<GenTimerFired>,       Wrap<GenTimerCancelled>,    Wrap<GenEventReceived>,
    Wrap<GenTaskCompleted>,    Wrap<GenBudgetCharged>,     Wrap<GenRunStopped>,
    Wrap<GenControlRequested>, Wrap<GenValueRecorded>};

void AppendJsonString(Random& rng, size_t length, std::string* out) {
  static constexpr std::array<std::string_view, 8> kPieces = {
      "a", "b", "Q", " ", "\\\"", "\\n", "\\u00e9", "\xe2\x86\x92"};
  out->push_back('"');
  for (size_t i = 0; i < length; ++i) {
    *out += rng.OneIn(5) ? kPieces[rng.Uniform(kPieces.size())] : kPieces[rng.Uniform(3)];
  }
  out->push_back('"');
}

// Appends one JSON value; `budget` bounds the length of strings and containers.
void AppendJsonValue(Random& rng, size_t budget, int depth, std::string* out) {
  switch (rng.Uniform(depth < 3 ? 7 : 5)) {
    case 0:
      AppendJsonString(rng, rng.Uniform(std::max<size_t>(1, std::min<size_t>(budget, 512))), out);
      return;
    case 1:
      *out += std::to_string(rng.Range(-1'000'000, 1'000'000));
      return;
    case 2:
      *out += std::to_string(rng.Range(-999, 999)) + ".25e" + std::to_string(rng.Range(-5, 5));
      return;
    case 3:
      *out += rng.OneIn(2) ? "true" : "false";
      return;
    case 4:
      *out += "null";
      return;
    case 5: {
      out->push_back('[');
      const size_t n = rng.Uniform(4);
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonValue(rng, budget / 4, depth + 1, out);
      }
      out->push_back(']');
      return;
    }
    default: {
      out->push_back('{');
      const size_t n = rng.Uniform(3);
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        *out += "\"f" + std::to_string(i) + "\":";
        AppendJsonValue(rng, budget / 4, depth + 1, out);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

std::string MakeJson(Random& rng, size_t bytes) {
  std::string out = "{";
  for (size_t i = 0; out.size() + 1 < bytes; ++i) {
    if (i > 0) out.push_back(',');
    out += "\"k" + std::to_string(i) + "\":";
    AppendJsonValue(rng, bytes - out.size(), 0, &out);
  }
  out.push_back('}');
  return out;
}

RunId RandomRunId(Random& rng) {
  if (rng.OneIn(2)) return RunId::Generate(rng.Range(0, int64_t{1} << 60), rng);
  const size_t length = 1 + rng.Uniform(rng.OneIn(4) ? limits::run_id_bytes_max : 24);
  std::string text(length, ' ');
  for (char& c : text) c = kRunIdAlphabet[rng.Uniform(kRunIdAlphabet.size())];
  return RunId::FromTrusted(text);
}

st::EventBody RandomEventBodyOfKind(Random& rng, size_t index, size_t approx_payload_bytes) {
  CAIRN_ASSERT(index < kEventBodyKinds, "RandomEventBodyOfKind: no such kind");
  Gen gen(rng, approx_payload_bytes, /*dense=*/false);
  return kBodyGenerators[index](gen);
}

st::EventBody RandomEventBody(Random& rng, size_t approx_payload_bytes) {
  return RandomEventBodyOfKind(rng, rng.Uniform(kEventBodyKinds), approx_payload_bytes);
}

st::EventBody RandomMiddleEventBody(Random& rng, size_t approx_payload_bytes) {
  for (;;) {
    st::EventBody body = RandomEventBody(rng, approx_payload_bytes);
    if (std::holds_alternative<st::RunStarted>(body) ||
        std::holds_alternative<st::RunStopped>(body) ||
        std::holds_alternative<st::TimerFired>(body) ||
        std::holds_alternative<st::TimerCancelled>(body)) {
      continue;
    }
    if (auto* t = std::get_if<st::TimerScheduled>(&body)) {
      t->timer_id = "t-" + std::to_string(rng.Next64());
    }
    return body;
  }
}

st::EventBody SampleBody(size_t index) {
  Random rng(0x5eed0000 + index);
  Gen gen(rng, 48, /*dense=*/true);
  return kBodyGenerators[index % kEventBodyKinds](gen);
}

st::Event RandomEvent(Random& rng, const RunId& run_id, EventSeq seq, const Sha256& prev_hash,
                      int64_t time_ns, size_t approx_payload_bytes) {
  st::Event event;
  event.run_id = run_id;
  event.seq = seq;
  event.time_ns = time_ns;
  event.prev_hash = prev_hash;
  if (!rng.OneIn(4)) event.task_path = "/do/" + std::to_string(rng.Uniform(20)) + "/step";
  event.body = RandomEventBody(rng, approx_payload_bytes);
  return event;
}

st::Event RandomEvent(Random& rng, size_t approx_payload_bytes) {
  const RunId run_id = RandomRunId(rng);
  const EventSeq seq(rng.OneIn(2) ? rng.Uniform(100) : rng.Uniform(limits::events_per_run_max));
  const Sha256 prev_hash = seq.value() == 0 ? Sha256() : Sha256::Of(rng.Bytes(8));
  const int64_t time_ns = static_cast<int64_t>(rng.Next64());
  return RandomEvent(rng, run_id, seq, prev_hash, time_ns, approx_payload_bytes);
}

st::RunHeader RandomRunHeader(Random& rng) {
  Gen g(rng, 0, /*dense=*/false);
  st::RunHeader h;
  h.run_id = RandomRunId(rng);
  h.status = g.MaybeEnum(st::RunStatus::kKilled);
  h.stop_reason = g.MaybeEnum(st::StopReason::kCancelled);
  h.workflow_namespace = g.MaybeText();
  h.workflow_name = g.MaybeText();
  h.workflow_version = g.MaybeText(6);
  h.definition_hash = g.MaybeHash();
  h.policy_hash = g.MaybeHash();
  h.created_at_ns = g.MaybeI64();
  h.updated_at_ns = g.MaybeI64();
  h.next_seq = g.Set() ? 1 + rng.Uniform(limits::events_per_run_max) : 0;
  h.chain_head = g.MaybeHash();
  h.start_key = g.MaybeText(32);
  h.parent_run_id = g.Set() ? RandomRunId(rng).str() : "";
  h.budget_limits = g.MaybeBudget();
  h.budget_spent = g.MaybeBudget();
  h.budget_reserved = g.MaybeBudget();
  h.waiting_on = g.MaybeText();
  h.engine_state = g.Set() ? rng.Bytes(1 + rng.Uniform(256)) : "";
  const size_t timers = g.Set() ? 1 + rng.Uniform(3) : 0;
  for (size_t i = 0; i < timers; ++i) {
    h.timers.push_back({std::to_string(i) + "-" + g.Text(8), g.MaybeI64(),
                        g.MaybeEnum(st::TimerPurpose::kBudgetWallClock)});
  }
  return h;
}

}  // namespace cairn::testing
