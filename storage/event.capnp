@0xbeab93e271292697;
# cairn's event log format.
#
# Evolution rules (see storage/FORMAT.md):
#  - fields, union members and enum values are only ever ADDED, with the next ordinal;
#  - nothing is renumbered, retyped, renamed in meaning, or removed;
#  - a reader must accept an enum value or union member it does not know (forward
#    compatibility): the codec maps them to `unknown` rather than failing.
#
# Times are nanoseconds since the Unix epoch (Int64), taken from the injected Clock.
# Hashes are raw 32-byte SHA-256 digests. JSON values are UTF-8 JSON text, or a
# reference to a blob when larger than limits::inline_payload_bytes_max.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("cairn::storage::wire");

struct Payload {
  union {
    none @0 :Void;
    json @1 :Text;     # a JSON document, as text
    blob @2 :Data;     # SHA-256 of a blob (blobs column family) that holds the JSON text
  }
}

struct ErrorInfo {
  # The Open Workflow Specification error object (RFC 7807 problem details).
  type @0 :Text;       # e.g. https://serverlessworkflow.io/spec/1.0.0/errors/communication
  status @1 :Int32;
  title @2 :Text;
  detail @3 :Text;
  instance @4 :Text;   # JSON pointer of the task that raised it
}

struct Actor {
  # Who did something: "system", an operator's name, a token's subject.
  name @0 :Text;
  role @1 :Text;       # reader | operator | approver | admin | system
}

struct Usage {
  promptTokens @0 :UInt64;
  completionTokens @1 :UInt64;
  costMicros @2 :Int64;      # money in millionths of the configured currency unit
  costKnown @3 :Bool;        # false: the cost could not be measured (never counted as zero)
  calls @4 :UInt32;          # model or tool calls made
}

struct BudgetAmounts {
  steps @0 :UInt64;
  tokens @1 :UInt64;
  costMicros @2 :Int64;
  wallMs @3 :UInt64;
  toolCalls @4 :UInt64;
}

enum RiskLevel {
  unspecified @0;
  low @1;
  medium @2;
  high @3;
  critical @4;
}

enum RunStatus {
  unknown @0;
  running @1;     # has work to do now
  waiting @2;     # parked on a timer, an external event or an approval
  blocked @3;     # needs an operator (e.g. an indeterminate effect)
  completed @4;   # terminal
  failed @5;      # terminal: any stop reason but completed, cancelled, killed
  cancelled @6;   # terminal
  killed @7;      # terminal
}

enum StopReason {
  none @0;
  completed @1;
  faulted @2;
  maxSteps @3;
  budgetExhausted @4;
  timeout @5;
  policyDenied @6;
  approvalDenied @7;
  approvalExpired @8;
  killed @9;
  nondeterminism @10;
  indeterminateEffect @11;
  cancelled @12;
}

struct RunStarted {
  workflowNamespace @0 :Text;
  workflowName @1 :Text;
  workflowVersion @2 :Text;
  definitionHash @3 :Data;     # SHA-256 of the definition's canonical form
  input @4 :Payload;
  policyHash @5 :Data;         # the policy this run is governed by, fixed at start
  startKey @6 :Text;           # caller's idempotency key for the start (may be empty)
  startedBy @7 :Actor;
  parentRunId @8 :Text;
  budgetLimits @9 :BudgetAmounts;  # caps for this run; 0 means no cap in that dimension
  agentConfigHash @10 :Data;
  toolCatalogHash @11 :Data;
}

struct TaskRouted {
  enum Mode {
    deterministic @0;
    agentic @1;
  }
  taskName @0 :Text;
  taskKind @1 :Text;      # set | switch | call | run | try | wait | listen | for | raise | do ...
  mode @2 :Mode;
  input @3 :Payload;
  attempt @4 :UInt32;     # 0 for the first try, then retries
}

