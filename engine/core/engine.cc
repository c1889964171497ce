#include "engine/core/engine.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "agent/executor_io.h"
#include "base/limits.h"
#include "base/random.h"
#include "engine/core/decisions.h"
#include "engine/core/executors.h"
#include "engine/core/interpreter.h"
#include "engine/core/run_state.h"
#include "engine/core/tool_router.h"
#include "engine/tools/cpp_executor.h"

namespace cairn::engine {

namespace asio = boost::asio;
using storage::RunStatus;

namespace {

using Strand = asio::strand<asio::io_context::executor_type>;

// An input for a run, and who waits for its transition to be durable.
struct Input {
  StepInput step;
  std::function<void(Status)> ack;  // may be empty
  // false: the input event is already in the log (a deferred start being begun).
  bool record = true;
  // A run_started to record without stepping (StartRequest::defer).
  bool defer = false;
  // Blobs the input event refers to (an agent's transcripts), stored in its transition.
  std::vector<std::string> blobs = {};
};

// A transition on its way to the store: what the run does once it is durable.
struct Committing {
  RunState next;
  StepOutput out;
  std::function<void(Status)> ack;
  int64_t earliest_timer = 0;  // the earliest timer the step scheduled (INT64_MAX: none)
  int64_t step_started_ns = 0;
  int64_t submitted_ns = 0;
  int64_t durable_ns = 0;
  std::optional<TransitionRecord> record;  // set when EngineOptions::on_transition is
};

Json EffectCommandToJson(const EffectCommand& c) {
  return Json{{"key", c.idempotency_key},
              {"tool", ToolSpecToJson(c.tool)},
              {"arguments", c.arguments},
              {"timeout_ms", c.timeout_ms},
              {"path", c.task_path}};
}

std::optional<EffectCommand> EffectCommandFromJson(const Json& j) {
  try {
    EffectCommand c;
    c.idempotency_key = j.at("key").get<std::string>();
    std::optional<ToolSpec> tool = ToolSpecFromJson(j.at("tool"));
    if (!tool) return std::nullopt;
    c.tool = std::move(*tool);
    c.arguments = j.at("arguments");
    c.timeout_ms = j.value("timeout_ms", limits::tool_call_timeout_ms_default);
    c.task_path = j.value("path", "");
    return c;
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

// The key of the effect the run's top frame waits for, if any.
std::string PendingEffectKey(const RunState& state) {
  if (state.stack.empty()) return {};
  const Frame& top = state.stack.back();
  return !top.is_list && top.phase == TaskPhase::kEffect ? top.key : std::string();
}

// Moves large JSON payloads of `events` into blobs of the transition.
void SpillLargePayloads(storage::Transition& t) {
  auto spill = [&t](storage::Payload& p) {
    if (p.kind == storage::Payload::Kind::kJson &&
        p.json.size() > limits::inline_payload_bytes_max) {
      const Sha256 digest = Sha256::Of(p.json);
      t.blobs.push_back(std::move(p.json));
      p = storage::Payload::Blob(digest);
    }
  };
  for (storage::NewEvent& e : t.events) {
    std::visit(
        [&](auto& body) {
          using B = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<B, storage::RunStarted>) spill(body.input);
          if constexpr (std::is_same_v<B, storage::TaskRouted>) spill(body.input);
          if constexpr (std::is_same_v<B, storage::EffectIntent>) spill(body.arguments);
          if constexpr (std::is_same_v<B, storage::EffectOutcome>) spill(body.result);
          if constexpr (std::is_same_v<B, storage::EventReceived>) spill(body.payload);
          if constexpr (std::is_same_v<B, storage::TaskCompleted>) spill(body.output);
          if constexpr (std::is_same_v<B, storage::RunStopped>) spill(body.output);
          if constexpr (std::is_same_v<B, storage::ControlRequested>) spill(body.argument);
        },
        e.body);
  }
}

// Data entering a run from outside (input, signal data, tool results) must fit the run's
// bounds, so that the state holding it can always be written and read back.
Status CheckRunData(const Json& value, const std::string& what) {
  if (JsonDepth(value) > limits::json_depth_max) {
    return Status::InvalidArgument(what + " nests deeper than " +
                                   std::to_string(limits::json_depth_max) + " levels");
  }
  size_t bytes = 0;
  try {
    bytes = value.dump().size();  // strict: throws on a string that is not UTF-8
  } catch (const Json::type_error&) {
    return Status::InvalidArgument(what + " holds a string that is not valid UTF-8");
  }
  if (bytes > limits::run_data_bytes_max) {
    return Status::InvalidArgument(what + " is " + std::to_string(bytes) +
                                   " bytes of JSON, larger than " +
                                   std::to_string(limits::run_data_bytes_max) +
                                   " bytes (the run data limit: at most that many)");
  }
  return Status::Ok();
}

constexpr std::string_view kStateBlobPrefix = "@blob:";

bool WaitsOnOutsideWorld(const storage::RunHeader& h) {
  if (storage::IsTerminal(h.status)) return true;
  if (h.status == RunStatus::kBlocked) return true;
  return h.status == RunStatus::kWaiting && h.waiting_on.rfind("timer", 0) != 0 &&
         h.waiting_on.rfind("retry", 0) != 0;
}

}  // namespace

// One run in memory: its state, the inputs waiting for it, its strand. Everything but
// `pending_posts` is touched only on the strand.
struct RunActor {
  RunActor(Strand s, RunId run) : strand(std::move(s)), id(std::move(run)) {}
  Strand strand;
  RunId id;
  std::atomic<int> pending_posts{0};  // incremented under Impl::actors_mu_
  bool loaded = false;
  bool busy = false;  // a transition is being committed
  std::shared_ptr<const Definition> definition;
  std::unique_ptr<Interpreter> interpreter;
  RunState state;
  storage::RunHeader header;
  std::deque<Input> inputs;
  std::set<std::string> calls_in_flight;
};

class Engine::Impl {
 public:
  explicit Impl(EngineOptions options)
      : options_(std::move(options)),
        catalog_(std::move(options_.tools)),
        random_(static_cast<uint64_t>(options_.clock->MonotonicNanos()) ^
                (static_cast<uint64_t>(::getpid()) << 32)),
        work_(asio::make_work_guard(io_)),
        timer_strand_(asio::make_strand(io_)),
        timer_(io_),
        router_(io_.get_executor()) {}

  Status Open();
  Status Close();
  Status ResumeAll();

  // ---- runs ----
  Result<StartResult> Start(StartRequest request);
  Status Control(const RunId& run_id, storage::EventBody body, Json payload);
  Result<RunInfo> Describe(const RunId& run_id) const;
  Result<RunInfo> Wait(const RunId& run_id, std::chrono::milliseconds timeout);
  Status RunUntilIdle(std::chrono::milliseconds timeout);
  void PollTimers() {
    asio::post(timer_strand_, [this] { FireTimers(); });
  }

  // ---- definitions ----
  Result<WorkflowRef> Apply(std::string_view text, std::string_view source_name);
  Result<std::shared_ptr<const Definition>> DefinitionByHash(const Sha256& hash) const;
  Result<std::pair<WorkflowRef, std::shared_ptr<const Definition>>> Resolve(
      std::string_view ref) const;

  // ---- governance ----
  Result<Sha256> ApplyPolicy(std::string_view text, std::string_view source_name);
  std::shared_ptr<const policy::Policy> CurrentPolicy() const {
    std::lock_guard lock(policy_mu_);
    return policy_;
  }
  Result<std::shared_ptr<const policy::Policy>> PolicyByHash(const Sha256& hash) const;
  Status ResolveApproval(const RunId& run_id, ApprovalAnswer answer);
  Result<std::vector<RunId>> EngageKillSwitch(KillSwitch kill);
  Status ReleaseKillSwitch(KillSwitch::Scope scope, const std::string& target);
  std::vector<KillSwitch> KillSwitches() const;

  EngineOptions options_;
  std::unique_ptr<storage::Store> store_;
  ToolCatalog catalog_;

 private:
  // ---- actors ----
  std::shared_ptr<RunActor> FindOrCreate(const RunId& run_id, bool* created);
  void Deliver(const std::shared_ptr<RunActor>& actor, Input input);
  void DeliverTo(const RunId& run_id, Input input);
  void Pump(const std::shared_ptr<RunActor>& actor);
  Status Load(RunActor& actor);
  void Recover(const std::shared_ptr<RunActor>& actor);
  void Process(const std::shared_ptr<RunActor>& actor, Input input);
  void Committed(const std::shared_ptr<RunActor>& actor, Result<storage::AppendResult> result,
                 Committing c);
  void StartCall(const std::shared_ptr<RunActor>& actor, const EffectCommand& command);
  void StartDecision(const std::shared_ptr<RunActor>& actor, const DecisionCommand& command);
  // A call or decision `key` has answered: its input goes to the run, stamped with the
  // time it is queued (unless the engine is closing: it stays pending in the run's state
  // and the next engine recovers it).
  void Answer(const std::shared_ptr<RunActor>& actor, const std::string& key, Input input);
  Status LoadGovernance();
  // The engaged kill switch covering the run, if any; kill_mu_ held by the caller.
  // Lock order: kill_mu_ may be taken before actors_mu_, never while holding it.
  std::optional<KillSwitch> KillCoveringLocked(const RunId& run_id,
                                               const Definition* definition) const;
  std::optional<KillSwitch> KillCoveringLocked(const RunActor& actor) const {
    return KillCoveringLocked(actor.id, actor.definition.get());
  }
  Input KillInput(const KillSwitch& kill) const;
  Result<Json> CallReadTool(const RunId& run_id, const std::string& name, const Json& arguments,
                            std::chrono::milliseconds timeout, const std::string& key);
  // Checks an approval answer against the run's state (on its strand): fills in the
  // approval id and binding, or says why it cannot be accepted.
  Status CheckApproval(const RunActor& actor, storage::ApprovalResolved& answer) const;
  void MaybeEvict(const std::shared_ptr<RunActor>& actor);
  storage::RunHeader BuildHeader(const RunActor& actor, const RunState& state,
                                 std::vector<std::string>* blobs) const;
  Result<Json> ReadEngineState(const std::string& field) const;
  void FaultOnRefusedTransition(const std::shared_ptr<RunActor>& actor, const Input& input,
                                const Status& refusal);
  void NotifyWaiters();

