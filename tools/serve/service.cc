#include "tools/serve/service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/limits.h"
#include "replay/replayer.h"
#include "storage/event_json.h"
#include "tools/serve/run_view.h"

namespace cairn::serve {
namespace {

constexpr size_t kListLimitDefault = 100;
constexpr size_t kListLimitMax = 1000;
constexpr size_t kHistoryLimitDefault = 1000;
constexpr size_t kHistoryLimitMax = 10'000;
constexpr size_t kListScanMax = 100'000;

HttpResponse FromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return HttpResponse::Error(422, "invalid", status.message());
    case StatusCode::kNotFound:
      return HttpResponse::Error(404, "not_found", status.message());
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
      return HttpResponse::Error(409, "conflict", status.message());
    case StatusCode::kPermissionDenied:
      return HttpResponse::Error(403, "forbidden", status.message());
    case StatusCode::kResourceExhausted: {
      HttpResponse r = HttpResponse::Error(503, "overloaded", status.message());
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case StatusCode::kDeadlineExceeded:
      return HttpResponse::Error(504, "timeout", status.message());
    case StatusCode::kUnavailable:
      return HttpResponse::Error(503, "unavailable", status.message());
    default:
      return HttpResponse::Error(500, "internal", status.message());
  }
}

HttpResponse BadRequest(std::string_view message) {
  return HttpResponse::Error(400, "bad_request", message);
}

// The request body as a JSON object; an empty body is {}.
Result<Json> BodyObject(const HttpRequest& r) {
  if (r.body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::object();
  CAIRN_ASSIGN_OR_RETURN(Json j,
                         ParseJson(r.body, "the request body", limits::run_data_bytes_max * 2));
  if (!j.is_object()) return Status::InvalidArgument("the request body must be a JSON object");
  return j;
}

// A string field of a request object: absent -> `fallback`; not a string -> error.
Result<std::string> StringField(const Json& body, const char* name, std::string fallback = "") {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return Status::InvalidArgument(std::string("'") + name + "' must be a string");
  }
  return it->get<std::string>();
}

Result<size_t> SizeParam(const HttpRequest& r, const char* name, size_t fallback, size_t max) {
  std::optional<std::string> text = r.Query(name);
  if (!text) return fallback;
  size_t value = 0;
  if (text->empty() || text->size() > 12 ||
      text->find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument(std::string("query parameter '") + name +
                                   "' must be a non-negative integer, got '" + *text + "'");
  }
  value = std::stoull(*text);
  return std::min(value, max);
}

Result<engine::KillSwitch::Scope> ParseScope(const std::string& text) {
  if (text == "all") return engine::KillSwitch::Scope::kAll;
  if (text == "workflow") return engine::KillSwitch::Scope::kWorkflow;
  if (text == "run") return engine::KillSwitch::Scope::kRun;
  return Status::InvalidArgument("scope '" + text + "': expected all, workflow or run");
}

// A resolve request's {outcome: ok|failed|abandon, result?} (the reason and actor are
// the caller's to add).
Result<engine::EffectResolution> ParseResolution(const Json& body) {
  CAIRN_ASSIGN_OR_RETURN(std::string outcome, StringField(body, "outcome"));
  engine::EffectResolution resolution;
  const auto parsed = ParseResolutionOutcome(outcome);
  if (!parsed) {
    return Status::InvalidArgument(
        outcome.empty()
            ? std::string("'outcome' is required (ok, failed or abandon)")
            : "'outcome' is '" + outcome.substr(0, 64) + "': expected ok, failed or abandon");
  }
  resolution.outcome = *parsed;
  auto result = body.find("result");
  if (result != body.end() && !result->is_null()) {
    if (resolution.outcome != engine::EffectResolution::Outcome::kOk) {
      return Status::InvalidArgument("'result' goes with outcome ok");
    }
    resolution.result = *result;
  }
  return resolution;
}

// An event for the live stream: its JSON without the chain (hashes are the log's; read
// them with /history or `cairn export`).
std::string StreamData(const storage::Event& e) {
  Json j = storage::EventToJson(e);
  j.erase("prev_hash");
  j.erase("hash");
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// "/v1/runs/ID/approve" -> {"v1", "runs", "ID", "approve"} (the path is already decoded:
// run ids hold no '/').
std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string::npos ? path.size() : slash;
    if (end > start) out.push_back(path.substr(start, end - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

// One live stream of a run: the history first (backfill), then what commits, in order
// and without gaps or repeats: events arriving during the backfill wait in `held`.
struct Subscriber {
  std::shared_ptr<EventStream> stream;
  std::mutex mu;
  bool backfilling = true;          // mu
  uint64_t next_seq = 0;            // mu: the next event to send
  std::deque<storage::Event> held;  // mu
  bool done = false;                // mu: run_stopped sent
};

}  // namespace

class Service::Impl {
 public:
  Impl(engine::Engine& e, ServiceOptions o) : engine_(e), options_(std::move(o)) {
    DefineMetrics();
  }
  void SeedGauges();

  HttpResponse Handle(const HttpRequest& r);
  void OnTransition(const engine::TransitionRecord& record);
  void EndStreams();
  Metrics metrics_;

 private:
  struct Caller {
    Principal who;
    bool authenticated = false;
  };

  void DefineMetrics();
  HttpResponse Route(const HttpRequest& r, const Principal& who);
  std::optional<HttpResponse> Authorize(const HttpRequest& r, Principal* who) const;
  static std::optional<HttpResponse> Need(const Principal& who, Permission p);

  HttpResponse Workflows(const HttpRequest& r, const Principal& who);
  HttpResponse Policy(const HttpRequest& r, const Principal& who);
  HttpResponse StartRun(const HttpRequest& r, const Principal& who);
  HttpResponse ListRuns(const HttpRequest& r);
  HttpResponse History(const HttpRequest& r, const RunId& id);
  HttpResponse Events(const HttpRequest& r, const RunId& id);
  HttpResponse Control(const HttpRequest& r, const Principal& who, const RunId& id,
                       const std::string& action);
  HttpResponse Replay(const RunId& id);
  HttpResponse KillSwitches(const HttpRequest& r, const Principal& who);

  void Backfill(const std::shared_ptr<Subscriber>& sub, const RunId& id);
  void Deliver(Subscriber& sub, const storage::Event& e);  // sub.mu held
  void Unsubscribe(const RunId& id, const Subscriber* sub);

  engine::Engine& engine_;
  ServiceOptions options_;

  std::mutex mu_;
  std::map<RunId, std::vector<std::shared_ptr<Subscriber>>> subscribers_;  // mu_
  std::set<RunId> parked_;                                                 // mu_
  std::set<RunId> awaiting_approval_;                                      // mu_
  size_t streams_ = 0;  // mu_: subscribers, over all runs
};

void Service::Impl::DefineMetrics() {
  using T = Metrics::Type;
  metrics_.Define("cairn_runs_started_total", T::kCounter, "Runs started, by workflow.");
  metrics_.Define("cairn_runs_stopped_total", T::kCounter,
                  "Runs stopped, by workflow and stop reason.");
  metrics_.Define("cairn_transition_seconds", T::kHistogram,
                  "From a step's start to its transition being durable.");
  metrics_.Define("cairn_durable_write_seconds", T::kHistogram,
                  "From a transition's submission to the store to its acknowledgement "
                  "(group commit and sync included).");
  metrics_.Define("cairn_agent_decisions_total", T::kCounter,
                  "Agent decisions, by outcome (decided or the failure's reason code).");
  metrics_.Define("cairn_policy_verdicts_total", T::kCounter,
                  "Policy verdicts, by decision and stage.");
  metrics_.Define("cairn_effect_retries_total", T::kCounter,
                  "Effect calls started again after a failed or unknown attempt, by tool.");
  metrics_.Define("cairn_approvals_pending", T::kGauge, "Runs waiting on an approval.");
  metrics_.Define("cairn_runs_parked", T::kGauge,
                  "Runs parked (waiting on a timer, an event, an approval or an operator).");
  metrics_.Define("cairn_live_streams", T::kGauge, "Open live event streams.");
  metrics_.Define("cairn_http_requests_total", T::kCounter, "API requests, by status code.");
}

// The gauges' starting values, from the store (the engine resumed these runs).
void Service::Impl::SeedGauges() {
  std::string after;
  size_t seen = 0;
  std::lock_guard lock(mu_);
  for (;;) {
    auto page = engine_.ListRuns(storage::RunStatus::kWaiting, after, limits::list_runs_max);
    if (!page.ok() || page->empty()) break;
    for (const storage::RunSummary& s : *page) {
      parked_.insert(s.run_id);
      auto h = engine_.store().GetRun(s.run_id);
      if (h.ok() && h->waiting_on.rfind("approval ", 0) == 0) awaiting_approval_.insert(s.run_id);
    }
    seen += page->size();
    if (page->size() < limits::list_runs_max || seen >= 10'000'000) break;
    after = page->back().run_id.str();
  }
  metrics_.Set("cairn_runs_parked", {}, static_cast<double>(parked_.size()));
  metrics_.Set("cairn_approvals_pending", {}, static_cast<double>(awaiting_approval_.size()));
}

void Service::Impl::OnTransition(const engine::TransitionRecord& record) {
  metrics_.Observe("cairn_transition_seconds", {}, static_cast<double>(record.step_ns) / 1e9);
  metrics_.Observe("cairn_durable_write_seconds", {}, static_cast<double>(record.write_ns) / 1e9);
  bool approval_asked = false;
  bool approval_gone = false;
  for (const storage::Event& e : record.events) {
    if (std::holds_alternative<storage::RunStarted>(e.body)) {
      metrics_.Add("cairn_runs_started_total", {{"workflow", record.workflow}});
    } else if (const auto* s = std::get_if<storage::RunStopped>(&e.body)) {
      metrics_.Add("cairn_runs_stopped_total", {{"workflow", record.workflow},
                                                {"reason", std::string(storage::Name(s->reason))}});
      approval_gone = true;
    } else if (const auto* d = std::get_if<storage::AgentDecided>(&e.body)) {
      metrics_.Add("cairn_agent_decisions_total", {{"outcome", d->reason_code}});
    } else if (const auto* v = std::get_if<storage::PolicyVerdict>(&e.body)) {
      metrics_.Add(
          "cairn_policy_verdicts_total",
          {{"decision",
            std::string(policy::DecisionName(static_cast<policy::Decision>(v->decision)))},
           {"stage", v->stage == storage::PolicyVerdict::Stage::kBeforeCommit ? "before_commit"
                                                                              : "before_call"}});
    } else if (const auto* i = std::get_if<storage::EffectIntent>(&e.body)) {
      if (i->attempt > 1) metrics_.Add("cairn_effect_retries_total", {{"tool", i->tool}});
    } else if (std::holds_alternative<storage::ApprovalRequested>(e.body)) {
      approval_asked = true;
      approval_gone = false;
    } else if (std::holds_alternative<storage::ApprovalResolved>(e.body)) {
      approval_gone = true;
      approval_asked = false;
    }
  }
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard lock(mu_);
    if (record.status == storage::RunStatus::kWaiting) {
      parked_.insert(record.run_id);
    } else {
      parked_.erase(record.run_id);
    }
    if (approval_asked) awaiting_approval_.insert(record.run_id);
    if (approval_gone || storage::IsTerminal(record.status))
      awaiting_approval_.erase(record.run_id);
    metrics_.Set("cairn_runs_parked", {}, static_cast<double>(parked_.size()));
    metrics_.Set("cairn_approvals_pending", {}, static_cast<double>(awaiting_approval_.size()));
    auto it = subscribers_.find(record.run_id);
    if (it != subscribers_.end()) subs = it->second;
  }
  for (const auto& sub : subs) {
    std::lock_guard lock(sub->mu);
    for (const storage::Event& e : record.events) {
      if (sub->backfilling) {
        sub->held.push_back(e);
      } else {
        Deliver(*sub, e);
      }
    }
  }
}

void Service::Impl::Deliver(Subscriber& sub, const storage::Event& e) {
  if (sub.done || e.seq.value() < sub.next_seq) return;  // sent by the backfill already
  sub.next_seq = e.seq.value() + 1;
  sub.stream->Send(storage::KindName(e.body), std::to_string(e.seq.value()), StreamData(e));
  if (std::holds_alternative<storage::RunStopped>(e.body)) {
    sub.done = true;
    sub.stream->End();
  }
}

void Service::Impl::Unsubscribe(const RunId& id, const Subscriber* sub) {
  std::lock_guard lock(mu_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  streams_ -= std::erase_if(it->second, [sub](const auto& s) { return s.get() == sub; });
  if (it->second.empty()) subscribers_.erase(it);
  metrics_.Set("cairn_live_streams", {}, static_cast<double>(streams_));
}

void Service::Impl::EndStreams() {
  std::vector<std::shared_ptr<Subscriber>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [run, subs] : subscribers_) all.insert(all.end(), subs.begin(), subs.end());
  }
  for (const auto& sub : all) sub->stream->End();
}

std::optional<HttpResponse> Service::Impl::Authorize(const HttpRequest& r, Principal* who) const {
  if (!options_.tokens) {
    *who = Principal{"local", Role::kAdmin};
    return std::nullopt;
  }
  const std::string& header = r.Header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.empty()) {
    HttpResponse e = HttpResponse::Error(401, "unauthenticated",
                                         "this server needs a bearer token (Authorization: Bearer "
                                         "TOKEN)");
    e.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cairn\"");
    return e;
  }
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) {
    return HttpResponse::Error(401, "unauthenticated",
                               "the Authorization header must be 'Bearer TOKEN'");
  }
  std::optional<Principal> p = options_.tokens->Authenticate(header.substr(kBearer.size()));
  if (!p) return HttpResponse::Error(401, "unauthenticated", "unknown token");
  *who = *p;
  return std::nullopt;
}