struct AgentDecided {
  agent @0 :Text;          # the configured agent's name
  model @1 :Text;
  reasonCode @2 :Text;     # "decided", or why the decision was refused (fail-closed)
  option @3 :Text;         # the chosen option; empty unless reasonCode is "decided"
  rationale @4 :Text;
  hasConfidence @5 :Bool;
  confidence @6 :Float64;
  stepsUsed @7 :UInt32;
  usage @8 :Usage;
  options @9 :List(Text);  # the allowlist offered
  requestBlob @10 :Data;   # SHA-256 of the full request (prompt) in blobs
  responseBlob @11 :Data;  # SHA-256 of the raw response(s) in blobs
  durationMs @12 :UInt64;
  detail @13 :Text;
  goal @14 :Text;
  decisionKey @15 :Text;   # RUN_ID#N: which decision this is (the task waiting for it)
}

struct PolicyVerdict {
  enum Decision {
    allow @0;
    requireApproval @1;
    deny @2;
  }
  enum Stage {
    beforeCall @0;     # first evaluation
    beforeCommit @1;   # re-check after an approval, just before the write
  }
  policyHash @0 :Data;
  ruleId @1 :Text;
  decision @2 :Decision;
  reasonCode @3 :Text;
  tool @4 :Text;
  risk @5 :RiskLevel;
  argumentsHash @6 :Data;
  stage @7 :Stage;
  detail @8 :Text;
}

enum ApprovalResolution {
  approved @0;
  rejected @1;
  expired @2;
}

struct ApprovalRequested {
  approvalId @0 :Text;
  tool @1 :Text;
  bindingHash @2 :Data;    # SHA-256 over tool + canonical arguments: what is approved
  arguments @3 :Payload;
  expiresAtNs @4 :Int64;
  onExpiry @5 :ApprovalResolution;
  ruleId @6 :Text;
  reason @7 :Text;
  approvers @8 :List(Text); # who may answer; empty: anyone with the approver role
}

struct ApprovalResolved {
  approvalId @0 :Text;
  resolution @1 :ApprovalResolution;
  actor @2 :Actor;
  reason @3 :Text;
  bindingHash @4 :Data;
}

enum EffectKind {
  read @0;
  write @1;
}

struct EffectIntent {
  idempotencyKey @0 :Text;
  tool @1 :Text;
  effect @2 :EffectKind;
  risk @3 :RiskLevel;
  arguments @4 :Payload;
  attempt @5 :UInt32;
  executor @6 :Text;       # cpp | command | http | mcp
  idempotent @7 :Bool;     # the tool honours the key: safe to retry after a crash
}

struct EffectOutcome {
  enum Status {
    ok @0;
    failed @1;           # the tool answered with an error
    indeterminate @2;    # no answer: it may or may not have happened
    timedOut @3;
  }
  idempotencyKey @0 :Text;
  status @1 :Status;
  result @2 :Payload;
  error @3 :ErrorInfo;
  durationMs @4 :UInt64;
  attempt @5 :UInt32;
  resolvedBy @6 :Actor;    # set when an operator settled an indeterminate effect
}

enum TimerPurpose {
  wait @0;
  retryBackoff @1;
  taskTimeout @2;
  workflowTimeout @3;
  approvalExpiry @4;
  listenTimeout @5;
  budgetWallClock @6;  # the run's wall-clock budget runs out
}

struct TimerScheduled {
  timerId @0 :Text;
  dueAtNs @1 :Int64;
  purpose @2 :TimerPurpose;
}

struct TimerFired {
  timerId @0 :Text;
  dueAtNs @1 :Int64;       # the due time it was scheduled for (locates its index key)
  purpose @2 :TimerPurpose;
}

struct TimerCancelled {
  timerId @0 :Text;
  dueAtNs @1 :Int64;
}

struct EventReceived {
  eventType @0 :Text;
  source @1 :Text;
  eventId @2 :Text;        # sender's id, for dedupe
  payload @3 :Payload;
  actor @4 :Actor;
}