  // ---- timers ----
  void ArmTimer(int64_t due_ns);  // on timer_strand_
  void FireTimers();              // on timer_strand_

  std::optional<ToolSpec> LookupTool(std::string_view name) const {
    const ToolCatalog::Entry* e = catalog_.Find(name);
    if (e == nullptr) return std::nullopt;
    return e->spec;
  }

  asio::io_context io_;
  mutable std::mutex random_mu_;
  Random random_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  EvaluatorPool evaluators_;

  Strand timer_strand_;
  asio::steady_timer timer_;
  int64_t armed_due_ns_ = std::numeric_limits<int64_t>::max();  // on timer_strand_
  std::set<std::pair<std::string, std::string>> delivering_;    // on timer_strand_

  ToolRouter router_;
  std::shared_ptr<CppExecutor> cpp_;

  mutable std::mutex actors_mu_;
  std::map<RunId, std::shared_ptr<RunActor>> actors_;  // guarded by actors_mu_
  std::set<std::string> inflight_keys_;                // guarded by actors_mu_
  bool closing_ = false;                               // guarded by actors_mu_

  mutable std::mutex definitions_mu_;
  mutable std::map<Sha256, std::shared_ptr<const Definition>> definitions_;

  mutable std::mutex policy_mu_;
  std::shared_ptr<const policy::Policy> policy_;                              // policy_mu_
  mutable std::map<Sha256, std::shared_ptr<const policy::Policy>> policies_;  // policy_mu_
  // Engaged kill switches by setting key. Held shared while a call is started, exclusively
  // while one is engaged: no call starts after EngageKillSwitch returns.
  mutable std::shared_mutex kill_mu_;
  std::map<std::string, KillSwitch> kills_;  // guarded by kill_mu_
  std::unique_ptr<asio::thread_pool> agent_pool_;

  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  uint64_t epoch_ = 0;     // guarded by wait_mu_
  size_t committing_ = 0;  // transitions submitted and not yet called back; wait_mu_
};

// ---------------------------------------------------------------------------------------
// Open / Close

Status Engine::Impl::Open() {
  storage::StoreOptions so;
  so.durability = options_.durability;
  so.clock = options_.clock;
  so.file_system = options_.file_system;
  so.owner_description = options_.owner_description;
  CAIRN_ASSIGN_OR_RETURN(store_, storage::Store::Open(options_.data_dir, std::move(so)));
  unsigned threads = options_.threads;
  if (threads == 0) threads = std::max(2u, std::thread::hardware_concurrency());
  cpp_ = std::make_shared<CppExecutor>(&catalog_, io_.get_executor(), threads);
  router_.Add("cpp", cpp_);
  CAIRN_RETURN_IF_ERROR(AddExecutors(router_, io_.get_executor(), options_));
  CAIRN_RETURN_IF_ERROR(LoadGovernance());
  agent_pool_ = std::make_unique<asio::thread_pool>(std::max(1u, options_.agent_threads));
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  if (options_.resume_on_open) CAIRN_RETURN_IF_ERROR(ResumeAll());
  PollTimers();
  return Status::Ok();
}

Status Engine::Impl::ResumeAll() {
  std::string after;
  size_t resumed = 0;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<storage::RunSummary> page,
                           store_->ListActiveRuns(after, 1000));
    for (const storage::RunSummary& run : page) {
      if (run.status == RunStatus::kRunning || run.status == RunStatus::kUnknown) {
        DeliverTo(run.run_id, Input{StepInput{}, nullptr, true, false});
        ++resumed;
      }
    }
    if (page.size() < 1000) break;
    after = page.back().run_id.str();
  }
  if (resumed > 0) spdlog::info("resuming {} runs", resumed);
  return Status::Ok();
}

Status Engine::Impl::Close() {
  {
    std::lock_guard lock(actors_mu_);
    if (closing_) return Status::Ok();
    closing_ = true;
  }
  // Let transitions being committed finish, so that nothing acknowledged is lost (the
  // store's own Close would drain them too, but their callbacks need the io threads).
  {
    std::unique_lock lock(wait_mu_);
    wait_cv_.wait_for(lock, std::chrono::seconds(30), [this] { return committing_ == 0; });
  }
  router_.Shutdown();  // answers the calls agents wait on, so their threads return
  if (agent_pool_) agent_pool_->join();
  asio::post(timer_strand_, [this] { timer_.cancel(); });
  work_.reset();
  io_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  {
    std::lock_guard lock(actors_mu_);
    actors_.clear();
  }
  return store_ ? store_->Close() : Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Actors

std::shared_ptr<RunActor> Engine::Impl::FindOrCreate(const RunId& run_id, bool* created) {
  // actors_mu_ held by the caller.
  auto it = actors_.find(run_id);
  if (it != actors_.end()) {
    if (created) *created = false;
    return it->second;
  }
  auto actor = std::make_shared<RunActor>(asio::make_strand(io_), run_id);
  actors_.emplace(run_id, actor);
  if (created) *created = true;
  return actor;
}

void Engine::Impl::Deliver(const std::shared_ptr<RunActor>& actor, Input input) {
  // actors_mu_ held by the caller, so that eviction sees pending_posts.
  actor->pending_posts.fetch_add(1, std::memory_order_relaxed);
  asio::post(actor->strand, [this, actor, input = std::move(input)]() mutable {
    actor->inputs.push_back(std::move(input));
    actor->pending_posts.fetch_sub(1, std::memory_order_relaxed);
    Pump(actor);
  });
}

void Engine::Impl::DeliverTo(const RunId& run_id, Input input) {
  std::lock_guard lock(actors_mu_);
  if (closing_) {
    if (input.ack) input.ack(Status::Unavailable("the engine is shutting down"));
    return;
  }
  Deliver(FindOrCreate(run_id, nullptr), std::move(input));
}

void Engine::Impl::Pump(const std::shared_ptr<RunActor>& actor) {
  if (actor->busy) return;
  bool closing;
  {
    std::lock_guard lock(actors_mu_);
    closing = closing_;
  }
  if (!actor->loaded) {
    Status st = Load(*actor);
    if (!st.ok()) {
      spdlog::error("run {}: cannot load: {}", actor->id.str(), st.message());
      for (Input& in : actor->inputs) {
        if (in.ack) in.ack(st);
      }
      actor->inputs.clear();
      MaybeEvict(actor);
      return;
    }
    if (!closing) Recover(actor);
  }
  if (actor->inputs.empty() || closing) {
    for (Input& in : actor->inputs) {
      if (in.ack) in.ack(Status::Unavailable("the engine is shutting down"));
    }
    actor->inputs.clear();
    MaybeEvict(actor);
    return;
  }
  Input input = std::move(actor->inputs.front());
  actor->inputs.pop_front();
  Process(actor, std::move(input));
}

Status Engine::Impl::Load(RunActor& actor) {
  CAIRN_ASSIGN_OR_RETURN(actor.header, store_->GetRun(actor.id));
  CAIRN_ASSIGN_OR_RETURN(actor.definition, DefinitionByHash(actor.header.definition_hash));
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const policy::Policy> policy,
                         PolicyByHash(actor.header.policy_hash));
  actor.interpreter = std::make_unique<Interpreter>(
      actor.definition, [this](std::string_view name) { return LookupTool(name); },
      std::move(policy));
  if (actor.header.engine_state.empty()) {
    return Status::DataLoss("run " + actor.id.str() + " has no engine state in its header");
  }
  CAIRN_ASSIGN_OR_RETURN(Json state_json, ReadEngineState(actor.header.engine_state));
  CAIRN_ASSIGN_OR_RETURN(actor.state, RunStateFromJson(state_json));
  actor.loaded = true;
  return Status::Ok();
}

Result<Json> Engine::Impl::ReadEngineState(const std::string& field) const {
  std::string text = field;
  if (std::string_view(text).substr(0, kStateBlobPrefix.size()) == kStateBlobPrefix) {
    CAIRN_ASSIGN_OR_RETURN(Sha256 digest, Sha256::FromHex(text.substr(kStateBlobPrefix.size())));
    CAIRN_ASSIGN_OR_RETURN(text, store_->GetBlob(digest));
  }
  return ParseJson(text, "engine state", limits::engine_state_bytes_max,
                   limits::json_depth_max + limits::engine_state_extra_depth_max);
}