std::optional<HttpResponse> Service::Impl::Need(const Principal& who, Permission p) {
  if (Allows(who.role, p)) return std::nullopt;
  return HttpResponse::Error(403, "forbidden",
                             "'" + who.name + "' (" + std::string(RoleName(who.role)) +
                                 ") may not " + std::string(PermissionName(p)) +
                                 "; this needs a role that may");
}

HttpResponse Service::Impl::Handle(const HttpRequest& r) {
  HttpResponse response;
  if (r.path == "/v1/health" || (r.path == "/" && r.method == "GET")) {
    if (r.path == "/v1/health") {
      response = HttpResponse::Json(200, Json{{"status", "ok"}});
    } else if (options_.page_html.empty()) {
      response = HttpResponse::Error(404, "not_found", "no page is built into this server");
    } else {
      response = HttpResponse::Text(200, options_.page_html, "text/html; charset=utf-8");
    }
  } else {
    Principal who;
    if (auto refused = Authorize(r, &who)) {
      response = std::move(*refused);
    } else {
      response = Route(r, who);
    }
  }
  metrics_.Add("cairn_http_requests_total", {{"code", std::to_string(response.status)}});
  return response;
}

HttpResponse Service::Impl::Route(const HttpRequest& r, const Principal& who) {
  const std::vector<std::string> s = Segments(r.path);
  auto method_not_allowed = [&] {
    return HttpResponse::Error(405, "method_not_allowed",
                               r.method + " is not allowed on " + r.path);
  };
  if (s.size() == 1 && s[0] == "metrics") {
    if (auto no = Need(who, Permission::kRead)) return *no;
    if (r.method != "GET") return method_not_allowed();
    return HttpResponse::Text(200, metrics_.Render(), "text/plain; version=0.0.4; charset=utf-8");
  }
  if (s.empty() || s[0] != "v1") {
    return HttpResponse::Error(404, "not_found", "no such resource: " + r.path);
  }
  if (s.size() == 2 && s[1] == "whoami") {
    return HttpResponse::Json(200, Json{{"name", who.name}, {"role", RoleName(who.role)}});
  }
  if (s.size() == 2 && s[1] == "workflows") return Workflows(r, who);
  if (s.size() == 2 && s[1] == "policy") return Policy(r, who);
  if (s.size() == 2 && s[1] == "kill-switches") return KillSwitches(r, who);
  if (s.size() >= 2 && s[1] == "runs") {
    if (s.size() == 2) {
      if (r.method == "POST") return StartRun(r, who);
      if (r.method != "GET") return method_not_allowed();
      if (auto no = Need(who, Permission::kRead)) return *no;
      return ListRuns(r);
    }
    Result<RunId> id = RunId::Parse(s[2]);
    if (!id.ok()) return BadRequest("run id '" + s[2] + "': " + id.status().message());
    if (s.size() == 3) {
      if (r.method != "GET") return method_not_allowed();
      if (auto no = Need(who, Permission::kRead)) return *no;
      Result<RunView> view = ReadRunView(engine_.store(), *id);
      if (!view.ok()) return FromStatus(view.status());
      return HttpResponse::Json(200, RunViewToJson(*view));
    }
    if (s.size() == 4) {
      const std::string& what = s[3];
      if (what == "history" || what == "events") {
        if (r.method != "GET") return method_not_allowed();
        if (auto no = Need(who, Permission::kRead)) return *no;
        return what == "history" ? History(r, *id) : Events(r, *id);
      }
      if (what == "replay") {
        if (r.method != "POST") return method_not_allowed();
        if (auto no = Need(who, Permission::kRead)) return *no;
        return Replay(*id);
      }
      if (what == "signal" || what == "cancel" || what == "kill" || what == "approve" ||
          what == "reject" || what == "resolve") {
        if (r.method != "POST") return method_not_allowed();
        return Control(r, who, *id, what);
      }
    }
  }
  return HttpResponse::Error(404, "not_found", "no such resource: " + r.path);
}

