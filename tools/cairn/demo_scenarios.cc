#include "tools/cairn/demo_scenarios.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/assert.h"
#include "base/ids.h"

// Events are written as designated initializers naming only the fields a scenario sets;
// the rest keep their defaults on purpose. GCC 12 warns about that in C++ (GCC bug 96868).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace cairn::cli::demo {
namespace {

using json = nlohmann::json;
using storage::RunStatus;

constexpr int64_t kMillisNs = 1'000'000;
constexpr int64_t kHourNs = 3600LL * 1'000'000'000;
constexpr int64_t kApprovalTtlNs = 24 * kHourNs;
constexpr int64_t kReplyTimeoutNs = 72 * kHourNs;
constexpr int64_t kRetryBackoffNs = 300 * kMillisNs;
constexpr int64_t kApprovalThresholdCents = 2500;

constexpr const char* kTriageModel = "llama-3.1-8b-instruct";
std::vector<std::string> RefundOptions() {
  return {"refund_full", "refund_partial", "request_more_info", "escalate"};
}
std::vector<std::string> PlanOptions() { return {"team-10", "team-20", "business-50"}; }

std::string Canonical(std::string_view text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  CAIRN_ASSERT(!parsed.is_discarded(), "demo definition is not valid JSON");
  return parsed.dump();
}

storage::Payload Json(const json& value) { return storage::Payload::Json(value.dump()); }

std::string Euros(int64_t cents) {
  char text[32];
  std::snprintf(text, sizeof text, "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return text;
}

std::string HexId(std::string_view prefix, Random& random, size_t bytes) {
  return std::string(prefix) + HexEncode(random.Bytes(bytes));
}

storage::BudgetAmounts Plus(storage::BudgetAmounts a, const storage::BudgetAmounts& b) {
  a.steps += b.steps;
  a.tokens += b.tokens;
  a.cost_micros += b.cost_micros;
  a.wall_ms += b.wall_ms;
  a.tool_calls += b.tool_calls;
  return a;
}

storage::BudgetAmounts Minus(storage::BudgetAmounts a, const storage::BudgetAmounts& b) {
  a.steps -= b.steps;
  a.tokens -= b.tokens;
  a.cost_micros -= b.cost_micros;
  a.wall_ms -= b.wall_ms;
  a.tool_calls -= b.tool_calls;
  return a;
}

// Appends steps to a DemoRun and keeps its budget ledger.
class Script {
 public:
  explicit Script(DemoRun* run) : run_(run) {}

  // Starts the next transition; `status` and `waiting_on` are the run's after it.
  void Step(RunStatus status, std::string waiting_on = {}) {
    DemoStep step;
    step.status = status;
    step.waiting_on = std::move(waiting_on);
    step.budget_spent = spent_;
    step.budget_reserved = reserved_;
    run_->steps.push_back(std::move(step));
  }
  void Add(std::string task_path, storage::EventBody body) {
    Current().events.push_back({std::move(task_path), std::move(body)});
  }
  // Stores `content` with the step; returns its digest for an event to refer to.
  Sha256 Blob(std::string content) {
    const Sha256 digest = Sha256::Of(content);
    Current().blobs.push_back(std::move(content));
    return digest;
  }
  void NotBefore(int64_t ns) { Current().not_before_ns = ns; }

  void Reserve(const std::string& path, const std::string& id, storage::BudgetAmounts amounts,
               std::string purpose) {
    reserved_ = Plus(reserved_, amounts);
    Charge(path, {.phase = storage::BudgetCharged::Phase::kReserve,
                  .reservation_id = id,
                  .amounts = amounts,
                  .cost_known = true,
                  .purpose = std::move(purpose)});
  }
  void Settle(const std::string& path, const std::string& id, storage::BudgetAmounts reserved,
              storage::BudgetAmounts actual, std::string purpose) {
    reserved_ = Minus(reserved_, reserved);
    spent_ = Plus(spent_, actual);
    Charge(path, {.phase = storage::BudgetCharged::Phase::kSettle,
                  .reservation_id = id,
                  .amounts = actual,
                  .cost_known = true,
                  .purpose = std::move(purpose)});
  }
  void Stop(RunStatus status, storage::RunStopped stopped) {
    Current().status = status;
    Current().stop_reason = stopped.reason;
    Current().waiting_on.clear();
    Add("", std::move(stopped));
  }
  // Derived from (run id, task path, task attempt): a retry of the same call reuses it.
  std::string IdempotencyKey(std::string_view task_path, uint32_t attempt) const {
    const std::string material =
        run_->header.run_id.str() + '\n' + std::string(task_path) + '\n' + std::to_string(attempt);
    return "ik_" + Sha256::Of(material).Hex().substr(0, 32);
  }

 private:
  DemoStep& Current() {
    CAIRN_ASSERT(!run_->steps.empty(), "Script::Step() must come first");
    return run_->steps.back();
  }
  void Charge(const std::string& path, storage::BudgetCharged charge) {
    charge.spent_after = spent_;
    charge.reserved_after = reserved_;
    Current().budget_spent = spent_;
    Current().budget_reserved = reserved_;
    Add(path, std::move(charge));
  }

  DemoRun* run_;
  storage::BudgetAmounts spent_;
  storage::BudgetAmounts reserved_;
};

// ---- refund triage ----

struct RefundCase {
  std::string_view customer;
  std::string_view order;
  int64_t amount_cents = 0;
  std::string_view complaint;
  std::string_view option;  // what the agent decides
  std::string_view rationale;
  double confidence = 0;
};

constexpr RefundCase kDamagedBlender = {
    "cus_4821",
    "ord_77310",
    4200,
    "Blender arrived with a cracked jug; photo attached.",
    "refund_full",
    "Damage is shown in the attached photo, the order is 6 days old (inside the 30-day "
    "window) and the customer has no prior refunds: a full refund fits the policy.",
    0.91};
constexpr RefundCase kMissingParcel = {
    "cus_1093",
    "ord_80114",
    1899,
    "Parcel says delivered but nothing arrived.",
    "request_more_info",
    "Carrier scan shows delivery to a parcel locker; no photo or locker receipt yet. Ask the "
    "customer to check the locker and reply before deciding.",
    0.74};
constexpr RefundCase kBrokenHeadphones = {
    "cus_2270",
    "ord_79002",
    18000,
    "Headphones stopped working, want my money back.",
    "refund_full",
    "Fault reported within warranty; the customer asks for a refund rather than a repair. "
    "Amount is high, so the refund goes to a person for approval.",
    0.62};

json RefundArguments(const RefundCase& c) {
  return {{"order", c.order},
          {"customer", c.customer},
          {"amount", Euros(c.amount_cents)},
          {"currency", "EUR"}};
}

void StartRefund(Script& s, const DemoSetup& setup, const DemoRun& run, const RefundCase& c,
                 const std::string& ticket) {
  s.Step(RunStatus::kRunning);
  s.Add("", storage::RunStarted{
                .workflow_namespace = run.header.workflow_namespace,
                .workflow_name = run.header.workflow_name,
                .workflow_version = run.header.workflow_version,
                .definition_hash = setup.refund_definition,
                .input = Json({{"ticket", ticket},
                               {"customer", c.customer},
                               {"order", c.order},
                               {"amount", Euros(c.amount_cents)},
                               {"message", c.complaint}}),
                .policy_hash = setup.policy,
                .start_key = run.header.start_key,
                .started_by = {"helpdesk-webhook", "operator"},
                .budget_limits = run.header.budget_limits,
            });
  s.Add("/do/0/classify", storage::TaskRouted{.task_name = "classify",
                                              .task_kind = "call",
                                              .mode = storage::TaskRouted::Mode::kAgentic,
                                              .input = Json({{"message", c.complaint}}),
                                              .attempt = 1});
  s.Reserve("/do/0/classify", "classify-1", {.steps = 4, .tokens = 8000, .cost_micros = 20000},
            "agent classify");
}

void DecideRefund(Script& s, const RefundCase& c) {
  const std::string path = "/do/0/classify";
  s.Step(RunStatus::kRunning);
  const json decision = {{"option", c.option}, {"rationale", c.rationale}};
  const Sha256 request = s.Blob(json{
      {"model", kTriageModel},
      {"messages",
       {{{"role", "system"}, {"content", "Pick one option for the refund ticket. Answer as JSON."}},
        {{"role", "user"}, {"content", c.complaint}}}},
      {"response_format", {{"type", "json_schema"}, {"options", RefundOptions()}}}}
                                    .dump());
  const Sha256 response =
      s.Blob(json{{"choices", {{{"message", {{"content", decision.dump()}}}}}},
                  {"usage", {{"prompt_tokens", 1712}, {"completion_tokens", 88}}}}
                 .dump());
  s.Add(path, storage::AgentDecided{
                  .agent = "refund-triage",
                  .model = kTriageModel,
                  .reason_code = "decided",
                  .option = std::string(c.option),
                  .rationale = std::string(c.rationale),
                  .has_confidence = true,
                  .confidence = c.confidence,
                  .steps_used = 2,
                  .usage = {.prompt_tokens = 1712,
                            .completion_tokens = 88,
                            .cost_micros = 1450,
                            .cost_known = true,
                            .calls = 2},
                  .options = RefundOptions(),
                  .request_blob = request,
                  .response_blob = response,
                  .duration_ms = 1840,
                  .goal = "decide how to resolve a refund request",
              });
  s.Settle(path, "classify-1", {.steps = 4, .tokens = 8000, .cost_micros = 20000},
           {.steps = 2, .tokens = 1800, .cost_micros = 1450}, "agent classify");
  s.Add(path,
        storage::TaskCompleted{.task_name = "classify",
                               .status = storage::TaskCompleted::Status::kCompleted,
                               .output = Json(decision),
                               .then = c.option == "request_more_info" ? "askCustomer" : "refund",
                               .attempt = 1});
}

struct Approval {
  std::string id;
  std::string rule = "refunds.over-25-eur-need-approval";
  Sha256 binding;  // tool + arguments: the approval is valid for exactly this call
  int64_t expires_at_ns = 0;
  std::string timer_id;
};

Approval RequestApproval(Script& s, const DemoSetup& setup, const RefundCase& c, Random& random) {
  const std::string path = "/do/2/refund";
  const json args = RefundArguments(c);
  Approval a;
  a.id = HexId("appr_", random, 6);
  a.binding = Sha256::Of("billing.refund\n" + args.dump());
  a.expires_at_ns = setup.now_ns + kApprovalTtlNs;
  a.timer_id = "expire-" + a.id;
  s.Step(RunStatus::kBlocked, "approval:" + a.id);
  s.Add(path, storage::TaskRouted{
                  .task_name = "refund", .task_kind = "call", .input = Json(args), .attempt = 1});
  s.Add(path, storage::PolicyVerdict{.policy_hash = setup.policy,
                                     .rule_id = a.rule,
                                     .decision = storage::PolicyVerdict::Decision::kRequireApproval,
                                     .reason_code = "amount_over_threshold",
                                     .tool = "billing.refund",
                                     .risk = storage::RiskLevel::kHigh,
                                     .arguments_hash = Sha256::Of(args.dump()),
                                     .detail = "refunds above " + Euros(kApprovalThresholdCents) +
                                               " EUR need a person"});
  s.Add(path, storage::ApprovalRequested{.approval_id = a.id,
                                         .tool = "billing.refund",
                                         .binding_hash = a.binding,
                                         .arguments = Json(args),
                                         .expires_at_ns = a.expires_at_ns,
                                         .on_expiry = storage::ApprovalResolution::kRejected,
                                         .rule_id = a.rule,
                                         .reason = "refund of " + Euros(c.amount_cents) + " EUR"});
  s.Add(path, storage::TimerScheduled{.timer_id = a.timer_id,
                                      .due_at_ns = a.expires_at_ns,
                                      .purpose = storage::TimerPurpose::kApprovalExpiry});
  return a;
}

void Resolve(Script& s, const Approval& a, storage::ApprovalResolution resolution,
             storage::Actor actor, std::string reason) {
  const std::string path = "/do/2/refund";
  s.Add(path, storage::ApprovalResolved{.approval_id = a.id,
                                        .resolution = resolution,
                                        .actor = std::move(actor),
                                        .reason = std::move(reason),
                                        .binding_hash = a.binding});
  s.Add(path, storage::TimerCancelled{.timer_id = a.timer_id, .due_at_ns = a.expires_at_ns});
}

// An effect as two transitions: the intent is durable before the call, then the outcome.
void Effect(Script& s, const std::string& path, const std::string& tool, storage::RiskLevel risk,
            const json& args, const json& result, uint64_t duration_ms) {
  const std::string key = s.IdempotencyKey(path, 1);
  s.Add(path, storage::EffectIntent{.idempotency_key = key,
                                    .tool = tool,
                                    .risk = risk,
                                    .arguments = Json(args),
                                    .attempt = 1,
                                    .executor = "http",
                                    .idempotent = true});
  s.Step(RunStatus::kRunning);
  s.Add(path, storage::EffectOutcome{.idempotency_key = key,
                                     .result = Json(result),
                                     .duration_ms = duration_ms,
                                     .attempt = 1});
}

void Allow(Script& s, const DemoSetup& setup, const std::string& path, const std::string& rule,
           const std::string& tool, storage::RiskLevel risk, const json& args,
           storage::PolicyVerdict::Stage stage = storage::PolicyVerdict::Stage::kBeforeCall) {
  s.Add(path, storage::PolicyVerdict{.policy_hash = setup.policy,
                                     .rule_id = rule,
                                     .decision = storage::PolicyVerdict::Decision::kAllow,
                                     .reason_code = "allowed",
                                     .tool = tool,
                                     .risk = risk,
                                     .arguments_hash = Sha256::Of(args.dump()),
                                     .stage = stage});
}

void CompleteTask(Script& s, const std::string& path, const std::string& name, const json& output,
                  std::string then = {}) {
  s.Add(path, storage::TaskCompleted{.task_name = name,
                                     .status = storage::TaskCompleted::Status::kCompleted,
                                     .output = Json(output),
                                     .then = std::move(then),
                                     .attempt = 1});
}

void RefundAndNotify(Script& s, const DemoSetup& setup, const RefundCase& c, const Approval& a,
                     Random& random) {
  s.Step(RunStatus::kRunning);
  Resolve(s, a, storage::ApprovalResolution::kApproved, {"alice@example.com", "approver"},
          "photo confirms the damage");
  const json args = RefundArguments(c);
  // The verdict is taken again just before the commit: a kill switch may have flipped.
  Allow(s, setup, "/do/2/refund", a.rule, "billing.refund", storage::RiskLevel::kHigh, args,
        storage::PolicyVerdict::Stage::kBeforeCommit);
  const std::string refund_id = HexId("re_", random, 8);
  Effect(s, "/do/2/refund", "billing.refund", storage::RiskLevel::kHigh, args,
         {{"refund", refund_id}, {"status", "succeeded"}}, 412);
  CompleteTask(s, "/do/2/refund", "refund", {{"refund", refund_id}}, "notify");

  const std::string notify = "/do/5/notify";
  const json email = {{"to", c.customer}, {"template", "refund-issued"}, {"refund", refund_id}};
  s.Step(RunStatus::kRunning);
  s.Add(notify,
        storage::TaskRouted{
            .task_name = "notify", .task_kind = "call", .input = Json(email), .attempt = 1});
  Allow(s, setup, notify, "notifications.customer-email", "email.send", storage::RiskLevel::kLow,
        email);
  Effect(s, notify, "email.send", storage::RiskLevel::kLow, email,
         {{"message_id", HexId("msg_", random, 6)}}, 95);
  CompleteTask(s, notify, "notify", {{"sent", true}});
  s.Stop(RunStatus::kCompleted,
         {.reason = storage::StopReason::kCompleted,
          .output = Json({{"resolution", "refunded"}, {"refund", refund_id}})});
}

void RefundRejected(Script& s, const RefundCase& c, const Approval& a) {
  s.Step(RunStatus::kRunning);
  const std::string reason = "the headphones are under warranty: send a replacement, not a refund";
  Resolve(s, a, storage::ApprovalResolution::kRejected, {"bob@example.com", "approver"}, reason);
  s.Add("/do/2/refund",
        storage::TaskCompleted{.task_name = "refund",
                               .status = storage::TaskCompleted::Status::kFaulted,
                               .error = {.type = "https://cairn.dev/errors/approval-denied",
                                         .status = 403,
                                         .title = "Approval denied",
                                         .detail = reason},
                               .attempt = 1});
  s.Stop(RunStatus::kFailed,
         {.reason = storage::StopReason::kApprovalDenied,
          .detail = "refund of " + Euros(c.amount_cents) + " EUR rejected by bob@example.com",
          .actor = {"bob@example.com", "approver"}});
}

void AskAndWait(Script& s, const DemoSetup& setup, const RefundCase& c, Random& random) {
  const std::string ask = "/do/3/askCustomer";
  const json email = {{"to", c.customer}, {"template", "locker-check"}, {"order", c.order}};
  s.Step(RunStatus::kRunning);
  s.Add(ask,
        storage::TaskRouted{
            .task_name = "askCustomer", .task_kind = "call", .input = Json(email), .attempt = 1});
  Allow(s, setup, ask, "notifications.customer-email", "email.send", storage::RiskLevel::kLow,
        email);
  Effect(s, ask, "email.send", storage::RiskLevel::kLow, email,
         {{"message_id", HexId("msg_", random, 6)}}, 88);
  CompleteTask(s, ask, "askCustomer", {{"sent", true}}, "awaitReply");
  // Left here: the run parks until the customer replies or the listen times out.
  const std::string wait = "/do/4/awaitReply";
  s.Step(RunStatus::kWaiting, "event:customer.reply or timer:await-reply");
  s.Add(wait, storage::TaskRouted{.task_name = "awaitReply", .task_kind = "listen", .attempt = 1});
  s.Add(wait, storage::TimerScheduled{.timer_id = "await-reply",
                                      .due_at_ns = setup.now_ns + kReplyTimeoutNs,
                                      .purpose = storage::TimerPurpose::kListenTimeout});
}

// ---- plan change ----

void StartPlanChange(Script& s, const DemoSetup& setup, const DemoRun& run) {
  const std::string usage = "/do/0/getUsage";
  s.Step(RunStatus::kRunning);
  s.Add("", storage::RunStarted{
                .workflow_namespace = run.header.workflow_namespace,
                .workflow_name = run.header.workflow_name,
                .workflow_version = run.header.workflow_version,
                .definition_hash = setup.plan_definition,
                .input = Json({{"account", "acme-co"},
                               {"current_plan", "team-10"},
                               {"requested_by", "dana@acme.example"}}),
                .policy_hash = setup.policy,
                .start_key = run.header.start_key,
                .started_by = {"crm", "operator"},
                .budget_limits = run.header.budget_limits,
            });
  s.Add(usage, storage::TaskRouted{.task_name = "getUsage",
                                   .task_kind = "call",
                                   .input = Json({{"account", "acme-co"}}),
                                   .attempt = 1});
  s.Step(RunStatus::kRunning);
  CompleteTask(s, usage, "getUsage", {{"seats_active", 17}, {"seats_invited", 3}});
  s.Add("/do/1/choosePlan",
        storage::TaskRouted{.task_name = "choosePlan",
                            .task_kind = "call",
                            .mode = storage::TaskRouted::Mode::kAgentic,
                            .input = Json({{"seats", 20}, {"plans", PlanOptions()}}),
                            .attempt = 1});
  s.Reserve("/do/1/choosePlan", "choosePlan-1", {.steps = 4, .tokens = 6000, .cost_micros = 15000},
            "agent choosePlan");
}

void ChoosePlan(Script& s) {
  const std::string path = "/do/1/choosePlan";
  const std::string rationale =
      "17 active and 3 invited seats need 20; team-20 covers them at the lowest price, "
      "business-50 would bill 30 unused seats.";
  s.Step(RunStatus::kRunning);
  s.Add(path, storage::AgentDecided{
                  .agent = "plan-advisor",
                  .model = kTriageModel,
                  .reason_code = "decided",
                  .option = "team-20",
                  .rationale = rationale,
                  .has_confidence = true,
                  .confidence = 0.88,
                  .steps_used = 1,
                  .usage = {.prompt_tokens = 960,
                            .completion_tokens = 54,
                            .cost_micros = 820,
                            .cost_known = true,
                            .calls = 1},
                  .options = PlanOptions(),
                  .duration_ms = 910,
                  .goal = "pick the cheapest plan that fits 20 seats",
              });
  s.Settle(path, "choosePlan-1", {.steps = 4, .tokens = 6000, .cost_micros = 15000},
           {.steps = 1, .tokens = 1014, .cost_micros = 820}, "agent choosePlan");
  CompleteTask(s, path, "choosePlan", {{"option", "team-20"}}, "changePlan");
}

void ChangePlanWithRetry(Script& s, const DemoSetup& setup) {
  const std::string path = "/do/2/changePlan";
  const json args = {{"account", "acme-co"}, {"plan", "team-20"}, {"prorate", true}};
  const std::string key = s.IdempotencyKey(path, 1);
  storage::EffectIntent intent{.idempotency_key = key,
                               .tool = "billing.change_plan",
                               .risk = storage::RiskLevel::kMedium,
                               .arguments = Json(args),
                               .attempt = 1,
                               .executor = "http",
                               .idempotent = true};
  s.Step(RunStatus::kRunning);
  s.Add(path,
        storage::TaskRouted{
            .task_name = "changePlan", .task_kind = "call", .input = Json(args), .attempt = 1});
  Allow(s, setup, path, "billing.plan-upgrade", "billing.change_plan", storage::RiskLevel::kMedium,
        args);
  s.Add(path, intent);

  const int64_t due = setup.now_ns + kRetryBackoffNs;
  s.Step(RunStatus::kWaiting, "timer:retry-changePlan-1");
  s.Add(path, storage::EffectOutcome{.idempotency_key = key,
                                     .status = storage::EffectOutcome::Status::kFailed,
                                     .error = {.type = "https://cairn.dev/errors/unavailable",
                                               .status = 503,
                                               .title = "Service Unavailable",
                                               .detail = "billing API answered 503; retrying"},
                                     .duration_ms = 1203,
                                     .attempt = 1});
  s.Add(path, storage::TimerScheduled{.timer_id = "retry-changePlan-1",
                                      .due_at_ns = due,
                                      .purpose = storage::TimerPurpose::kRetryBackoff});
  // The retry reuses the key, so billing applies the change at most once.
  s.Step(RunStatus::kRunning);
  s.NotBefore(due);
  s.Add(path, storage::TimerFired{.timer_id = "retry-changePlan-1",
                                  .due_at_ns = due,
                                  .purpose = storage::TimerPurpose::kRetryBackoff});
  intent.attempt = 2;
  s.Add(path, intent);
  s.Step(RunStatus::kRunning);
  s.Add(path, storage::EffectOutcome{
                  .idempotency_key = key,
                  .result = Json(
                      {{"subscription", "sub_acme"}, {"plan", "team-20"}, {"prorated", "31.40"}}),
                  .duration_ms = 388,
                  .attempt = 2});
  CompleteTask(s, path, "changePlan", {{"plan", "team-20"}});
  s.Stop(RunStatus::kCompleted, {.reason = storage::StopReason::kCompleted,
                                 .output = Json({{"plan", "team-20"}, {"prorated", "31.40"}})});
}

// ---- runs ----

DemoRun NewRun(const DemoSetup& setup, Random& random, std::string_view workflow,
               std::string_view version, std::string start_key) {
  DemoRun run;
  run.header.run_id = RunId::Generate(setup.now_ns, random);
  run.header.workflow_namespace = "billing";
  run.header.workflow_name = std::string(workflow);
  run.header.workflow_version = std::string(version);
  run.header.policy_hash = setup.policy;
  run.header.start_key = std::move(start_key);
  run.header.budget_limits = {.steps = 20,
                              .tokens = 50'000,
                              .cost_micros = 500'000,
                              .wall_ms = 3'600'000,
                              .tool_calls = 10};
  return run;
}

// The order of BuildDemoRun's cycle.
enum class Scenario : uint8_t {
  kRefundApproved = 0,
  kPlanChange,
  kRefundMoreInfo,
  kRefundRejected
};
static_assert(static_cast<size_t>(Scenario::kRefundRejected) + 1 == kDemoScenarioCount);

const RefundCase& CaseFor(Scenario scenario) {
  switch (scenario) {
    case Scenario::kRefundApproved:
      return kDamagedBlender;
    case Scenario::kRefundMoreInfo:
      return kMissingParcel;
    default:
      return kBrokenHeadphones;
  }
}

DemoRun RefundRun(Scenario scenario, const DemoSetup& setup, Random& random) {
  const std::string ticket = "T-" + std::to_string(random.Range(100000, 999999));
  DemoRun run = NewRun(setup, random, "refund-triage", "1.2.0", "helpdesk:" + ticket);
  run.header.definition_hash = setup.refund_definition;
  const RefundCase& c = CaseFor(scenario);
  Script s(&run);
  StartRefund(s, setup, run, c, ticket);
  DecideRefund(s, c);
  if (scenario == Scenario::kRefundMoreInfo) {
    run.scenario = "refund-more-info";
    run.story = "agent asked for more info; waiting 72 h for the customer's reply";
    AskAndWait(s, setup, c, random);
    return run;
  }
  const Approval approval = RequestApproval(s, setup, c, random);
  if (scenario == Scenario::kRefundApproved) {
    run.scenario = "refund-approved";
    run.story =
        "refund of " + Euros(c.amount_cents) + " EUR approved by alice, refunded, customer emailed";
    RefundAndNotify(s, setup, c, approval, random);
  } else {
    run.scenario = "refund-rejected";
    run.story = "refund of " + Euros(c.amount_cents) + " EUR rejected by bob: approval_denied";
    RefundRejected(s, c, approval);
  }
  return run;
}

DemoRun PlanChangeRun(const DemoSetup& setup, Random& random) {
  DemoRun run = NewRun(setup, random, "plan-change", "2.0.1",
                       "crm:change-" + std::to_string(random.Range(100000, 999999)));
  run.header.definition_hash = setup.plan_definition;
  run.scenario = "plan-change";
  run.story = "agent chose team-20; billing 503, retried after backoff with the same key";
  Script s(&run);
  StartPlanChange(s, setup, run);
  ChoosePlan(s);
  ChangePlanWithRetry(s, setup);
  return run;
}

}  // namespace

std::string RefundTriageDefinition() {
  return Canonical(R"json({
    "document": {"dsl": "1.0.0", "namespace": "billing", "name": "refund-triage",
                 "version": "1.2.0"},
    "do": [
      {"classify": {"call": "agent", "with": {
          "goal": "decide how to resolve a refund request",
          "options": ["refund_full", "refund_partial", "request_more_info", "escalate"],
          "tools": ["orders.get", "crm.get_customer"], "max_steps": 4}}},
      {"route": {"switch": [
          {"ask": {"when": "${ .option == \"request_more_info\" }", "then": "askCustomer"}},
          {"refund": {"when": "${ .option | startswith(\"refund\") }", "then": "refund"}}]}},
      {"refund": {"call": "billing.refund", "with": {"order": "${ .order }"}, "then": "notify"}},
      {"askCustomer": {"call": "email.send", "with": {"template": "locker-check"}}},
      {"awaitReply": {"listen": {"to": {"one": {"with": {"type": "customer.reply"}}}},
                      "timeout": {"after": {"hours": 72}}}},
      {"notify": {"call": "email.send", "with": {"template": "refund-issued"}}}
    ]})json");
}