// A run loaded from its header, not by the process that was driving it: finish what the
// previous owner left (an effect whose outcome is unknown, a step cut at the batch bound).
void Engine::Impl::Recover(const std::shared_ptr<RunActor>& actor) {
  RunState& s = actor->state;
  if (storage::IsTerminal(s.status)) return;
  if (s.deferred_start) {
    storage::RunStarted started;
    started.workflow_namespace = actor->definition->namespace_;
    started.workflow_name = actor->definition->name;
    started.workflow_version = actor->definition->version;
    started.definition_hash = actor->definition->hash;
    started.policy_hash = actor->header.policy_hash;
    started.budget_limits = actor->header.budget_limits;
    Input begin{StepInput{s.started_ns, storage::EventBody(std::move(started)), s.input}, nullptr};
    begin.record = false;
    actor->inputs.push_front(std::move(begin));
    return;
  }
  if (std::optional<DecisionCommand> decision = DecisionCommandFromJson(s.pending_decision)) {
    bool asking;
    {
      std::lock_guard lock(actors_mu_);
      asking = inflight_keys_.count(decision->decision_key) != 0;
    }
    if (!asking) {
      // Decisions only read: asking again is safe; a recorded one is never asked again.
      spdlog::info("run {}: asking again for decision {}", actor->id.str(), decision->decision_key);
      StartDecision(actor, *decision);
    }
    return;
  }
  const std::string key = PendingEffectKey(s);
  if (!key.empty() && !s.effect_indeterminate) {
    {
      std::lock_guard lock(actors_mu_);
      if (inflight_keys_.count(key) != 0) return;  // this process is still calling it
    }
    std::optional<EffectCommand> command = EffectCommandFromJson(s.pending_call);
    if (command && command->idempotency_key == key && command->tool.idempotent) {
      spdlog::info("run {}: retrying effect {} (idempotent tool {})", actor->id.str(), key,
                   command->tool.name);
      StartCall(actor, *command);
      return;
    }
    spdlog::warn(
        "run {}: effect {} may or may not have happened; the run waits for an "
        "operator (cairn run resolve)",
        actor->id.str(), key);
    storage::EffectOutcome outcome;
    outcome.idempotency_key = key;
    outcome.status = storage::EffectOutcome::Status::kIndeterminate;
    outcome.error = {error_type::kRuntime,
                     500,
                     "Effect outcome unknown",
                     "the engine stopped while the call was in flight and the tool is not "
                     "declared idempotent",
                     {}};
    actor->inputs.push_front(Input{
        StepInput{options_.clock->NowNanos(), storage::EventBody(std::move(outcome)), nullptr},
        nullptr});
    return;
  }
  if (s.status == RunStatus::kRunning && s.waiting_on.empty()) {
    actor->inputs.push_back(Input{StepInput{}, nullptr});  // continue
  }
}

storage::RunHeader Engine::Impl::BuildHeader(const RunActor& actor, const RunState& state,
                                             std::vector<std::string>* blobs) const {
  storage::RunHeader h = actor.header;
  h.run_id = actor.id;
  h.status = state.status;
  h.stop_reason = state.stop_reason;
  h.workflow_namespace = actor.definition->namespace_;
  h.workflow_name = actor.definition->name;
  h.workflow_version = actor.definition->version;
  h.definition_hash = actor.definition->hash;
  h.waiting_on = state.waiting_on;
  h.budget_limits = state.budget_caps;
  h.budget_spent = state.budget_spent;
  h.budget_reserved = state.budget_reserved;
  h.engine_state = DumpJson(RunStateToJson(state));
  if (h.engine_state.size() > limits::engine_state_inline_bytes_max && blobs != nullptr) {
    // Headers stay small: a large state goes to a blob of the same transition.
    const Sha256 digest = Sha256::Of(h.engine_state);
    blobs->push_back(std::move(h.engine_state));
    h.engine_state = std::string(kStateBlobPrefix) + digest.Hex();
  }
  return h;
}

void Engine::Impl::Process(const std::shared_ptr<RunActor>& actor, Input input) {
  const int64_t step_started_ns = options_.clock->MonotonicNanos();
  RunActor& a = *actor;
  if (storage::IsTerminal(a.state.status) && input.step.body) {
    if (input.ack) input.ack(Status::FailedPrecondition("run " + a.id.str() + " has stopped"));
    return Pump(actor);
  }
  if (input.step.body) {
    // A run a kill switch covers stops at its next transition (a signal, a timer, an
    // operator's answer): the kill goes first, the input then finds the run stopped. The
    // outcome of a call or decision already under way is still recorded (it happened);
    // StartCall/StartDecision refuse whatever it would start next.
    // A deferred start begins first (a run that has not started cannot stop), the kill
    // right after it.
    const auto* control = std::get_if<storage::ControlRequested>(&*input.step.body);
    const bool answer = std::holds_alternative<storage::EffectOutcome>(*input.step.body) ||
                        std::holds_alternative<storage::AgentDecided>(*input.step.body);
    const bool begin = std::holds_alternative<storage::RunStarted>(*input.step.body);
    if (!answer &&
        (control == nullptr || control->action != storage::ControlRequested::Action::kKill)) {
      std::optional<KillSwitch> kill;
      {
        std::shared_lock kill_lock(kill_mu_);
        kill = KillCoveringLocked(a);
      }
      if (kill && begin) {
        a.inputs.push_front(KillInput(*kill));
      } else if (kill) {
        a.inputs.push_front(std::move(input));
        a.inputs.push_front(KillInput(*kill));
        return Pump(actor);
      }
    }
    if (std::holds_alternative<storage::EventReceived>(*input.step.body) &&
        a.state.inbox.size() >= limits::run_inbox_events_max) {
      if (input.ack) {
        input.ack(Status::ResourceExhausted(
            "the inbox of run " + a.id.str() + " is full: it holds " +
            std::to_string(limits::run_inbox_events_max) +
            " events no listen task has consumed; retry once it consumes some"));
      }
      return Pump(actor);
    }
    if (auto* answer = std::get_if<storage::ApprovalResolved>(&*input.step.body)) {
      if (Status st = CheckApproval(a, *answer); !st.ok()) {
        if (input.ack) input.ack(st);
        return Pump(actor);
      }
    }
    if (auto* o = std::get_if<storage::EffectOutcome>(&*input.step.body);
        o != nullptr && o->status == storage::EffectOutcome::Status::kOk) {
      if (Status st = CheckRunData(input.step.payload, "the tool's result"); !st.ok()) {
        o->status = storage::EffectOutcome::Status::kFailed;
        o->result = storage::Payload::None();
        o->error = {error_type::kRuntime, 500, "Output too large", st.message(), {}};
        input.step.payload = nullptr;
      }
    }
  }
  RunState next = a.state;
  if (input.defer || !input.record) {
    // Begin (or only record) a run from scratch: the state before any step.
    next = RunState{};
    next.run_id = a.id.str();
  }
  Result<StepOutput> out = [&]() -> Result<StepOutput> {
    if (input.defer) {
      next.deferred_start = true;
      next.started_ns = input.step.time_ns;
      next.now_ns = input.step.time_ns;
      next.input = input.step.payload;
      return StepOutput{};
    }
    auto evaluator = evaluators_.Acquire();
    return a.interpreter->Step(next, input.step, *evaluator);
  }();
  if (!out.ok()) {
    spdlog::error("run {}: step failed: {}", a.id.str(), out.status().message());
    if (input.ack) input.ack(out.status());
    return Pump(actor);
  }
  storage::Transition t;
  t.run_id = a.id;
  t.expected_next_seq = a.header.next_seq;
  t.time_ns = input.step.body ? input.step.time_ns : options_.clock->NowNanos();
  if (input.step.body && input.record) {
    // An input event belongs to the task that waited for it (if any still does).
    std::string path = "/";
    std::string key;
    if (const auto* o = std::get_if<storage::EffectOutcome>(&*input.step.body)) {
      key = o->idempotency_key;
    } else if (const auto* f = std::get_if<storage::TimerFired>(&*input.step.body)) {
      key = f->timer_id;
    } else if (const auto* d = std::get_if<storage::AgentDecided>(&*input.step.body)) {
      key = d->decision_key;
    } else if (const auto* r = std::get_if<storage::ApprovalResolved>(&*input.step.body)) {
      key = r->approval_id;
    }
    const bool event = std::holds_alternative<storage::EventReceived>(*input.step.body);
    for (const Frame& f : a.state.stack) {
      if (f.is_list) continue;
      if ((!key.empty() && (f.key == key || f.timeout_timer == key)) ||
          (event && f.phase == TaskPhase::kListen)) {
        path = a.definition->tasks.at(f.task)->path;
      }
    }
    t.events.push_back(storage::NewEvent{path, *input.step.body});
  }
  // What Committed needs of the produced events once they are moved into the transition.
  int64_t earliest_timer = std::numeric_limits<int64_t>::max();
  for (const storage::NewEvent& e : out->events) {
    if (const auto* ts = std::get_if<storage::TimerScheduled>(&e.body)) {
      earliest_timer = std::min(earliest_timer, ts->due_at_ns);
    }
  }
  for (storage::NewEvent& e : out->events) t.events.push_back(std::move(e));
  out->events.clear();
  for (std::string& blob : input.blobs) t.blobs.push_back(std::move(blob));
  if (t.events.empty()) {
    if (input.ack) input.ack(Status::Ok());
    return Pump(actor);
  }
  // Keep the call to start (if any) in the state, so a recovering engine can retry it.
  if (out->call) {
    next.pending_call = EffectCommandToJson(*out->call);
  } else if (PendingEffectKey(next).empty()) {
    next.pending_call = nullptr;
  }
  if (out->decide) {
    next.pending_decision = DecisionCommandToJson(*out->decide);
  } else if (next.stack.empty() || next.stack.back().is_list ||
             next.stack.back().phase != TaskPhase::kDecision) {
    next.pending_decision = nullptr;
  }
  t.header = BuildHeader(a, next, &t.blobs);
  SpillLargePayloads(t);
  a.busy = true;
  {
    std::lock_guard lock(wait_mu_);
    ++committing_;
  }
  auto ack = std::move(input.ack);
  auto committed = std::make_shared<Committing>();
  committed->next = std::move(next);
  committed->out = std::move(out).value();
  committed->ack = ack;
  committed->earliest_timer = earliest_timer;
  committed->step_started_ns = step_started_ns;
  if (options_.on_transition) {
    committed->record.emplace();
    committed->record->run_id = a.id;
    committed->record->workflow = a.definition->namespace_ + "/" + a.definition->name;
    committed->record->status = committed->next.status;
    for (size_t i = 0; i < t.events.size(); ++i) {
      storage::Event e;
      e.run_id = a.id;
      e.seq = EventSeq(t.expected_next_seq + i);
      e.time_ns = t.time_ns;
      e.task_path = t.events[i].task_path;
      e.body = t.events[i].body;
      committed->record->events.push_back(std::move(e));
    }
  }
  committed->submitted_ns = options_.clock->MonotonicNanos();
  Status st =
      store_->Submit(std::move(t), [this, actor, committed](Result<storage::AppendResult> r) {
        committed->durable_ns = options_.clock->MonotonicNanos();
        asio::post(actor->strand, [this, actor, committed, r = std::move(r)]() mutable {
          Committed(actor, std::move(r), std::move(*committed));
        });
      });
  if (!st.ok()) {
    a.busy = false;
    {
      std::lock_guard lock(wait_mu_);
      --committing_;
    }
    spdlog::error("run {}: transition refused: {}", a.id.str(), st.message());
    if (st.code() == StatusCode::kInvalidArgument && input.record) {
      // The step's own result cannot be recorded (too large, malformed): the run
      // faults, recording why, rather than being left waiting for what it dropped.
      FaultOnRefusedTransition(actor, input, st);
    }
    if (ack) ack(st);
    if (st.code() == StatusCode::kAborted) a.loaded = false;  // re-read the run
    return Pump(actor);
  }
}