HttpResponse Service::Impl::Workflows(const HttpRequest& r, const Principal& who) {
  if (r.method == "GET") {
    if (auto no = Need(who, Permission::kRead)) return *no;
    auto list = engine_.store().ListWorkflowVersions();
    if (!list.ok()) return FromStatus(list.status());
    Json out = Json::array();
    for (const storage::WorkflowVersion& w : *list) {
      out.push_back({{"namespace", w.namespace_},
                     {"name", w.name},
                     {"version", w.version},
                     {"hash", w.hash.Hex()},
                     {"applied", storage::FormatTimeRfc3339(w.applied_at_ns)}});
    }
    return HttpResponse::Json(200, Json{{"workflows", out}});
  }
  if (r.method != "POST") {
    return HttpResponse::Error(405, "method_not_allowed",
                               r.method + " is not allowed on " + r.path);
  }
  if (auto no = Need(who, Permission::kAdmin)) return *no;
  if (r.body.empty()) return BadRequest("the request body must hold a workflow definition");
  auto applied = engine_.ApplyDefinition(r.body, "request body");
  if (!applied.ok()) return FromStatus(applied.status());
  spdlog::info("{} ({}) applied workflow {}/{}:{}", who.name, RoleName(who.role),
               applied->namespace_, applied->name, applied->version);
  return HttpResponse::Json(200, Json{{"namespace", applied->namespace_},
                                      {"name", applied->name},
                                      {"version", applied->version},
                                      {"hash", applied->hash.Hex()}});
}