struct TaskCompleted {
  enum Status {
    completed @0;
    faulted @1;
    skipped @2;            # `if` was false
  }
  taskName @0 :Text;
  status @1 :Status;
  output @2 :Payload;
  error @3 :ErrorInfo;
  then @4 :Text;           # the flow directive taken: continue | exit | end | a task name
  attempt @5 :UInt32;
}

struct BudgetCharged {
  enum Phase {
    reserve @0;            # before an agent or tool call
    settle @1;             # after: the actual amounts
    release @2;            # a reservation given back unused
  }
  phase @0 :Phase;
  reservationId @1 :Text;
  amounts @2 :BudgetAmounts;
  costKnown @3 :Bool;
  spentAfter @4 :BudgetAmounts;     # the ledger after this charge
  reservedAfter @5 :BudgetAmounts;
  purpose @6 :Text;
}

struct RunStopped {
  reason @0 :StopReason;
  output @1 :Payload;
  error @2 :ErrorInfo;
  detail @3 :Text;
  actor @4 :Actor;         # who stopped it, for cancel and kill
}

struct ControlRequested {
  enum Action {
    cancel @0;
    kill @1;
    resume @2;
    resolveEffect @3;
    signal @4;
  }
  action @0 :Action;
  actor @1 :Actor;
  reason @2 :Text;
  argument @3 :Payload;
}

struct ValueRecorded {
  # A nondeterministic value the workflow observed (the time, a random id), recorded so
  # replay reads it back instead of asking the world again.
  name @0 :Text;
  value @1 :Payload;
}

struct Event {
  runId @0 :Text;
  seq @1 :UInt64;
  timeNs @2 :Int64;
  prevHash @3 :Data;       # hash of the previous event of this run; 32 zero bytes for seq 0
  taskPath @4 :Text;       # JSON pointer of the task, e.g. /do/2/choosePlan; empty for run-level
  body :union {
    runStarted @5 :RunStarted;
    taskRouted @6 :TaskRouted;
    agentDecided @7 :AgentDecided;
    policyVerdict @8 :PolicyVerdict;
    approvalRequested @9 :ApprovalRequested;
    approvalResolved @10 :ApprovalResolved;
    effectIntent @11 :EffectIntent;
    effectOutcome @12 :EffectOutcome;
    timerScheduled @13 :TimerScheduled;
    timerFired @14 :TimerFired;
    timerCancelled @15 :TimerCancelled;
    eventReceived @16 :EventReceived;
    taskCompleted @17 :TaskCompleted;
    budgetCharged @18 :BudgetCharged;
    runStopped @19 :RunStopped;
    controlRequested @20 :ControlRequested;
    valueRecorded @21 :ValueRecorded;
  }
}

struct TimerRef {
  # A timer a run has scheduled and that has neither fired nor been cancelled.
  timerId @0 :Text;
  dueAtNs @1 :Int64;
  purpose @2 :TimerPurpose;
}

struct RunHeader {
  # One per run in the `runs` family, rewritten by every transition.
  runId @0 :Text;
  status @1 :RunStatus;
  stopReason @2 :StopReason;
  workflowNamespace @3 :Text;
  workflowName @4 :Text;
  workflowVersion @5 :Text;
  definitionHash @6 :Data;
  policyHash @7 :Data;
  createdAtNs @8 :Int64;
  updatedAtNs @9 :Int64;
  nextSeq @10 :UInt64;        # number of events in the run
  chainHead @11 :Data;        # hash of the last event; 32 zero bytes when there is none
  startKey @12 :Text;
  parentRunId @13 :Text;
  budgetLimits @14 :BudgetAmounts;
  budgetSpent @15 :BudgetAmounts;
  budgetReserved @16 :BudgetAmounts;
  waitingOn @17 :Text;        # what a waiting/blocked run waits for (timer id, event, approval)
  engineState @18 :Data;      # the engine's snapshot: resume without folding the history
  timers @19 :List(TimerRef); # outstanding timers, kept by the store (removed when a run stops)
}