void Engine::Impl::FaultOnRefusedTransition(const std::shared_ptr<RunActor>& actor,
                                            const Input& input, const Status& refusal) {
  RunActor& a = *actor;
  if (storage::IsTerminal(a.state.status)) return;
  storage::Transition t;
  t.run_id = a.id;
  t.expected_next_seq = a.header.next_seq;
  t.time_ns = options_.clock->NowNanos();
  if (input.step.body && !std::holds_alternative<storage::RunStarted>(*input.step.body)) {
    // Keep the fact that the input arrived, without the payload that did not fit.
    storage::EventBody body = *input.step.body;
    std::visit(
        [](auto& b) {
          using B = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<B, storage::EffectOutcome>) b.result = {};
          if constexpr (std::is_same_v<B, storage::EventReceived>) b.payload = {};
          if constexpr (std::is_same_v<B, storage::ControlRequested>) b.argument = {};
        },
        body);
    t.events.push_back({"/", std::move(body)});
  }
  storage::RunStopped stopped;
  stopped.reason = storage::StopReason::kFaulted;
  stopped.error = {error_type::kRuntime, 500, "Transition could not be recorded", refusal.message(),
                   "/"};
  stopped.detail = "the engine could not record the run's next step";
  t.events.push_back({"/", std::move(stopped)});
  RunState next = a.state;
  next.stack.clear();
  next.status = RunStatus::kFailed;
  next.stop_reason = storage::StopReason::kFaulted;
  next.waiting_on.clear();
  next.pending_call = nullptr;
  t.header = BuildHeader(a, next, &t.blobs);
  Result<storage::AppendResult> r = store_->Append(std::move(t));
  if (!r.ok()) {
    spdlog::error("run {}: cannot record the fault either: {}", a.id.str(), r.status().message());
    return;
  }
  a.state = std::move(next);
  a.header.next_seq = r->next_seq;
  NotifyWaiters();
}

void Engine::Impl::Committed(const std::shared_ptr<RunActor>& actor,
                             Result<storage::AppendResult> result, Committing c) {
  RunState& next = c.next;
  StepOutput& out = c.out;
  std::function<void(Status)>& ack = c.ack;
  RunActor& a = *actor;
  a.busy = false;
  {
    std::lock_guard lock(wait_mu_);
    --committing_;
  }
  if (!result.ok()) {
    spdlog::error("run {}: transition failed: {}", a.id.str(), result.status().message());
    a.loaded = false;
    if (ack) ack(result.status());
    NotifyWaiters();
    return Pump(actor);
  }
  a.state = std::move(next);
  a.header.next_seq = result->next_seq;
  a.header.chain_head = result->chain_head;
  if (c.record) {
    // The store assigned the sequence numbers; ours were the expected ones.
    const uint64_t first = result->first_seq.value();
    for (size_t i = 0; i < c.record->events.size(); ++i) {
      c.record->events[i].seq = EventSeq(first + i);
    }
    c.record->step_ns = c.durable_ns - c.step_started_ns;
    c.record->write_ns = c.durable_ns - c.submitted_ns;
    try {
      options_.on_transition(*c.record);
    } catch (const std::exception& e) {
      spdlog::error("run {}: on_transition threw: {}", a.id.str(), e.what());
    }
  }
  if (ack) ack(Status::Ok());
  if (out.call) StartCall(actor, *out.call);
  if (out.decide) StartDecision(actor, *out.decide);
  if (out.more) a.inputs.push_front(Input{StepInput{}, nullptr});
  const int64_t earliest = c.earliest_timer;
  if (earliest != std::numeric_limits<int64_t>::max()) {
    asio::post(timer_strand_, [this, earliest] { ArmTimer(earliest); });
  }
  NotifyWaiters();
  Pump(actor);
}

void Engine::Impl::StartCall(const std::shared_ptr<RunActor>& actor, const EffectCommand& command) {
  // Held shared until the call is handed to its executor: a kill switch engaged after this
  // check waits for it, and every call checked after it sees the switch.
  std::shared_lock kill_lock(kill_mu_);
  if (std::optional<KillSwitch> kill = KillCoveringLocked(*actor)) {
    spdlog::warn("run {}: kill switch engaged; effect {} is not started", actor->id.str(),
                 command.idempotency_key);
    actor->inputs.push_front(KillInput(*kill));
    return;
  }
  actor->calls_in_flight.insert(command.idempotency_key);
  {
    std::lock_guard lock(actors_mu_);
    inflight_keys_.insert(command.idempotency_key);
  }
  const int64_t started = options_.clock->MonotonicNanos();
  router_.Call(
      actor->id, command,
      [this, actor, key = command.idempotency_key, started](ToolResponse response) {
        storage::EffectOutcome outcome;
        outcome.idempotency_key = key;
        using S = storage::EffectOutcome::Status;
        outcome.status = response.status == ToolResponse::Status::kOk         ? S::kOk
                         : response.status == ToolResponse::Status::kTimedOut ? S::kTimedOut
                                                                              : S::kFailed;
        outcome.error = response.error;
        outcome.duration_ms =
            static_cast<uint64_t>(options_.clock->MonotonicNanos() - started) / 1'000'000;
        Json payload = std::move(response.output);
        if (outcome.status == S::kOk) {
          outcome.result = storage::Payload::Json(DumpJson(payload));
        }
        Answer(actor, key,
               Input{StepInput{0, storage::EventBody(std::move(outcome)), std::move(payload)},
                     nullptr});
      });
}

void Engine::Impl::Answer(const std::shared_ptr<RunActor>& actor, const std::string& key,
                          Input input) {
  std::lock_guard lock(actors_mu_);
  inflight_keys_.erase(key);
  actor->pending_posts.fetch_add(1, std::memory_order_relaxed);
  asio::post(actor->strand, [this, actor, key, input = std::move(input)]() mutable {
    actor->pending_posts.fetch_sub(1, std::memory_order_relaxed);
    actor->calls_in_flight.erase(key);
    bool closing;
    {
      std::lock_guard lock(actors_mu_);
      closing = closing_;
    }
    if (closing) return;  // still pending in the state: the next engine recovers it
    input.step.time_ns = options_.clock->NowNanos();
    actor->inputs.push_back(std::move(input));
    Pump(actor);
  });
}