HttpResponse Service::Impl::Policy(const HttpRequest& r, const Principal& who) {
  if (r.method == "GET") {
    if (auto no = Need(who, Permission::kRead)) return *no;
    std::shared_ptr<const policy::Policy> p = engine_.CurrentPolicy();
    return HttpResponse::Json(200, Json{{"name", p->name()},
                                        {"hash", p->hash().Hex()},
                                        {"rules", p->rule_count()},
                                        {"text", p->text()}});
  }
  if (r.method != "PUT") {
    return HttpResponse::Error(405, "method_not_allowed",
                               r.method + " is not allowed on " + r.path);
  }
  if (auto no = Need(who, Permission::kAdmin)) return *no;
  if (r.body.empty()) return BadRequest("the request body must hold a policy file");
  auto hash = engine_.ApplyPolicy(r.body, "request body");
  if (!hash.ok()) return FromStatus(hash.status());
  spdlog::info("{} ({}) applied policy sha256:{}", who.name, RoleName(who.role), hash->Hex());
  return HttpResponse::Json(200, Json{{"hash", hash->Hex()}});
}

HttpResponse Service::Impl::StartRun(const HttpRequest& r, const Principal& who) {
  if (auto no = Need(who, Permission::kOperate)) return *no;
  auto body = BodyObject(r);
  if (!body.ok()) return BadRequest(body.status().message());
  engine::StartRequest start;
  auto workflow = StringField(*body, "workflow");
  if (!workflow.ok()) return BadRequest(workflow.status().message());
  if (workflow->empty()) return BadRequest("'workflow' is required (namespace/name[:version])");
  start.workflow = *workflow;
  if (body->contains("input")) start.input = (*body)["input"];
  auto run_id = StringField(*body, "run_id");
  if (!run_id.ok()) return BadRequest(run_id.status().message());
  if (!run_id->empty()) {
    auto id = RunId::Parse(*run_id);
    if (!id.ok()) return BadRequest("run_id '" + *run_id + "': " + id.status().message());
    start.run_id = *id;
  }
  for (const auto& [key, value] : body->items()) {
    if (key != "workflow" && key != "input" && key != "run_id") {
      return BadRequest("unknown field '" + key + "' (expected workflow, input, run_id)");
    }
  }
  start.started_by = storage::Actor{who.name, std::string(RoleName(who.role))};
  auto started = engine_.Start(std::move(start));
  if (!started.ok()) return FromStatus(started.status());
  HttpResponse out =
      HttpResponse::Json(started->created ? 201 : 200,
                         Json{{"run_id", started->run_id.str()}, {"created", started->created}});
  out.headers.emplace_back("Location", "/v1/runs/" + started->run_id.str());
  return out;
}

