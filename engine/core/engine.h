// The engine: durable runs of OWS workflows on a local data directory.
//
// An Engine owns one data directory (exclusively: a second process gets a clear
// kFailedPrecondition naming the holder), an Asio thread pool, the tool executors and the
// interpreter. Every transition of a run is one atomic, durable write of events to the
// store; a side effect starts only after its intent is durable. On Open the engine resumes
// every non-terminal run from its header; runs parked on a timer, an event or an operator
// hold no thread and no memory beyond their store records.
//
// Thread-safety: every public method is thread-safe and may be called from any thread
// except from inside a C++ tool callback of the same engine (Wait/RunUntilIdle there would
// deadlock). Lifecycle: Open -> calls -> Close (or destruction, which closes).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/status.h"
#include "engine/definition/definition.h"
#include "engine/tools/catalog.h"
#include "policy/policy.h"
#include "storage/event.h"
#include "storage/store.h"

namespace cairn::engine {

// A transition once it is durable (EngineOptions::on_transition).
struct TransitionRecord {
  RunId run_id;
  std::string workflow;  // "namespace/name"
  // The events as recorded (seq, time, task path, body; no hashes).
  std::vector<storage::Event> events;
  storage::RunStatus status = storage::RunStatus::kUnknown;  // the run's after it
  // Clock::MonotonicNanos: from the step's start to the acknowledged write, and the write
  // alone (submitted to durable, group commit included).
  int64_t step_ns = 0;
  int64_t write_ns = 0;
};

struct EngineOptions {
  std::string data_dir;
  storage::Durability durability = storage::Durability::kSync;
  // Required; not owned; must outlive the engine. Event times and timers follow it.
  const Clock* clock = nullptr;
  // Worker threads for the interpreter and async I/O (0: hardware concurrency, min 2).
  unsigned threads = 0;
  // Runs held in memory at once (running, or with inputs or calls in flight); parked runs
  // are not held. Start beyond this answers kResourceExhausted (back off and retry).
  size_t max_queued_runs = 100'000;
  // The tools runs may call, registered before any run resumes (Open resumes runs at
  // once, and a resumed run calling an unregistered tool would fault). More can be
  // registered later with RegisterTool.
  ToolCatalog tools;
  // Resume every non-terminal run on Open (false: only on RunUntilIdle / as touched).
  bool resume_on_open = true;
  // Longest time the timer service sleeps before re-reading due timers from the store.
  std::chrono::milliseconds timer_poll{1000};
  // HTTPS: trust this PEM (tests) in addition to the system store; verify peers.
  std::string extra_ca_pem;
  bool verify_tls_peers = true;
  // HTTP calls to "host:port" connect to "address:port" instead (like curl --resolve);
  // the request still names the original host. For tests serving external URIs locally.
  std::map<std::string, std::string> http_connect_overrides;
  // Test seam: the filesystem under RocksDB (fault injection). Null: the real one.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  std::string owner_description = "cairn engine";
  // The policy new runs are governed by. Null: the one applied with ApplyPolicy (kept in
  // the store), else policy::Policy::Default() (reads allowed, writes denied).
  std::shared_ptr<const policy::Policy> policy;
  // The agents `call: agent` tasks consult. Null: none (such tasks fault, unknown_agent).
  std::shared_ptr<agent::AgentRegistry> agents;
  // Decisions in progress at once (each holds a thread while it waits on its agent);
  // more wait in a queue.
  unsigned agent_threads = 8;
  // Told of every transition once it is durable, each run's in order (the service's
  // metrics and live event streams). Runs on an engine thread: must be quick, must not
  // block, and must not call the engine. Null: nothing is told.
  std::function<void(const TransitionRecord&)> on_transition;
};

// An operator's answer to a run's pending approval.
struct ApprovalAnswer {
  bool approve = false;
  std::string approval_id;  // empty: whichever approval the run waits on
  std::string reason;
  storage::Actor actor;
};

// A pending approval, as Describe shows it.
struct PendingApproval {
  std::string approval_id;
  std::string tool;
  Json arguments;
  int64_t expires_at_ns = 0;
  std::vector<std::string> approvers;  // empty: anyone with the approver role
  std::string rule_id;
  std::string task_path;
};

// A kill switch: engaged durably, it stops every run it covers at its next transition
// and no write of such a run starts after Engage returns; new runs it covers are refused.
struct KillSwitch {
  enum class Scope : uint8_t { kAll = 0, kWorkflow, kRun };
  Scope scope = Scope::kAll;
  std::string target;  // kWorkflow: "namespace/name"; kRun: a run id; kAll: empty
  std::string reason;
  storage::Actor actor;
  int64_t engaged_at_ns = 0;
};

// The kill switches engaged in `store` (what an engine on it enforces), for readers
// beside a running engine. kDataLoss for a setting that is not a kill switch.
Result<std::vector<KillSwitch>> ReadKillSwitches(const storage::Store& store);
// "the kill switch of workflow ns/name (engaged by ops): incident 7".
std::string DescribeKillSwitch(const KillSwitch& kill);

struct WorkflowRef {
  std::string namespace_;
  std::string name;
  std::string version;
  Sha256 hash;
};

struct StartRequest {
  // "name", "namespace/name", "namespace/name:version" or "sha256:<hex>". The newest
  // applied version when no version is given.
  std::string workflow;
  Json input = Json::object();
  // Caller-given run id: starting twice with the same id returns the same run
  // (created = false) instead of making a second one.
  std::optional<RunId> run_id;
  storage::Actor started_by;
  // Record the start only: no task runs in this engine until the run is resumed (by the
  // next Engine::Open, or RunUntilIdle here). For a short-lived process (`cairn run start`
  // without --wait) that must not begin side effects it will not see through.
  bool defer = false;
};

struct StartResult {
  RunId run_id;
  bool created = true;
};

// A run as Describe shows it.
struct RunInfo {
  storage::RunHeader header;
  WorkflowRef workflow;
  Json input;                  // the run's input
  std::optional<Json> output;  // set once completed
  storage::ErrorInfo error;    // set when faulted
  std::string
      waiting_on;  // parked: "timer w3 at ...", "event type=...", "indeterminate_effect KEY"
  std::optional<PendingApproval> approval;  // set while the run waits on an approval
};

// A CloudEvent-shaped external event for `listen` tasks.
struct Signal {
  std::string type;  // required
  std::string source = "cairn";
  std::string id;  // empty: generated
  Json data;       // the event's data
  storage::Actor actor;
};

// An operator's resolution of an effect whose outcome is unknown (indeterminate_effect).
struct EffectResolution {
  enum class Outcome : uint8_t { kOk = 0, kFailed, kAbandon };
  Outcome outcome = Outcome::kFailed;
  Json result;         // kOk: the effect's result as the task will see it
  std::string detail;  // kFailed / kAbandon: why
  storage::Actor actor;
};

class Engine {
 public:
  // Opens the data directory (creating it), starts the thread pool and resumes runs.
  // Errors: those of storage::Store::Open; kInvalidArgument for bad options.
  static Result<std::unique_ptr<Engine>> Open(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Stops taking work, lets in-flight transitions commit, stops executors (in-flight tool
  // calls are abandoned; their runs resume on the next Open), closes the store. Idempotent.
  Status Close();

  // ---- tools and definitions ----

  // Registers a tool (C++ callback or executor-backed spec). kAlreadyExists for a
  // duplicate name. Register tools before starting runs that use them.
  Status RegisterTool(ToolSpec spec, CppTool callback = nullptr);
  const ToolCatalog& catalog() const;
  // For loading a catalog file before runs start (ToolCatalog::LoadFile).
  ToolCatalog& mutable_catalog();

  // Loads and validates a definition, stores it by hash and makes it the newest version of
  // its namespace/name. Idempotent. kInvalidArgument with LoadDefinition's message.
  Result<WorkflowRef> ApplyDefinition(std::string_view text, std::string_view source_name);
  // Every applied workflow version, by namespace/name/version.
  Result<std::vector<WorkflowRef>> ListWorkflows() const;

  // ---- runs ----

  // Validates the input against the workflow's input schema, records run_started durably,
  // and queues the run. kNotFound (unknown workflow), kInvalidArgument (bad input, names
  // the schema violation), kAlreadyExists (the id exists for another workflow),
  // kResourceExhausted (queue full: retry later).
  Result<StartResult> Start(StartRequest request);
  // Delivers an event to a run (buffered if the run is not listening yet). kNotFound,
  // kFailedPrecondition (the run has stopped), kResourceExhausted (inbox full).
  Status SendSignal(const RunId& run_id, Signal signal);
  // Cancel: the run stops as `cancelled`. Kill: stops as `killed`. Both are durable on
  // return; in-flight tool calls are abandoned. kFailedPrecondition if already stopped.
  Status Cancel(const RunId& run_id, std::string reason, storage::Actor actor);
  Status Kill(const RunId& run_id, std::string reason, storage::Actor actor);
  // Resolves an indeterminate effect of a blocked run. kFailedPrecondition if the run is
  // not blocked on one.
  Status ResolveEffect(const RunId& run_id, EffectResolution resolution);

  // Answers a run's pending approval, once: kFailedPrecondition when the run does not
  // wait on that approval (already answered, expired, or none), kPermissionDenied when the
  // approval names its approvers and `answer.actor` is not one of them. Durable on return.
  Status ResolveApproval(const RunId& run_id, ApprovalAnswer answer);

  // ---- policy and kill switches ----

  // Checks and stores a policy and makes it the one new runs get (runs already started
  // keep theirs). kInvalidArgument with Policy::Load's message. Returns its hash.
  Result<Sha256> ApplyPolicy(std::string_view text, std::string_view source_name);
  std::shared_ptr<const policy::Policy> CurrentPolicy() const;
  // Engages a kill switch durably, then stops the runs it covers; returns them (the runs
  // that had not stopped when it was engaged, in id order; they stop at once, Wait for
  // them). kInvalidArgument for a bad target.
  Result<std::vector<RunId>> EngageKillSwitch(KillSwitch kill);
  // Releases an engaged switch; kNotFound if it was not engaged.
  Status ReleaseKillSwitch(KillSwitch::Scope scope, const std::string& target);
  std::vector<KillSwitch> KillSwitches() const;

  Result<RunInfo> Describe(const RunId& run_id) const;
  Result<std::vector<storage::RunSummary>> ListRuns(std::optional<storage::RunStatus> status,
                                                    const std::string& start_after,
                                                    size_t limit) const;

  // Waits until the run is terminal, or parked on something only the outside world can
  // deliver (an event, an operator), or `timeout` passes (kDeadlineExceeded). Runs parked on
  // a timer are waited for.
  Result<RunInfo> Wait(const RunId& run_id, std::chrono::milliseconds timeout);
  // Resumes every running run (including deferred starts) and drives them and due timers
  // until none is runnable right now or `timeout` passes (kDeadlineExceeded). Runs parked
  // on future timers stay parked.
  Status RunUntilIdle(std::chrono::milliseconds timeout);

  // Re-reads due timers at once (tests with a ManualClock call it after advancing time).
  void PollTimers();

  storage::Store& store();

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses a StartRequest::workflow reference. kInvalidArgument on malformed text.
struct ParsedWorkflowRef {
  std::string namespace_;  // empty: any
  std::string name;
  std::string version;  // empty: newest
  std::optional<Sha256> hash;
};
Result<ParsedWorkflowRef> ParseWorkflowRef(std::string_view text);

}  // namespace cairn::engine