void Engine::Impl::StartDecision(const std::shared_ptr<RunActor>& actor,
                                 const DecisionCommand& command) {
  {
    std::shared_lock kill_lock(kill_mu_);
    if (std::optional<KillSwitch> kill = KillCoveringLocked(*actor)) {
      actor->inputs.push_front(KillInput(*kill));
      return;
    }
  }
  const std::string key = command.decision_key;
  actor->calls_in_flight.insert(key);
  {
    std::lock_guard lock(actors_mu_);
    inflight_keys_.insert(key);
  }
  agent::DecisionRequest request =
      MakeDecisionRequest(actor->id.str(), *actor->definition, command);
  std::shared_ptr<agent::Agent> agent =
      options_.agents ? options_.agents->Find(command.agent) : nullptr;
  asio::post(*agent_pool_, [this, actor, key, agent, request = std::move(request),
                            name = command.agent]() mutable {
    agent::DecisionOutcome outcome;
    if (agent == nullptr) {
      outcome = UnknownAgentOutcome(name);
    } else {
      agent::ExecutorAgentIo io(
          router_.Find("http"), router_.Find("shell"),
          [this, id = actor->id, key](const std::string& tool, const Json& arguments,
                                      std::chrono::milliseconds timeout) {
            return CallReadTool(id, tool, arguments, timeout, key);
          });
      outcome = agent::Decide(*agent, request, io, *options_.clock);
    }
    std::vector<std::string> blobs;
    storage::AgentDecided decided = MakeAgentDecided(outcome, request, &blobs);
    Input input{StepInput{0, storage::EventBody(std::move(decided)), nullptr}, nullptr};
    input.blobs = std::move(blobs);
    Answer(actor, key, std::move(input));
  });
}

Result<Json> Engine::Impl::CallReadTool(const RunId& run_id, const std::string& name,
                                        const Json& arguments, std::chrono::milliseconds timeout,
                                        const std::string& key) {
  std::optional<ToolSpec> spec = LookupTool(name);
  if (!spec) return Status::NotFound("no tool named '" + name + "'");
  if (spec->effect != storage::EffectKind::kRead) {
    return Status::PermissionDenied("tool '" + name + "' writes; agents may call only read tools");
  }
  EffectCommand command;
  command.idempotency_key = key + "/" + name;
  command.tool = std::move(*spec);
  command.arguments = arguments;
  command.timeout_ms = static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 1));
  auto promise = std::make_shared<std::promise<ToolResponse>>();
  auto future = promise->get_future();
  router_.Call(run_id, command,
               [promise](ToolResponse response) { promise->set_value(std::move(response)); });
  ToolResponse response = future.get();
  if (response.status == ToolResponse::Status::kOk) return std::move(response.output);
  if (response.status == ToolResponse::Status::kTimedOut) {
    return Status::DeadlineExceeded("tool '" + name + "': " + response.error.detail);
  }
  return Status::Unavailable("tool '" + name + "': " + response.error.title +
                             (response.error.detail.empty() ? "" : ": " + response.error.detail));
}

// ---------------------------------------------------------------------------------------
// Governance: policy, approvals, kill switches

namespace {

std::string KillKey(KillSwitch::Scope scope, const std::string& target) {
  switch (scope) {
    case KillSwitch::Scope::kAll:
      return "kill/all";
    case KillSwitch::Scope::kWorkflow:
      return "kill/workflow/" + target;
    case KillSwitch::Scope::kRun:
      return "kill/run/" + target;
  }
  return "kill/all";
}

std::string DescribeKill(const KillSwitch& kill) {
  std::string what = kill.scope == KillSwitch::Scope::kAll ? "the global kill switch"
                     : kill.scope == KillSwitch::Scope::kWorkflow
                         ? "the kill switch of workflow " + kill.target
                         : "the kill switch of run " + kill.target;
  if (!kill.actor.name.empty()) what += " (engaged by " + kill.actor.name + ")";
  if (!kill.reason.empty()) what += ": " + kill.reason;
  return what;
}

}  // namespace

Result<std::vector<KillSwitch>> ReadKillSwitches(const storage::Store& store) {
  CAIRN_ASSIGN_OR_RETURN(auto settings, store.ListSettings("kill/"));
  std::vector<KillSwitch> kills;
  for (const auto& [key, value] : settings) {
    Result<Json> json = ParseJson(value, "kill switch " + key);
    if (!json.ok() || !json->is_object()) {
      return Status::DataLoss("setting " + key + " is not a kill switch");
    }
    KillSwitch kill;
    if (key == "kill/all") {
      kill.scope = KillSwitch::Scope::kAll;
    } else if (key.rfind("kill/workflow/", 0) == 0) {
      kill.scope = KillSwitch::Scope::kWorkflow;
      kill.target = key.substr(std::string_view("kill/workflow/").size());
    } else if (key.rfind("kill/run/", 0) == 0) {
      kill.scope = KillSwitch::Scope::kRun;
      kill.target = key.substr(std::string_view("kill/run/").size());
    } else {
      continue;
    }
    kill.reason = json->value("reason", "");
    kill.actor = storage::Actor{json->value("actor", ""), json->value("role", "")};
    kill.engaged_at_ns = json->value("at_ns", int64_t{0});
    kills.push_back(std::move(kill));
  }
  return kills;
}

std::string DescribeKillSwitch(const KillSwitch& kill) { return DescribeKill(kill); }

Status Engine::Impl::LoadGovernance() {
  std::shared_ptr<const policy::Policy> current = options_.policy;
  if (current) {
    CAIRN_RETURN_IF_ERROR(store_->PutBlob(current->text()).status());
  } else {
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> applied,
                           store_->GetSetting("policy/current"));
    if (applied) {
      CAIRN_ASSIGN_OR_RETURN(Sha256 hash, Sha256::FromHex(*applied));
      CAIRN_ASSIGN_OR_RETURN(current, PolicyByHash(hash));
    } else {
      current = policy::Policy::Default();
    }
  }
  {
    std::lock_guard lock(policy_mu_);
    policy_ = current;
    policies_[current->hash()] = current;
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<KillSwitch> kills, ReadKillSwitches(*store_));
  std::unique_lock lock(kill_mu_);
  for (KillSwitch& kill : kills) {
    const std::string key = KillKey(kill.scope, kill.target);
    kills_[key] = std::move(kill);
  }
  return Status::Ok();
}

Result<std::shared_ptr<const policy::Policy>> Engine::Impl::PolicyByHash(const Sha256& hash) const {
  std::shared_ptr<const policy::Policy> fallback = policy::Policy::Default();
  if (hash.IsZero() || hash == fallback->hash()) return fallback;
  {
    std::lock_guard lock(policy_mu_);
    auto it = policies_.find(hash);
    if (it != policies_.end()) return it->second;
  }
  CAIRN_ASSIGN_OR_RETURN(std::string text, store_->GetBlob(hash));
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const policy::Policy> loaded,
                         policy::Policy::Load(text, "policy sha256:" + hash.Hex().substr(0, 16)));
  std::lock_guard lock(policy_mu_);
  policies_[hash] = loaded;
  return loaded;
}

Result<Sha256> Engine::Impl::ApplyPolicy(std::string_view text, std::string_view source_name) {
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const policy::Policy> loaded,
                         policy::Policy::Load(text, source_name));
  CAIRN_RETURN_IF_ERROR(store_->PutBlob(loaded->text()).status());
  CAIRN_RETURN_IF_ERROR(store_->PutSetting("policy/current", loaded->hash().Hex()));
  std::lock_guard lock(policy_mu_);
  policy_ = loaded;
  policies_[loaded->hash()] = loaded;
  return loaded->hash();
}

std::optional<KillSwitch> Engine::Impl::KillCoveringLocked(const RunId& run_id,
                                                           const Definition* definition) const {
  if (kills_.empty()) return std::nullopt;
  for (const std::string& key :
       {std::string("kill/all"), "kill/run/" + run_id.str(),
        definition ? "kill/workflow/" + definition->namespace_ + "/" + definition->name
                   : std::string()}) {
    auto it = kills_.find(key);
    if (it != kills_.end()) return it->second;
  }
  return std::nullopt;
}

Input Engine::Impl::KillInput(const KillSwitch& kill) const {
  storage::ControlRequested control;
  control.action = storage::ControlRequested::Action::kKill;
  control.actor = kill.actor;
  control.reason = DescribeKill(kill);
  return Input{
      StepInput{options_.clock->NowNanos(), storage::EventBody(std::move(control)), nullptr},
      nullptr};
}