HttpResponse Service::Impl::ListRuns(const HttpRequest& r) {
  std::optional<storage::RunStatus> status;
  if (auto text = r.Query("status"); text && !text->empty()) {
    auto parsed = storage::ParseRunStatus(*text);
    if (!parsed.ok()) return BadRequest("status: " + parsed.status().message());
    status = *parsed;
  }
  std::optional<engine::ParsedWorkflowRef> workflow;
  if (auto text = r.Query("workflow"); text && !text->empty()) {
    auto parsed = engine::ParseWorkflowRef(*text);
    if (!parsed.ok()) return BadRequest("workflow: " + parsed.status().message());
    workflow = std::move(parsed).value();
  }
  auto limit = SizeParam(r, "limit", kListLimitDefault, kListLimitMax);
  if (!limit.ok()) return BadRequest(limit.status().message());
  std::string after = r.Query("after").value_or("");
  Json runs = Json::array();
  bool more = false;
  size_t scanned = 0;
  while (runs.size() < *limit && scanned < kListScanMax) {
    auto page = engine_.ListRuns(status, after, kListLimitMax);
    if (!page.ok()) return FromStatus(page.status());
    for (const storage::RunSummary& summary : *page) {
      after = summary.run_id.str();
      ++scanned;
      auto h = engine_.store().GetRun(summary.run_id);
      if (!h.ok()) continue;
      if (workflow && !MatchesWorkflow(*workflow, *h)) continue;
      if (runs.size() == *limit) {
        more = true;
        break;
      }
      runs.push_back(storage::RunHeaderToJson(*h));
    }
    if (more || page->size() < kListLimitMax) break;
  }
  Json out{{"runs", runs}};
  if (more || scanned >= kListScanMax) {
    out["next_after"] = runs.empty() ? Json(after) : runs.back()["run_id"];
  }
  return HttpResponse::Json(200, out);
}