std::string PlanChangeDefinition() {
  return Canonical(R"json({
    "document": {"dsl": "1.0.0", "namespace": "billing", "name": "plan-change",
                 "version": "2.0.1"},
    "do": [
      {"getUsage": {"call": "crm.get_usage", "with": {"account": "${ .account }"}}},
      {"choosePlan": {"call": "agent", "with": {
          "goal": "pick the cheapest plan that fits ${ .seats } seats",
          "options": ["team-10", "team-20", "business-50"], "max_steps": 4}}},
      {"changePlan": {"try": [{"apply": {"call": "billing.change_plan",
                                         "with": {"plan": "${ .option }"}}}],
                      "catch": {"retry": {"delay": {"milliseconds": 300},
                                          "limit": {"attempt": {"count": 3}}}}}}
    ]})json");
}

std::string_view DemoPolicy() {
  return R"yaml(# demo policy (operator-owned)
tools:
  billing.refund:       {risk: high}
  billing.change_plan:  {risk: medium}
  email.send:           {risk: low}
rules:
  - id: refunds.over-25-eur-need-approval
    when: {tool: billing.refund, args: {amount: {gt: 25.00}}}
    then: require_approval
  - id: billing.plan-upgrade
    when: {tool: billing.change_plan}
    then: allow
  - id: notifications.customer-email
    when: {tool: email.send}
    then: allow
budgets: {steps: 20, tokens: 50000, cost_usd: 0.50}
)yaml";
}

DemoRun BuildDemoRun(size_t index, const DemoSetup& setup, Random& random) {
  const auto scenario = static_cast<Scenario>(index % kDemoScenarioCount);
  if (scenario == Scenario::kPlanChange) return PlanChangeRun(setup, random);
  return RefundRun(scenario, setup, random);
}

}  // namespace cairn::cli::demo