Result<std::vector<RunId>> Engine::Impl::EngageKillSwitch(KillSwitch kill) {
  if (kill.scope == KillSwitch::Scope::kWorkflow) {
    const size_t slash = kill.target.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == kill.target.size()) {
      return Status::InvalidArgument("kill switch: workflow '" + kill.target +
                                     "' is not namespace/name");
    }
  } else if (kill.scope == KillSwitch::Scope::kRun) {
    CAIRN_RETURN_IF_ERROR(RunId::Parse(kill.target).status());
  } else {
    kill.target.clear();
  }
  if (kill.reason.size() > limits::approval_reason_bytes_max) {
    return Status::InvalidArgument("kill switch: the reason is longer than " +
                                   std::to_string(limits::approval_reason_bytes_max) + " bytes");
  }
  kill.engaged_at_ns = options_.clock->NowNanos();
  const std::string key = KillKey(kill.scope, kill.target);
  const Json record{{"reason", kill.reason},
                    {"actor", kill.actor.name},
                    {"role", kill.actor.role},
                    {"at_ns", kill.engaged_at_ns}};
  CAIRN_RETURN_IF_ERROR(store_->PutSetting(key, DumpJson(record)));
  {
    std::unique_lock lock(kill_mu_);  // waits for calls being started
    kills_[key] = kill;
  }
  spdlog::warn("{} engaged", DescribeKill(kill));
  // Stop the runs it covers now, rather than at their next input.
  std::vector<RunId> covered_runs;
  if (kill.scope == KillSwitch::Scope::kRun) {
    Result<storage::RunHeader> header = store_->GetRun(RunId::FromTrusted(kill.target));
    if (header.ok() && !storage::IsTerminal(header->status)) {
      DeliverTo(header->run_id, KillInput(kill));
      covered_runs.push_back(header->run_id);
    }
    return covered_runs;
  }
  std::string after;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<storage::RunSummary> page,
                           store_->ListActiveRuns(after, 1000));
    for (const storage::RunSummary& run : page) {
      bool covered = kill.scope == KillSwitch::Scope::kAll;
      if (kill.scope == KillSwitch::Scope::kWorkflow) {
        Result<storage::RunHeader> header = store_->GetRun(run.run_id);
        covered =
            header.ok() && header->workflow_namespace + "/" + header->workflow_name == kill.target;
      }
      if (covered) {
        DeliverTo(run.run_id, KillInput(kill));
        covered_runs.push_back(run.run_id);
      }
    }
    if (page.size() < 1000) break;
    after = page.back().run_id.str();
  }
  return covered_runs;
}

Status Engine::Impl::ReleaseKillSwitch(KillSwitch::Scope scope, const std::string& target) {
  const std::string key = KillKey(scope, scope == KillSwitch::Scope::kAll ? "" : target);
  {
    std::shared_lock lock(kill_mu_);
    if (kills_.count(key) == 0) return Status::NotFound("no kill switch " + key + " is engaged");
  }
  CAIRN_RETURN_IF_ERROR(store_->DeleteSetting(key));
  std::unique_lock lock(kill_mu_);
  kills_.erase(key);
  return Status::Ok();
}

std::vector<KillSwitch> Engine::Impl::KillSwitches() const {
  std::shared_lock lock(kill_mu_);
  std::vector<KillSwitch> out;
  for (const auto& [key, kill] : kills_) out.push_back(kill);
  return out;
}

Status Engine::Impl::CheckApproval(const RunActor& actor, storage::ApprovalResolved& answer) const {
  if (answer.resolution == storage::ApprovalResolution::kExpired) {
    return Status::InvalidArgument("an approval expires by its timer, not by an answer");
  }
  const RunState& s = actor.state;
  const Frame* waiting = nullptr;
  if (!s.stack.empty() && !s.stack.back().is_list && s.stack.back().phase == TaskPhase::kApproval) {
    waiting = &s.stack.back();
  }
  if (waiting == nullptr || (!answer.approval_id.empty() && answer.approval_id != waiting->key)) {
    return Status::FailedPrecondition("run " + actor.id.str() + " does not wait on " +
                                      (answer.approval_id.empty()
                                           ? std::string("an approval")
                                           : "approval " + answer.approval_id) +
                                      " (already answered, expired, or never asked)");
  }
  const Json approvers = waiting->pending.value("approvers", Json::array());
  if (!approvers.empty() &&
      std::find(approvers.begin(), approvers.end(), Json(answer.actor.name)) == approvers.end()) {
    return Status::PermissionDenied("'" + answer.actor.name + "' may not answer approval " +
                                    waiting->key + " (approvers: " + DumpJson(approvers) + ")");
  }
  answer.approval_id = waiting->key;
  CAIRN_ASSIGN_OR_RETURN(answer.binding_hash,
                         Sha256::FromHex(waiting->pending.value("binding", "")));
  return Status::Ok();
}

Status Engine::Impl::ResolveApproval(const RunId& run_id, ApprovalAnswer answer) {
  if (answer.reason.size() > limits::approval_reason_bytes_max) {
    return Status::InvalidArgument("the reason is longer than " +
                                   std::to_string(limits::approval_reason_bytes_max) + " bytes");
  }
  storage::ApprovalResolved body;
  body.approval_id = std::move(answer.approval_id);
  body.resolution = answer.approve ? storage::ApprovalResolution::kApproved
                                   : storage::ApprovalResolution::kRejected;
  body.actor = std::move(answer.actor);
  body.reason = std::move(answer.reason);
  return Control(run_id, storage::EventBody(std::move(body)), nullptr);
}

void Engine::Impl::MaybeEvict(const std::shared_ptr<RunActor>& actor) {
  if (actor->busy || !actor->inputs.empty() || !actor->calls_in_flight.empty()) return;
  {
    std::lock_guard lock(actors_mu_);
    if (actor->pending_posts.load(std::memory_order_relaxed) != 0) return;
    auto it = actors_.find(actor->id);
    if (it != actors_.end() && it->second == actor) actors_.erase(it);
  }
  NotifyWaiters();
}

void Engine::Impl::NotifyWaiters() {
  {
    std::lock_guard lock(wait_mu_);
    ++epoch_;
  }
  wait_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------
// Timers

void Engine::Impl::ArmTimer(int64_t due_ns) {
  if (due_ns >= armed_due_ns_) return;
  armed_due_ns_ = due_ns;
  const int64_t now = options_.clock->NowNanos();
  const auto wait =
      std::clamp<int64_t>(due_ns - now, 0, std::chrono::nanoseconds(options_.timer_poll).count());
  timer_.expires_after(std::chrono::nanoseconds(wait));
  timer_.async_wait(asio::bind_executor(timer_strand_, [this](boost::system::error_code ec) {
    if (ec) return;  // re-armed or shutting down
    FireTimers();
  }));
}

void Engine::Impl::FireTimers() {
  armed_due_ns_ = std::numeric_limits<int64_t>::max();
  const int64_t now = options_.clock->NowNanos();
  Result<std::vector<storage::DueTimer>> due = store_->DueTimers(now, limits::due_timers_max);
  if (!due.ok()) {
    spdlog::error("timers: cannot read due timers: {}", due.status().message());
  } else {
    for (const storage::DueTimer& t : *due) {
      auto key = std::make_pair(t.run_id.str(), t.timer_id);
      if (!delivering_.insert(key).second) continue;
      storage::TimerFired fired{t.timer_id, t.due_at_ns, t.purpose};
      DeliverTo(t.run_id,
                Input{StepInput{now, storage::EventBody(fired), nullptr}, [this, key](Status st) {
                        if (!st.ok()) {
                          spdlog::debug("timer {} of run {}: {}", key.second, key.first,
                                        st.message());
                        }
                        asio::post(timer_strand_, [this, key] { delivering_.erase(key); });
                      }});
    }
  }
  // Sleep until the earliest outstanding timer, or one poll interval.
  int64_t next = now + std::chrono::nanoseconds(options_.timer_poll).count();
  Result<std::vector<storage::DueTimer>> earliest =
      store_->DueTimers(std::numeric_limits<int64_t>::max(), 1);
  if (earliest.ok() && !earliest->empty() &&
      delivering_.count({earliest->front().run_id.str(), earliest->front().timer_id}) == 0) {
    next = std::min(next, earliest->front().due_at_ns);
  }
  ArmTimer(next);
}

// ---------------------------------------------------------------------------------------
// Definitions

Result<std::shared_ptr<const Definition>> Engine::Impl::DefinitionByHash(const Sha256& hash) const {
  {
    std::lock_guard lock(definitions_mu_);
    auto it = definitions_.find(hash);
    if (it != definitions_.end()) return it->second;
  }
  CAIRN_ASSIGN_OR_RETURN(std::string canonical, store_->GetDefinition(hash));
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Definition> def, LoadCanonicalDefinition(canonical));
  if (def->hash != hash) {
    return Status::DataLoss("definition " + hash.Hex() + " reloads with hash " + def->hash.Hex());
  }
  std::lock_guard lock(definitions_mu_);
  if (definitions_.size() > 4096) definitions_.clear();
  definitions_.emplace(hash, def);
  return def;
}

Result<WorkflowRef> Engine::Impl::Apply(std::string_view text, std::string_view source_name) {
  LoadOptions load;
  load.tool_exists = [this](std::string_view name) { return catalog_.Contains(name); };
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const Definition> def,
                         LoadDefinition(text, source_name, load));
  // Versions are immutable: refuse a change before storing anything.
  CAIRN_ASSIGN_OR_RETURN(std::vector<storage::WorkflowVersion> versions,
                         store_->ListWorkflowVersions());
  for (const storage::WorkflowVersion& v : versions) {
    if (v.namespace_ == def->namespace_ && v.name == def->name && v.version == def->version &&
        v.hash != def->hash) {
      return Status::AlreadyExists(
          std::string(source_name) + ": workflow " + def->namespace_ + "/" + def->name + ":" +
          def->version + " is already applied with a different definition (sha256:" + v.hash.Hex() +
          "); give the new one another version");
    }
  }
  CAIRN_ASSIGN_OR_RETURN(Sha256 hash, store_->PutDefinition(def->canonical));
  CAIRN_RETURN_IF_ERROR(store_->PutWorkflowVersion(
      {def->namespace_, def->name, def->version, hash, options_.clock->NowNanos()}));
  {
    std::lock_guard lock(definitions_mu_);
    definitions_.emplace(hash, def);
  }
  return WorkflowRef{def->namespace_, def->name, def->version, hash};
}