HttpResponse Service::Impl::History(const HttpRequest& r, const RunId& id) {
  auto from = SizeParam(r, "from", 0, UINT32_MAX);
  auto limit = SizeParam(r, "limit", kHistoryLimitDefault, kHistoryLimitMax);
  if (!from.ok()) return BadRequest(from.status().message());
  if (!limit.ok()) return BadRequest(limit.status().message());
  auto header = engine_.store().GetRun(id);
  if (!header.ok()) return FromStatus(header.status());
  auto events = engine_.store().ReadHistory(id, *from, *limit);
  if (!events.ok()) return FromStatus(events.status());
  Json list = Json::array();
  for (const storage::Event& e : *events) list.push_back(storage::EventToJson(e));
  Json out{{"run_id", id.str()}, {"events", list}};
  const uint64_t next = *from + events->size();
  if (next < header->next_seq) out["next_from"] = next;
  return HttpResponse::Json(200, out);
}

HttpResponse Service::Impl::Events(const HttpRequest& r, const RunId& id) {
  auto from = SizeParam(r, "from", 0, UINT32_MAX);
  if (!from.ok()) return BadRequest(from.status().message());
  uint64_t start = *from;
  const std::string& last = r.Header("last-event-id");
  if (!last.empty() && last.size() < 20 &&
      last.find_first_not_of("0123456789") == std::string::npos) {
    start = std::stoull(last) + 1;  // a reconnecting browser resumes after what it saw
  }
  auto header = engine_.store().GetRun(id);
  if (!header.ok()) return FromStatus(header.status());
  HttpResponse response;
  response.open = [this, id, start](std::shared_ptr<EventStream> stream) {
    auto sub = std::make_shared<Subscriber>();
    sub->stream = stream;
    sub->next_seq = start;
    {
      std::lock_guard lock(mu_);
      subscribers_[id].push_back(sub);
      metrics_.Set("cairn_live_streams", {}, static_cast<double>(++streams_));
    }
    stream->OnEnd([this, id, raw = sub.get()] { Unsubscribe(id, raw); });
    Backfill(sub, id);
  };
  return response;
}