Result<std::pair<WorkflowRef, std::shared_ptr<const Definition>>> Engine::Impl::Resolve(
    std::string_view text) const {
  CAIRN_ASSIGN_OR_RETURN(ParsedWorkflowRef ref, ParseWorkflowRef(text));
  if (ref.hash) {
    CAIRN_ASSIGN_OR_RETURN(auto def, DefinitionByHash(*ref.hash));
    return std::make_pair(WorkflowRef{def->namespace_, def->name, def->version, def->hash}, def);
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<storage::WorkflowVersion> versions,
                         store_->ListWorkflowVersions());
  const storage::WorkflowVersion* best = nullptr;
  std::set<std::string> namespaces;
  for (const storage::WorkflowVersion& v : versions) {
    if (v.name != ref.name) continue;
    if (!ref.namespace_.empty() && v.namespace_ != ref.namespace_) continue;
    if (!ref.version.empty() && v.version != ref.version) continue;
    namespaces.insert(v.namespace_);
    if (best == nullptr || v.applied_at_ns > best->applied_at_ns) best = &v;
  }
  if (best == nullptr) {
    return Status::NotFound("no applied workflow matches '" + std::string(text) +
                            "' (apply it first: cairn workflow apply FILE)");
  }
  if (namespaces.size() > 1) {
    return Status::InvalidArgument("workflow '" + std::string(text) +
                                   "' exists in several namespaces; write NAMESPACE/NAME");
  }
  CAIRN_ASSIGN_OR_RETURN(auto def, DefinitionByHash(best->hash));
  return std::make_pair(WorkflowRef{best->namespace_, best->name, best->version, best->hash}, def);
}

// ---------------------------------------------------------------------------------------
// Runs

Result<StartResult> Engine::Impl::Start(StartRequest request) {
  CAIRN_ASSIGN_OR_RETURN(auto resolved, Resolve(request.workflow));
  auto& [ref, def] = resolved;
  CAIRN_RETURN_IF_ERROR(CheckRunData(request.input, "the run's input"));
  if (def->input.schema) {
    Status st = def->input.schema->compiled.Validate(request.input);
    if (!st.ok()) {
      return Status::InvalidArgument("input does not match the input schema of " + ref.name + ": " +
                                     st.message());
    }
  }
  RunId id;
  if (request.run_id) {
    id = *request.run_id;
  } else {
    std::lock_guard lock(random_mu_);
    id = RunId::Generate(options_.clock->NowNanos(), random_);
  }
  {
    // Before actors_mu_ (lock order): a kill switch refuses new runs it covers.
    std::shared_lock kill_lock(kill_mu_);
    if (std::optional<KillSwitch> kill = KillCoveringLocked(id, def.get())) {
      return Status::FailedPrecondition("no new run of " + def->namespace_ + "/" + def->name +
                                        " may start: " + DescribeKill(*kill));
    }
  }
  std::promise<Status> promise;
  auto future = promise.get_future();
  {
    std::lock_guard lock(actors_mu_);
    if (closing_) return Status::Unavailable("the engine is shutting down");
    if (actors_.count(id) == 0) {
      Result<storage::RunHeader> existing = store_->GetRun(id);
      if (existing.ok()) {
        if (existing->workflow_name != def->name ||
            existing->workflow_namespace != def->namespace_) {
          return Status::AlreadyExists("run " + id.str() + " exists and runs workflow " +
                                       existing->workflow_name);
        }
        return StartResult{id, false};
      }
      if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    } else {
      return StartResult{id, false};
    }
    if (actors_.size() >= options_.max_queued_runs) {
      return Status::ResourceExhausted("the engine holds " + std::to_string(actors_.size()) +
                                       " runs in memory (max_queued_runs); retry later");
    }
    std::shared_ptr<RunActor> actor = FindOrCreate(id, nullptr);
    actor->loaded = true;
    actor->definition = def;
    std::shared_ptr<const policy::Policy> policy = CurrentPolicy();
    actor->interpreter = std::make_unique<Interpreter>(
        def, [this](std::string_view name) { return LookupTool(name); }, policy);
    actor->state.run_id = id.str();
    actor->header.status = RunStatus::kRunning;
    actor->header.policy_hash = policy->hash();
    actor->header.budget_limits = policy->BudgetsFor(def->namespace_, def->name).ToAmounts();
    storage::RunStarted started;
    started.workflow_namespace = def->namespace_;
    started.workflow_name = def->name;
    started.workflow_version = def->version;
    started.definition_hash = def->hash;
    started.input = storage::Payload::Json(DumpJson(request.input));
    started.started_by = request.started_by;
    started.tool_catalog_hash = catalog_.Hash();
    started.policy_hash = policy->hash();
    started.budget_limits = actor->header.budget_limits;
    if (options_.agents) started.agent_config_hash = options_.agents->hash();
    Input begin{StepInput{options_.clock->NowNanos(), storage::EventBody(std::move(started)),
                          std::move(request.input)},
                [&promise](Status st) { promise.set_value(st); }};
    begin.defer = request.defer;
    Deliver(actor, std::move(begin));
  }
  Status st = future.get();
  if (st.code() == StatusCode::kAlreadyExists) return StartResult{id, false};
  CAIRN_RETURN_IF_ERROR(st);
  return StartResult{id, true};
}

Status Engine::Impl::Control(const RunId& run_id, storage::EventBody body, Json payload) {
  CAIRN_ASSIGN_OR_RETURN(storage::RunHeader header, store_->GetRun(run_id));
  if (storage::IsTerminal(header.status)) {
    return Status::FailedPrecondition("run " + run_id.str() + " has stopped (" +
                                      std::string(storage::Name(header.stop_reason)) + ")");
  }
  std::promise<Status> promise;
  auto future = promise.get_future();
  DeliverTo(run_id,
            Input{StepInput{options_.clock->NowNanos(), std::move(body), std::move(payload)},
                  [&promise](Status st) { promise.set_value(st); }});
  return future.get();
}

Result<RunInfo> Engine::Impl::Describe(const RunId& run_id) const {
  RunInfo info;
  CAIRN_ASSIGN_OR_RETURN(info.header, store_->GetRun(run_id));
  info.workflow = {info.header.workflow_namespace, info.header.workflow_name,
                   info.header.workflow_version, info.header.definition_hash};
  info.waiting_on = info.header.waiting_on;
  if (!info.header.engine_state.empty()) {
    Result<Json> state_json = ReadEngineState(info.header.engine_state);
    if (state_json.ok()) {
      info.input = state_json->value("input", Json());
      // Only a run waiting on an approval needs its state decoded here.
      Result<RunState> state = info.waiting_on.rfind("approval ", 0) == 0
                                   ? RunStateFromJson(*state_json)
                                   : Result<RunState>(Status::NotFound("not waiting on one"));
      if (state.ok() && !state->stack.empty() && !state->stack.back().is_list &&
          state->stack.back().phase == TaskPhase::kApproval &&
          !storage::IsTerminal(state->status)) {
        const Frame& f = state->stack.back();
        PendingApproval approval;
        approval.approval_id = f.key;
        approval.tool = f.pending.value("tool", Json::object()).value("name", "");
        approval.arguments = f.pending.value("arguments", Json());
        approval.expires_at_ns = f.key_due_ns;
        for (const Json& name : f.pending.value("approvers", Json::array())) {
          if (name.is_string()) approval.approvers.push_back(name.get<std::string>());
        }
        approval.rule_id = f.pending.value("rule", "");
        Result<std::shared_ptr<const Definition>> def =
            DefinitionByHash(info.header.definition_hash);
        if (def.ok() && f.task < (*def)->tasks.size())
          approval.task_path = (*def)->tasks[f.task]->path;
        info.approval = std::move(approval);
      }
    }
  }
  if (storage::IsTerminal(info.header.status)) {
    // The last event is run_stopped: it holds the output or the error.
    const uint64_t last = info.header.next_seq == 0 ? 0 : info.header.next_seq - 1;
    CAIRN_ASSIGN_OR_RETURN(std::vector<storage::Event> events,
                           store_->ReadHistory(run_id, last, 1));
    if (!events.empty()) {
      if (const auto* stopped = std::get_if<storage::RunStopped>(&events.front().body)) {
        info.error = stopped->error;
        const storage::Payload& p = stopped->output;
        if (p.kind == storage::Payload::Kind::kJson) {
          Result<Json> out = ParseJson(p.json, "run output");
          if (out.ok()) info.output = std::move(out).value();
        } else if (p.kind == storage::Payload::Kind::kBlob) {
          Result<std::string> blob = store_->GetBlob(p.blob);
          if (blob.ok()) {
            Result<Json> out = ParseJson(*blob, "run output", limits::blob_bytes_max);
            if (out.ok()) info.output = std::move(out).value();
          }
        }
      }
    }
  }
  return info;
}

Result<RunInfo> Engine::Impl::Wait(const RunId& run_id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    uint64_t epoch;
    {
      std::lock_guard lock(wait_mu_);
      epoch = epoch_;
    }
    // Ask whether the run is in memory before reading its header: an actor
    // evicted between the two would otherwise make a header read before its
    // last input look final (a kill delivered just before Wait, say).
    bool in_memory;
    {
      std::lock_guard lock(actors_mu_);
      in_memory = actors_.count(run_id) != 0;
    }
    CAIRN_ASSIGN_OR_RETURN(RunInfo info, Describe(run_id));
    if (WaitsOnOutsideWorld(info.header) && !in_memory) return info;
    std::unique_lock lock(wait_mu_);
    if (!wait_cv_.wait_until(
            lock,
            std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)),
            [&] { return epoch_ != epoch; }) &&
        std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          "run " + run_id.str() + " is still " + std::string(storage::Name(info.header.status)) +
          (info.waiting_on.empty() ? "" : " (" + info.waiting_on + ")"));
    }
  }
}

Status Engine::Impl::RunUntilIdle(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  CAIRN_RETURN_IF_ERROR(ResumeAll());  // includes deferred starts
  PollTimers();
  for (;;) {
    uint64_t epoch;
    {
      std::lock_guard lock(wait_mu_);
      epoch = epoch_;
    }
    bool idle;
    {
      std::lock_guard lock(actors_mu_);
      idle = actors_.empty();
    }
    if (idle) {
      CAIRN_ASSIGN_OR_RETURN(auto due, store_->DueTimers(options_.clock->NowNanos(), 1));
      if (due.empty()) return Status::Ok();
      PollTimers();
    }
    std::unique_lock lock(wait_mu_);
    wait_cv_.wait_until(
        lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(50)),
        [&] { return epoch_ != epoch; });
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded("runs are still in progress");
    }
  }
}

// ---------------------------------------------------------------------------------------
// Engine

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() {
  if (impl_) static_cast<void>(impl_->Close());
}

Result<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  if (options.clock == nullptr) return Status::InvalidArgument("EngineOptions::clock is required");
  if (options.data_dir.empty()) return Status::InvalidArgument("EngineOptions::data_dir is empty");
  auto impl = std::make_unique<Impl>(std::move(options));
  Status st = impl->Open();
  if (!st.ok()) {
    static_cast<void>(impl->Close());
    return st;
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Status Engine::Close() { return impl_->Close(); }

Status Engine::RegisterTool(ToolSpec spec, CppTool callback) {
  return impl_->catalog_.Register(std::move(spec), std::move(callback));
}
const ToolCatalog& Engine::catalog() const { return impl_->catalog_; }
ToolCatalog& Engine::mutable_catalog() { return impl_->catalog_; }

Result<WorkflowRef> Engine::ApplyDefinition(std::string_view text, std::string_view source_name) {
  return impl_->Apply(text, source_name);
}

Result<std::vector<WorkflowRef>> Engine::ListWorkflows() const {
  CAIRN_ASSIGN_OR_RETURN(std::vector<storage::WorkflowVersion> versions,
                         impl_->store_->ListWorkflowVersions());
  std::vector<WorkflowRef> out;
  for (const auto& v : versions) out.push_back({v.namespace_, v.name, v.version, v.hash});
  return out;
}

Result<StartResult> Engine::Start(StartRequest request) { return impl_->Start(std::move(request)); }

Status Engine::SendSignal(const RunId& run_id, Signal signal) {
  if (signal.type.empty()) return Status::InvalidArgument("a signal needs a type");
  CAIRN_RETURN_IF_ERROR(CheckRunData(signal.data, "the signal's data"));
  storage::EventReceived event;
  event.event_type = std::move(signal.type);
  event.source = std::move(signal.source);
  event.event_id = signal.id;
  if (event.event_id.empty()) {
    static std::atomic<uint64_t> counter{0};
    event.event_id = run_id.str() + "/" + std::to_string(impl_->options_.clock->NowNanos()) + "." +
                     std::to_string(counter.fetch_add(1));
  }
  event.payload = storage::Payload::Json(DumpJson(signal.data));
  event.actor = std::move(signal.actor);
  return impl_->Control(run_id, storage::EventBody(std::move(event)), std::move(signal.data));
}

Status Engine::Cancel(const RunId& run_id, std::string reason, storage::Actor actor) {
  storage::ControlRequested c{storage::ControlRequested::Action::kCancel, std::move(actor),
                              std::move(reason), storage::Payload::None()};
  return impl_->Control(run_id, storage::EventBody(std::move(c)), nullptr);
}

Status Engine::Kill(const RunId& run_id, std::string reason, storage::Actor actor) {
  storage::ControlRequested c{storage::ControlRequested::Action::kKill, std::move(actor),
                              std::move(reason), storage::Payload::None()};
  return impl_->Control(run_id, storage::EventBody(std::move(c)), nullptr);
}

Status Engine::ResolveApproval(const RunId& run_id, ApprovalAnswer answer) {
  return impl_->ResolveApproval(run_id, std::move(answer));
}

Result<Sha256> Engine::ApplyPolicy(std::string_view text, std::string_view source_name) {
  return impl_->ApplyPolicy(text, source_name);
}

std::shared_ptr<const policy::Policy> Engine::CurrentPolicy() const {
  return impl_->CurrentPolicy();
}

Result<std::vector<RunId>> Engine::EngageKillSwitch(KillSwitch kill) {
  return impl_->EngageKillSwitch(std::move(kill));
}

Status Engine::ReleaseKillSwitch(KillSwitch::Scope scope, const std::string& target) {
  return impl_->ReleaseKillSwitch(scope, target);
}

std::vector<KillSwitch> Engine::KillSwitches() const { return impl_->KillSwitches(); }

Status Engine::ResolveEffect(const RunId& run_id, EffectResolution resolution) {
  CAIRN_ASSIGN_OR_RETURN(storage::RunHeader header, impl_->store_->GetRun(run_id));
  if (header.status != RunStatus::kBlocked ||
      header.waiting_on.rfind("indeterminate_effect", 0) != 0) {
    return Status::FailedPrecondition("run " + run_id.str() +
                                      " is not blocked on an effect of unknown outcome");
  }
  static constexpr const char* kOutcome[] = {"ok", "failed", "abandon"};
  Json argument{{"outcome", kOutcome[static_cast<int>(resolution.outcome)]},
                {"result", resolution.result}};
  storage::ControlRequested c{storage::ControlRequested::Action::kResolveEffect,
                              std::move(resolution.actor), std::move(resolution.detail),
                              storage::Payload::Json(DumpJson(argument))};
  return impl_->Control(run_id, storage::EventBody(std::move(c)), std::move(argument));
}

Result<RunInfo> Engine::Describe(const RunId& run_id) const { return impl_->Describe(run_id); }

Result<std::vector<storage::RunSummary>> Engine::ListRuns(std::optional<storage::RunStatus> status,
                                                          const std::string& start_after,
                                                          size_t limit) const {
  return impl_->store_->ListRuns(status, start_after, limit);
}

Result<RunInfo> Engine::Wait(const RunId& run_id, std::chrono::milliseconds timeout) {
  return impl_->Wait(run_id, timeout);
}

Status Engine::RunUntilIdle(std::chrono::milliseconds timeout) {
  return impl_->RunUntilIdle(timeout);
}

void Engine::PollTimers() { impl_->PollTimers(); }

storage::Store& Engine::store() { return *impl_->store_; }

Result<ParsedWorkflowRef> ParseWorkflowRef(std::string_view text) {
  auto malformed = [&](std::string_view why) {
    return Status::InvalidArgument("workflow reference '" + std::string(text).substr(0, 200) +
                                   "' is malformed: " + std::string(why) +
                                   " (expected NAME, NAMESPACE/NAME, NAMESPACE/NAME:VERSION or "
                                   "sha256:HEX, HEX being 64 hex digits)");
  };
  ParsedWorkflowRef ref;
  if (text.rfind("sha256:", 0) == 0) {
    Result<Sha256> hash = Sha256::FromHex(text.substr(7));
    if (!hash.ok()) return malformed("not a SHA-256 digest");
    ref.hash = *hash;
    return ref;
  }
  // The DSL's name and namespace pattern ([a-z0-9] runs joined by single '-'), and a
  // version of [0-9A-Za-z.+-] (semantic versions).
  auto valid_name = [](std::string_view v) {
    if (v.empty() || v.size() > 63) return false;
    for (size_t i = 0; i < v.size(); ++i) {
      const char c = v[i];
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      if (!alnum && !(c == '-' && i > 0 && i + 1 < v.size() && v[i - 1] != '-')) return false;
    }
    return true;
  };
  auto valid_version = [](std::string_view v) {
    if (v.empty() || v.size() > 128) return false;
    for (char c : v) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '+' || c == '-';
      if (!ok) return false;
    }
    return true;
  };
  std::string_view rest = text;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    ref.namespace_ = std::string(rest.substr(0, slash));
    rest = rest.substr(slash + 1);
    if (!valid_name(ref.namespace_)) return malformed("bad namespace");
  }
  if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    ref.version = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!valid_version(ref.version)) return malformed("bad version");
  }
  ref.name = std::string(rest);
  if (!valid_name(ref.name)) return malformed("bad name");
  return ref;
}

}  // namespace cairn::engine