void Service::Impl::Backfill(const std::shared_ptr<Subscriber>& sub, const RunId& id) {
  // Read what is in the log from next_seq, a page at a time, then hand over to live
  // delivery: events committed meanwhile wait in `held`, and Deliver skips repeats.
  constexpr size_t kPage = 1000;
  for (;;) {
    uint64_t from = 0;
    {
      std::lock_guard lock(sub->mu);
      if (sub->done || sub->stream->ended()) return;
      from = sub->next_seq;
    }
    auto events = engine_.store().ReadHistory(id, from, kPage);
    if (!events.ok()) {
      sub->stream->Send("error", "", Json{{"message", events.status().message()}}.dump());
      sub->stream->End();
      return;
    }
    std::lock_guard lock(sub->mu);
    for (const storage::Event& e : *events) Deliver(*sub, e);
    if (events->size() < kPage) {
      while (!sub->held.empty()) {
        Deliver(*sub, sub->held.front());
        sub->held.pop_front();
      }
      sub->backfilling = false;
      return;
    }
  }
}

HttpResponse Service::Impl::Control(const HttpRequest& r, const Principal& who, const RunId& id,
                                    const std::string& action) {
  const Permission needed = action == "kill"                              ? Permission::kAdmin
                            : (action == "approve" || action == "reject") ? Permission::kApprove
                                                                          : Permission::kOperate;
  if (auto no = Need(who, needed)) return *no;
  auto body = BodyObject(r);
  if (!body.ok()) return BadRequest(body.status().message());
  const storage::Actor actor{who.name, std::string(RoleName(who.role))};
  auto reason = StringField(*body, "reason");
  if (!reason.ok()) return BadRequest(reason.status().message());
  if (reason->size() > limits::approval_reason_bytes_max) {
    return BadRequest("'reason' is longer than " +
                      std::to_string(limits::approval_reason_bytes_max) + " bytes");
  }
  Status done;
  if (action == "signal") {
    engine::Signal signal;
    auto type = StringField(*body, "type");
    auto source = StringField(*body, "source", "cairn");
    auto event_id = StringField(*body, "id");
    if (!type.ok() || !source.ok() || !event_id.ok()) {
      return BadRequest(!type.ok()     ? type.status().message()
                        : !source.ok() ? source.status().message()
                                       : event_id.status().message());
    }
    if (type->empty()) return BadRequest("'type' is required (the event's CloudEvents type)");
    signal.type = *type;
    signal.source = *source;
    signal.id = *event_id;
    signal.data = body->value("data", Json());
    signal.actor = actor;
    done = engine_.SendSignal(id, std::move(signal));
  } else if (action == "resolve") {
    auto resolution = ParseResolution(*body);
    if (!resolution.ok()) return BadRequest(resolution.status().message());
    resolution->detail = *reason;
    resolution->actor = actor;
    done = engine_.ResolveEffect(id, std::move(resolution).value());
  } else if (action == "cancel") {
    done = engine_.Cancel(id, *reason, actor);
  } else if (action == "kill") {
    done = engine_.Kill(id, *reason, actor);
  } else {
    engine::ApprovalAnswer answer;
    answer.approve = action == "approve";
    answer.reason = *reason;
    answer.actor = actor;
    auto approval_id = StringField(*body, "approval_id");
    if (!approval_id.ok()) return BadRequest(approval_id.status().message());
    answer.approval_id = *approval_id;
    done = engine_.ResolveApproval(id, std::move(answer));
  }
  if (!done.ok()) return FromStatus(done);
  spdlog::info("{} ({}) {} run {}", who.name, RoleName(who.role), action, id.str());
  auto view = ReadRunView(engine_.store(), id);
  if (!view.ok()) return HttpResponse::Json(202, Json{{"run_id", id.str()}, {"accepted", true}});
  return HttpResponse::Json(200, RunViewToJson(*view));
}

HttpResponse Service::Impl::Replay(const RunId& id) {
  replay::Replayer replayer(engine_.store());
  auto result = replayer.Replay(id);
  if (!result.ok()) return FromStatus(result.status());
  Json out{{"run_id", id.str()},
           {"matched", result->matched()},
           {"events", result->events},
           {"divergence",
            result->divergence ? replay::DivergenceToJson(*result->divergence) : Json(nullptr)}};
  if (!result->note.empty()) out["note"] = result->note;
  return HttpResponse::Json(200, out);
}

HttpResponse Service::Impl::KillSwitches(const HttpRequest& r, const Principal& who) {
  if (r.method == "GET") {
    if (auto no = Need(who, Permission::kRead)) return *no;
    Json list = Json::array();
    for (const engine::KillSwitch& k : engine_.KillSwitches()) list.push_back(KillSwitchJson(k));
    return HttpResponse::Json(200, Json{{"kill_switches", list}});
  }
  if (r.method != "POST" && r.method != "DELETE") {
    return HttpResponse::Error(405, "method_not_allowed",
                               r.method + " is not allowed on " + r.path);
  }
  if (auto no = Need(who, Permission::kAdmin)) return *no;
  if (r.method == "DELETE") {
    auto scope = ParseScope(r.Query("scope").value_or(""));
    if (!scope.ok()) return BadRequest(scope.status().message());
    const std::string target = r.Query("target").value_or("");
    Status released = engine_.ReleaseKillSwitch(*scope, target);
    if (!released.ok()) return FromStatus(released);
    spdlog::warn("{} ({}) released the kill switch {} {}", who.name, RoleName(who.role),
                 KillScopeName(*scope), target);
    return HttpResponse::Json(
        200, Json{{"released", {{"scope", KillScopeName(*scope)}, {"target", target}}}});
  }
  auto body = BodyObject(r);
  if (!body.ok()) return BadRequest(body.status().message());
  auto scope_text = StringField(*body, "scope");
  auto target = StringField(*body, "target");
  auto reason = StringField(*body, "reason");
  if (!scope_text.ok() || !target.ok() || !reason.ok()) {
    return BadRequest("scope, target and reason must be strings");
  }
  auto scope = ParseScope(*scope_text);
  if (!scope.ok()) return BadRequest(scope.status().message());
  engine::KillSwitch kill;
  kill.scope = *scope;
  kill.target = *target;
  kill.reason = *reason;
  kill.actor = storage::Actor{who.name, std::string(RoleName(who.role))};
  if (kill.scope != engine::KillSwitch::Scope::kAll && kill.target.empty()) {
    return BadRequest("a " + *scope_text + " kill switch needs a target");
  }
  auto covered = engine_.EngageKillSwitch(kill);
  if (!covered.ok()) return FromStatus(covered.status());
  Json runs = Json::array();
  for (const RunId& run : *covered) runs.push_back(run.str());
  for (const engine::KillSwitch& k : engine_.KillSwitches()) {
    if (k.scope == kill.scope &&
        (k.scope == engine::KillSwitch::Scope::kAll || k.target == kill.target)) {
      kill = k;
    }
  }
  return HttpResponse::Json(200, Json{{"kill_switch", KillSwitchJson(kill)}, {"runs", runs}});
}

Service::Service(engine::Engine& engine, ServiceOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {}
Service::~Service() = default;
HttpResponse Service::Handle(const HttpRequest& request) { return impl_->Handle(request); }
void Service::OnTransition(const engine::TransitionRecord& record) { impl_->OnTransition(record); }
void Service::EndStreams() { impl_->EndStreams(); }
void Service::Begin() { impl_->SeedGauges(); }
Metrics& Service::metrics() { return impl_->metrics_; }

}  // namespace cairn::serve
