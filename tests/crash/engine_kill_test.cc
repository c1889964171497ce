// Crash test of the engine: engine_kill_child (tests/crash/engine_kill_child.cc) runs two
// workflows on a data directory -- the order workflow (order_workflow.h) and the governed
// workflow (governed_workflow.h: an agent decision, then a commit that needs an approval
// above a threshold, under a policy with budgets) -- its write tools POSTing to, and its
// agent asking, an external sink (effect_sink.h) that lives here, in the test, and
// survives every kill.
// The test SIGKILLs the child at random moments many times -- while it opens and resumes
// runs, while it starts runs, while calls are in flight or their outcomes are being
// committed, (from the sink) the moment an effect has been applied but not answered or
// while the agent is deciding, while approvals are pending (some children leave them
// unanswered), and (the child itself) right after an approval is acknowledged, before its
// write, or right after a kill switch is acknowledged -- and restarts it on the same
// directory each time; each new child resumes the runs the last one left and starts a few
// of its own. Some children first engage the kill switch of a few governed runs that have
// not written yet. A final child then runs to idle without being killed, answering every
// approval, and the test checks:
//   - no acknowledged start was lost: every run whose Start returned ok exists (also
//     checked after every kill);
//   - every order run reached a terminal state, `completed` (nothing in the workflow can
//     fail); every governed run ended `completed`, or `failed` (approval_denied) after a
//     rejected approval, or `killed` when a kill switch covers it; every history has
//     exactly one run_stopped, the last event;
//   - every effect of an idempotent tool was applied exactly once: each effect_intent's
//     key reached the sink, which applied it once (or declined it, for a charge the sink
//     declines every time), with the intent's arguments; re-deliveries of a key are allowed
//     (they are what the key is for); each intent has exactly one outcome, matching what
//     the sink answered;
//   - the sink holds no key that no run's history asked for;
//   - each order run did what the workflow says (reserve, one ship per item, charges until
//     one is accepted or the retries run out, then the fallback), so a resumed run did not
//     skip or repeat a step;
//   - decisions are never asked again once recorded: each decision key has at most one
//     agent_decided, whose rationale names the sink's ask it came from; no ask of that key
//     came from the child that recorded it (other than that ask) or from a later child;
//     the run then acts on the recorded option (governed_checks.h);
//   - approvals: at most one asked per run, exactly when the policy says, for exactly the
//     commit's arguments; every acknowledged answer is in the history and is never pending
//     again (also checked after every kill); the commit comes after its approval, and a
//     rejected one stops the run without it;
//   - budgets never go back: the spent figures of successive budget_charged events and of
//     each run's header never decrease, across the history and across kills (checked after
//     every kill), and they add up to the recorded decisions' usage and the calls started;
//     nothing stays reserved once a run has stopped;
//   - kill switches: every acknowledged switch is durable (also after every kill); every run
//     a switch covers ended `killed`, none of its writes ever reached the sink, and no
//     child asked its decisions once the switch was engaged (a child engages switches
//     before it resumes any run, and only on runs that have recorded no effect intent, so
//     any write of theirs would have started after the switch was acknowledged);
//   - the store's invariants hold and every hash chain verifies (AuditStore, VerifyAll).
//
// Seeded (printed; CAIRN_TEST_SEED=<n> re-runs it): the seed picks each child's runs, the
// kill moments, what the children do (answer approvals, engage switches) and the sink's
// delays, declines and answers. CAIRN_KILL_ITERATIONS=<n> sets the number of kills (default
// 20). On failure the tail of the relevant child's log (stderr) is shown; CAIRN_KEEP_TEMP=1
// keeps the data directory and every child's log.
//
// No sleeps: the test waits on the child's stdout with poll(2), until the random kill time
// or until the sink or the child itself kills the child.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/random.h"
#include "base/status.h"
#include "storage/event.h"
#include "storage/store.h"
#include "tests/crash/effect_sink.h"
#include "tests/crash/governed_checks.h"
#include "tests/crash/governed_workflow.h"
#include "tests/crash/order_workflow.h"
#include "tests/crash/run_facts.h"
#include "tests/replay/expect_replays.h"
#include "tests/support/seed.h"
#include "tests/support/spawned_child.h"
#include "tests/support/store_audit.h"
#include "tests/support/temp_dir.h"

#ifndef CAIRN_ENGINE_KILL_CHILD
#error "CAIRN_ENGINE_KILL_CHILD must name the engine_kill_child binary (tests/crash/CMakeLists.txt)"
#endif

namespace cairn::crash {

using testing::DescribeWaitStatus;
using testing::FileTail;
using testing::SpawnedChild;
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using storage::RunStatus;

constexpr int kDefaultIterations = 20;
constexpr milliseconds kChildOpenTimeout{60'000};  // "open"; generous for sanitizers
constexpr milliseconds kChildExitTimeout{60'000};  // EOF after SIGKILL
constexpr milliseconds kFinalTimeout{240'000};     // the final child's whole run
// How each kill is timed (KillPlan), out of kPlanRolls: kEarlyRolls come 0..kEarlyKillMsMax
// after the spawn, while the engine opens and resumes runs; kOnRequestRolls from the sink,
// while it handles the 1st..kOnRequestMax-th request of the child (an effect applied, its
// answer not yet sent); kOnAskRolls from the sink while it handles the 1st..kOnAskMax-th
// agent ask (the agent is deciding); kAfterApprovalRolls from the child itself, right after
// its 1st..kAfterApprovalMax-th approval is acknowledged; the others 0..kKillDelayMsMax
// after the child said "open". From halfway through, while no kill has landed during an
// agent decision yet, the sink kills the child on its first ask.
constexpr uint64_t kPlanRolls = 14;
constexpr uint64_t kEarlyRolls = 2;
constexpr uint64_t kOnRequestRolls = 3;
constexpr uint64_t kOnAskRolls = 3;
constexpr uint64_t kAfterApprovalRolls = 2;
constexpr int64_t kEarlyKillMsMax = 150;
constexpr int64_t kKillDelayMsMax = 1000;
constexpr int64_t kOnRequestMax = 12;
constexpr int64_t kOnAskMax = 2;
constexpr int64_t kAfterApprovalMax = 2;
// A kill planned on a request (or an approval) that never comes (the child went idle
// first) lands this late at the latest.
constexpr milliseconds kOnRequestFallback{20'000};
constexpr int64_t kNewRunsMin = 3;
constexpr int64_t kNewRunsMax = 10;
constexpr int64_t kGovernedRunsMin = 1;
constexpr int64_t kGovernedRunsMax = 3;
constexpr int64_t kFinalNewRuns = 2;
constexpr int64_t kFinalGovernedRuns = 1;
// A child that may be killed leaves the approvals it finds pending one time in this many
// (unless its kill is planned right after an approval); the final child answers them all.
constexpr uint64_t kLeaveApprovalsOneIn = 3;
// One child in this many, and the one halfway through (the final one never), first
// engages the kill switches of 1..kKillSwitchesMax governed runs; one such child in
// kDieAfterKillSwitchOneIn kills itself right after the first switch is acknowledged,
// before the runs it covers are (most likely) stopped.
constexpr uint64_t kKillSwitchOneIn = 5;
constexpr int64_t kKillSwitchesMax = 2;
constexpr uint64_t kDieAfterKillSwitchOneIn = 2;
constexpr size_t kLogTailLines = 40;
// With this many kills, some must have interrupted calls (the sink delays half of its
// answers) and left runs to resume; fewer kills may all land elsewhere.
constexpr int kIterationsForCoverage = 10;

int Iterations() {
  const char* env = std::getenv("CAIRN_KILL_ITERATIONS");
  if (env == nullptr || env[0] == '\0') return kDefaultIterations;
  int n = 0;
  auto [end, ec] = std::from_chars(env, env + std::strlen(env), n);
  if (ec != std::errc() || *end != '\0' || n <= 0) {
    ADD_FAILURE() << "CAIRN_KILL_ITERATIONS='" << env << "' is not a positive number";
    return kDefaultIterations;
  }
  return n;
}

milliseconds Remaining(SteadyClock::time_point deadline) {
  return std::max(milliseconds(0),
                  std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()));
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

Result<std::unique_ptr<storage::Store>> OpenReadOnly(const std::string& dir,
                                                     const cairn::Clock& clock) {
  storage::StoreOptions options;
  options.clock = &clock;
  options.read_only = true;
  options.owner_description = "engine_kill_test";
  options.block_cache_bytes = 8 << 20;
  return storage::Store::Open(dir, std::move(options));
}

// What the children said, over all iterations.
struct ChildReports {
  std::set<RunId> acked;  // "started ID": Engine::Start returned ok
  std::vector<std::string> stuck;
  bool ever_opened = false;  // some child said "open": the store has been created
  // "killswitch ID": EngageKillSwitch returned ok; run -> the index of the first child that
  // said so (a later child may engage the same switch again).
  std::map<RunId, int> kill_switches;
  // "approved ID A" / "rejected ID A": ResolveApproval returned ok; "ID A" -> approved.
  std::map<std::string, bool> answers;
};

struct Summary {
  int kills = 0;
  int early_kills = 0;              // while the engine was opening (or before "open")
  int kills_by_sink = 0;            // while the sink handled a request
  int kills_on_ask = 0;             // ... an agent ask: while the agent was deciding
  int kills_after_approval = 0;     // by the child, right after an acknowledged approval
  int kills_after_kill_switch = 0;  // ... right after an acknowledged kill switch
  int kills_approval_pending = 0;   // the child had left an approval it saw unanswered
  int kills_after_idle = 0;         // the child had nothing left to do
  uint64_t runs_resumed = 0;        // over the kills: runs left active for the next child
  size_t runs = 0;
  uint64_t effects = 0;
  uint64_t effects_redelivered = 0;  // keys the sink received more than once
  GovernedSummary governed;
};

// Folds the output lines of child number `child` into `reports`. A malformed line, or an
// approval pending or answered again after an answer was acknowledged, is a test failure.
// Returns how many approvals the child saw pending and left unanswered.
int ReadReports(const std::vector<std::string>& lines, int child, ChildReports* reports,
                bool* saw_idle) {
  std::set<std::string> left;  // this child's "awaiting" lines it did not answer
  // "ID A" after the line's first word, or nullopt (and a failure).
  auto approval_of = [](const std::string& line) -> std::optional<std::string> {
    const std::string what = line.substr(line.find(' ') + 1);
    const size_t space = what.find(' ');
    if (space == std::string::npos || space + 1 == what.size() ||
        !RunId::Parse(what.substr(0, space)).ok()) {
      ADD_FAILURE() << "malformed line from the child: '" << line << "'";
      return std::nullopt;
    }
    return what;
  };
  for (const std::string& line : lines) {
    if (line == "open") {
      reports->ever_opened = true;
    } else if (line == "idle") {
      *saw_idle = true;
    } else if (StartsWith(line, "started ")) {
      auto id = RunId::Parse(std::string_view(line).substr(8));
      EXPECT_TRUE(id.ok()) << "malformed line from the child: '" << line << "'";
      if (id.ok()) reports->acked.insert(*id);
    } else if (StartsWith(line, "killswitch ")) {
      auto id = RunId::Parse(std::string_view(line).substr(11));
      EXPECT_TRUE(id.ok()) << "malformed line from the child: '" << line << "'";
      if (id.ok()) reports->kill_switches.emplace(*id, child);  // the first acknowledgement
    } else if (StartsWith(line, "awaiting ")) {
      auto what = approval_of(line);
      if (!what) continue;
      EXPECT_EQ(reports->answers.count(*what), 0u)
          << "run " << *what << ": the approval is pending again, after an answer to it was "
          << "acknowledged";
      left.insert(*what);
    } else if (StartsWith(line, "approved ") || StartsWith(line, "rejected ")) {
      auto what = approval_of(line);
      if (!what) continue;
      EXPECT_TRUE(reports->answers.emplace(*what, line[0] == 'a').second)
          << "run " << *what << ": the approval was answered twice";
      left.erase(*what);
    } else if (StartsWith(line, "stuck ")) {
      reports->stuck.push_back(line.substr(6));
    } else {
      ADD_FAILURE() << "unexpected line from the child: '" << line << "'";
    }
  }
  return static_cast<int>(left.size());
}

// After a kill, the governance half: every acknowledged kill switch and approval answer is
// durable, and no run's spent budget went back since the last kill (`spent` holds what was
// seen then).
void CheckGovernanceAfterKill(const storage::Store& store, const ChildReports& reports,
                              std::map<RunId, storage::BudgetAmounts>* spent) {
  auto switches = store.ListSettings("kill/");
  ASSERT_TRUE(switches.ok()) << switches.status().ToString();
  std::set<std::string> engaged;
  for (const auto& [key, value] : *switches) engaged.insert(key);
  for (const auto& [id, child] : reports.kill_switches) {
    EXPECT_EQ(engaged.count("kill/run/" + id.str()), 1u)
        << "the kill switch of run " << id.str() << " was acknowledged by child #" << child
        << " but is not in the store";
  }
  for (const auto& [what, approved] : reports.answers) {
    const std::string run = what.substr(0, what.find(' '));
    const std::string approval = what.substr(what.find(' ') + 1);
    auto facts = ReadFacts(store, RunId::FromTrusted(run));
    ASSERT_TRUE(facts.ok()) << facts.status().ToString();
    EXPECT_TRUE(std::any_of(facts->approvals_resolved.begin(), facts->approvals_resolved.end(),
                            [&](const RecordedApproval& a) { return a.approval_id == approval; }))
        << "run " << run << ": the answer to approval " << approval << " was acknowledged but "
        << "is not in the history";
  }
  std::string after;
  for (;;) {
    auto page = store.ListRuns(std::nullopt, after, limits::list_runs_max);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const storage::RunSummary& run : *page) {
      auto header = store.GetRun(run.run_id);
      ASSERT_TRUE(header.ok()) << header.status().ToString();
      auto [it, first] = spent->try_emplace(run.run_id, header->budget_spent);
      if (first) continue;
      const std::string down = BudgetDecrease(it->second, header->budget_spent);
      EXPECT_EQ(down, "") << "run " << run.run_id.str() << ": the spent " << down
                          << " budget went back across a kill";
      it->second = header->budget_spent;
    }
    if (page->size() < limits::list_runs_max) break;
    after = page->back().run_id.str();
  }
}

// After a kill: every acknowledged start is in the store and the chains verify, and
// CheckGovernanceAfterKill. Returns the number of runs left active (the next child resumes
// them).
uint64_t CheckAfterKill(const std::string& dir, const ChildReports& reports,
                        std::map<RunId, storage::BudgetAmounts>* spent) {
  SystemClock clock;
  auto store = OpenReadOnly(dir, clock);
  // No engine has opened yet: every child so far was killed before Store::Open finished
  // creating the store, which a read-only open then does not find (kNotFound) or calls
  // unfinished (kDataLoss: a column family or the format stamp is missing). The next writer
  // completes it; nothing can have been acknowledged.
  if (!store.ok() && !reports.ever_opened &&
      (store.status().code() == StatusCode::kNotFound ||
       store.status().code() == StatusCode::kDataLoss)) {
    EXPECT_TRUE(reports.acked.empty());
    return 0;
  }
  EXPECT_TRUE(store.ok()) << "read-only open after SIGKILL: " << store.status().ToString();
  if (!store.ok()) return 0;
  for (const RunId& id : reports.acked) {
    auto header = (*store)->GetRun(id);
    EXPECT_TRUE(header.ok()) << "run " << id.str() << " was acknowledged by Start but is "
                             << "not in the store: " << header.status().ToString();
  }
  auto failed = (*store)->VerifyAll([](const storage::VerifyReport& r) {
    EXPECT_TRUE(r.ok) << "run " << r.run_id.str() << ": chain broken at "
                      << r.first_bad_seq.value_or(0) << ": " << r.problem;
  });
  EXPECT_TRUE(failed.ok() && *failed == 0) << failed.status().ToString();
  CheckGovernanceAfterKill(**store, reports, spent);
  uint64_t active = 0;
  auto page = (*store)->ListActiveRuns("", limits::list_runs_max);
  if (page.ok()) active = page->size();
  EXPECT_TRUE((*store)->Close().ok());
  return active;
}

// ---- the final check ---------------------------------------------------------------------

std::string ToolList(const std::vector<Intent>& intents) {
  std::string out;
  for (const Intent& i : intents) out += (out.empty() ? "" : ", ") + i.tool + " " + i.key;
  return out.empty() ? "(none)" : out;
}

// The calls the workflow makes, given the run's input and what the sink declined: checks
// the tool sequence and each call's arguments.
void CheckRunShape(const RunId& id, const RunFacts& facts, const EffectSink& sink) {
  SCOPED_TRACE("run " + id.str() + ": calls " + ToolList(facts.intents));
  const Json items = facts.input.is_object() ? facts.input.value("items", Json()) : Json();
  ASSERT_TRUE(items.is_array()) << "input " << DumpJson(facts.input);
  const Json order{{"order", id.str()}};
  std::vector<std::pair<std::string, Json>> expected;  // tool, arguments
  expected.emplace_back(kReserveTool, order);
  for (size_t k = 0; k < items.size(); ++k) {
    expected.emplace_back(
        kShipTool, Json{{"order", id.str()}, {"item", items[k]}, {"index", static_cast<int>(k)}});
  }
  size_t next = expected.size();
  // Charges follow in order; each declined one is retried until the limit.
  int charges = 0;
  bool accepted = false;
  while (next < facts.intents.size() && facts.intents[next].tool == kChargeTool &&
         charges < kChargeAttemptsMax && !accepted) {
    accepted = !sink.Declines(facts.intents[next].key);
    expected.emplace_back(kChargeTool, order);
    ++charges;
    ++next;
  }
  EXPECT_TRUE(accepted || charges == kChargeAttemptsMax)
      << charges << " charge(s), all declined, but the workflow retries up to "
      << kChargeAttemptsMax << " times";
  if (!accepted) {
    expected.emplace_back(kNotifyTool, Json{{"order", id.str()}, {"reason", "declined"}});
  }
  ASSERT_EQ(facts.intents.size(), expected.size()) << "the workflow makes other calls";
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(facts.intents[i].tool, expected[i].first) << "call " << i;
    EXPECT_EQ(facts.intents[i].arguments, expected[i].second)
        << "call " << i << " (" << facts.intents[i].key << ")";
  }
}

// Each intent of the run: idempotent http call, one outcome, applied exactly once by the
// sink (or declined every time it was delivered), with the intent's arguments.
void CheckRunEffects(const RunId& id, const RunFacts& facts,
                     const std::map<std::string, SinkKey>& sink_keys, const EffectSink& sink,
                     std::set<std::string>* claimed) {
  using S = storage::EffectOutcome::Status;
  for (const Intent& intent : facts.intents) {
    SCOPED_TRACE("run " + id.str() + ", effect " + intent.key + " (" + intent.tool + ")");
    EXPECT_TRUE(claimed->insert(intent.key).second) << "two intents with one key";
    EXPECT_TRUE(intent.idempotent && intent.executor == "http")
        << "the intent says idempotent=" << intent.idempotent << ", executor '" << intent.executor
        << "'";
    const bool declined = intent.tool == kChargeTool && sink.Declines(intent.key);
    auto outcomes = facts.outcomes.find(intent.key);
    const size_t outcome_count = outcomes == facts.outcomes.end() ? 0 : outcomes->second.size();
    EXPECT_EQ(outcome_count, 1u) << "effect_outcome events for the key";
    if (outcome_count == 1) {
      const Outcome& o = outcomes->second.front();
      if (declined) {
        EXPECT_TRUE(o.status == S::kFailed && o.error_status == 503)
            << "the sink declined it (503), the outcome says status " << static_cast<int>(o.status)
            << ", error status " << o.error_status;
      } else {
        EXPECT_EQ(o.status, S::kOk)
            << "the sink accepted it, the outcome is not ok (error " << o.error_status << ")";
      }
    }
    auto seen = sink_keys.find(intent.key);
    if (seen == sink_keys.end()) {
      ADD_FAILURE() << "the run recorded the effect, but it never reached the sink";
      continue;
    }
    const SinkKey& k = seen->second;
    EXPECT_EQ("sink." + k.tool, intent.tool) << "the sink got the key on another tool's path";
    EXPECT_EQ(k.first_body, intent.arguments) << "the sink applied other arguments";
    if (declined) {
      EXPECT_EQ(k.applied, 0u);
      EXPECT_EQ(k.declined, k.deliveries);
    } else {
      EXPECT_EQ(k.applied, 1u) << "applied " << k.applied << " times over " << k.deliveries
                               << " deliveries";
    }
  }
}

// The engaged kill switches, as the store holds them (acknowledged or not), by run, with
// the index of the first child that engaged each: the one its record names (its actor
// names the child; a child that engages it again rewrites it), or an earlier one that
// acknowledged it. Each acknowledged switch must be there.
std::map<RunId, int> StoredKillSwitches(const storage::Store& store, const ChildReports& reports,
                                        const std::map<std::string, int>& child_index) {
  std::map<RunId, int> switches;
  auto settings = store.ListSettings("kill/");
  EXPECT_TRUE(settings.ok()) << settings.status().ToString();
  if (!settings.ok()) return switches;
  constexpr std::string_view kRunPrefix = "kill/run/";
  constexpr std::string_view kActorPrefix = "engine_kill_child ";
  for (const auto& [key, value] : *settings) {
    auto id = RunId::Parse(
        std::string_view(key).substr(StartsWith(key, kRunPrefix) ? kRunPrefix.size() : key.size()));
    auto record = ParseJson(value, "kill switch " + key);
    const std::string actor = record.ok() && record->is_object() ? record->value("actor", "") : "";
    auto child = StartsWith(actor, kActorPrefix)
                     ? child_index.find(actor.substr(kActorPrefix.size()))
                     : child_index.end();
    if (!id.ok() || child == child_index.end()) {
      ADD_FAILURE() << "a kill switch no child engaged: " << key << " = " << value;
      continue;
    }
    switches[*id] = child->second;
  }
  for (const auto& [id, child] : reports.kill_switches) {
    auto stored = switches.find(id);
    EXPECT_TRUE(stored != switches.end() && stored->second >= child)
        << "the kill switch of run " << id.str() << " was acknowledged by child #" << child
        << " and is not in the store as such";
    if (stored != switches.end()) stored->second = std::min(stored->second, child);
  }
  return switches;
}

// Checks the store and the sink once the final child is done.
void CheckFinalState(const std::string& dir, const ChildReports& reports, const EffectSink& sink,
                     const std::map<std::string, int>& child_index, Summary* summary) {
  SystemClock clock;
  auto store = OpenReadOnly(dir, clock);
  ASSERT_TRUE(store.ok()) << "read-only open at the end: " << store.status().ToString();
  const testing::StoreAudit audit = testing::AuditStore(**store);
  EXPECT_TRUE(audit.problems.empty()) << testing::Describe(audit);
  auto failed = (*store)->VerifyAll([](const storage::VerifyReport& r) {
    EXPECT_TRUE(r.ok) << "run " << r.run_id.str() << ": chain broken at "
                      << r.first_bad_seq.value_or(0) << ": " << r.problem;
  });
  EXPECT_TRUE(failed.ok() && *failed == 0) << failed.status().ToString();
  // Runs that lived through SIGKILLs (recovered calls, cut batches, indeterminate effects)
  // replay from their logs like any other (DESIGN.md §9).
  testing::ExpectEveryRunReplays(**store);

  for (const RunId& id : reports.acked) {
    EXPECT_TRUE(audit.runs.count(id) != 0)
        << "run " << id.str() << " was acknowledged by Start but is gone";
  }
  GovernanceWitness witness;
  witness.asks = sink.Asks();
  witness.sink_keys = sink.Keys();
  witness.child_index = child_index;
  witness.kill_switches = StoredKillSwitches(**store, reports, child_index);
  witness.answers = reports.answers;
  std::set<std::string> claimed;  // keys some run's history asked for
  std::set<RunId> governed;
  for (const auto& [id, run] : audit.runs) {
    SCOPED_TRACE("run " + id.str());
    auto facts = ReadFacts(**store, id);
    auto header = (*store)->GetRun(id);
    if (!facts.ok() || !header.ok()) {
      ADD_FAILURE() << "reading the run: " << facts.status().ToString() << " "
                    << header.status().ToString();
      continue;
    }
    summary->effects += facts->intents.size();
    if (facts->workflow == kGovernedWorkflow) {
      governed.insert(id);
      CheckGovernedRun(id, *header, *facts, witness, &claimed, &summary->governed);
      continue;
    }
    EXPECT_EQ(facts->workflow, kWorkflow);
    EXPECT_EQ(run.status, RunStatus::kCompleted) << "status " << storage::Name(run.status);
    EXPECT_EQ(facts->run_stopped, 1) << "run_stopped events";
    EXPECT_TRUE(facts->last_is_run_stopped) << "the last event is not run_stopped";
    EXPECT_EQ(facts->stop_reason, storage::StopReason::kCompleted)
        << "stop reason " << storage::Name(facts->stop_reason);
    CheckRunShape(id, *facts, sink);
    CheckRunEffects(id, *facts, witness.sink_keys, sink, &claimed);
  }
  CheckAsks(witness, governed);
  for (const auto& [key, k] : witness.sink_keys) {
    if (k.deliveries > 1) ++summary->effects_redelivered;
    if (claimed.count(key) != 0) continue;
    const std::string run = key.substr(0, key.find('#'));
    auto id = RunId::Parse(run);
    const bool exists = id.ok() && audit.runs.count(*id) != 0;
    ADD_FAILURE() << "the sink got key " << key << " (" << k.tool << ", applied " << k.applied
                  << ", " << k.deliveries << " deliveries), which no run asked for; run " << run
                  << (exists ? " exists" : " does not exist");
  }
  for (const std::string& problem : sink.Problems()) ADD_FAILURE() << "sink: " << problem;
  summary->runs = audit.runs.size();
  EXPECT_TRUE((*store)->Close().ok());
}

// ---- the kill loop -------------------------------------------------------------------------

class EngineKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = testing::TestSeed();
    random_.emplace(seed_);
    auto sink = EffectSink::Start(random_->Next64());
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(sink).value();
    dir_ = temp_.Sub("data");
  }

  std::string LogPath(const std::string& tag) const { return temp_.Sub(tag + ".log"); }

  enum class KillPlan : uint8_t {
    kEarly,
    kAfterOpen,
    kOnRequest,
    kOnAsk,
    kAfterApproval,
    kAfterKillSwitch
  };

  // What one child does and when it dies.
  struct ChildPlan {
    int64_t new_runs = 0;
    int64_t governed_runs = 0;
    KillPlan kill = KillPlan::kAfterOpen;
    int64_t kill_param = 0;  // ms, or the n-th request, ask or approval
    bool answer_approvals = true;
    int64_t kill_switches = 0;
  };

  ChildPlan PlanKilledChild(int iteration, int iterations) {
    ChildPlan p;
    p.new_runs = random_->Range(kNewRunsMin, kNewRunsMax);
    p.governed_runs = random_->Range(kGovernedRunsMin, kGovernedRunsMax);
    uint64_t roll = random_->Uniform(kPlanRolls);
    auto take = [&roll](uint64_t rolls) {
      const bool hit = roll < rolls;
      roll = hit ? kPlanRolls : roll - rolls;
      return hit;
    };
    if (take(kEarlyRolls)) {
      p.kill = KillPlan::kEarly;
      p.kill_param = random_->Range(0, kEarlyKillMsMax);
    } else if (take(kOnRequestRolls)) {
      p.kill = KillPlan::kOnRequest;
      p.kill_param = random_->Range(1, kOnRequestMax);
    } else if (take(kOnAskRolls)) {
      p.kill = KillPlan::kOnAsk;
      p.kill_param = random_->Range(1, std::min(kOnAskMax, p.governed_runs));
    } else if (take(kAfterApprovalRolls)) {
      p.kill = KillPlan::kAfterApproval;
      p.kill_param = random_->Range(1, kAfterApprovalMax);
    } else {
      p.kill_param = random_->Range(0, kKillDelayMsMax);
    }
    // After a child killed right after a kill switch, the next answers approvals: those of
    // the runs the switch covers must not lead to their writes.
    p.answer_approvals = p.kill == KillPlan::kAfterApproval ||
                         !random_->OneIn(kLeaveApprovalsOneIn) ||
                         last_kill_ == KillPlan::kAfterKillSwitch;
    if (random_->OneIn(kKillSwitchOneIn) || iteration == iterations / 2) {
      p.kill_switches = random_->Range(1, kKillSwitchesMax);
      if (random_->OneIn(kDieAfterKillSwitchOneIn)) p.kill = KillPlan::kAfterKillSwitch;
    }
    if (iteration >= iterations / 2 && summary_.kills_on_ask == 0) {
      // Halfway through and no agent decision interrupted yet: interrupt the child's first.
      p.kill = KillPlan::kOnAsk;
      p.kill_param = 1;
    }
    last_kill_ = p.kill;
    return p;
  }

  static std::string Describe(const ChildPlan& p) {
    std::string text = std::to_string(p.new_runs) + " new runs, " +
                       std::to_string(p.governed_runs) + " governed, " +
                       (p.answer_approvals ? "answering" : "leaving") + " approvals, " +
                       std::to_string(p.kill_switches) + " kill switches, killed ";
    const std::string n = std::to_string(p.kill_param);
    switch (p.kill) {
      case KillPlan::kEarly:
        return text + n + " ms after the spawn";
      case KillPlan::kAfterOpen:
        return text + n + " ms after \"open\"";
      case KillPlan::kOnRequest:
        return text + "by the sink on its request " + n;
      case KillPlan::kOnAsk:
        return text + "by the sink on its agent ask " + n;
      case KillPlan::kAfterApproval:
        return text + "by itself after its approval " + n;
      case KillPlan::kAfterKillSwitch:
        return text + "by itself after its first kill switch";
    }
    return text;
  }

  std::unique_ptr<SpawnedChild> Spawn(const std::string& tag, const ChildPlan& p,
                                      const char* mode) {
    child_index_.emplace(tag, static_cast<int>(child_index_.size()));
    std::vector<std::string> argv{
        CAIRN_ENGINE_KILL_CHILD,           dir_, sink_->BaseUrl(),
        std::to_string(random_->Next64()), tag,  std::to_string(p.new_runs),
        std::to_string(p.governed_runs),   mode};
    if (p.answer_approvals) argv.push_back("--answer-approvals");
    if (p.kill_switches > 0) argv.push_back("--kill-switches=" + std::to_string(p.kill_switches));
    if (p.kill == KillPlan::kAfterApproval) {
      argv.push_back("--die-after-approval=" + std::to_string(p.kill_param));
    }
    if (p.kill == KillPlan::kAfterKillSwitch) argv.push_back("--die-after-kill-switch");
    return SpawnedChild::Spawn(argv, LogPath(tag));
  }

  // One spawn-kill-check cycle. False if the test cannot go on.
  bool KillOnce(int iteration, int iterations) {
    const std::string tag = "r" + std::to_string(iteration);
    const ChildPlan plan = PlanKilledChild(iteration, iterations);
    auto child = Spawn(tag, plan, "kill");
    if (child == nullptr) return false;
    if (plan.kill == KillPlan::kOnRequest || plan.kill == KillPlan::kOnAsk) {
      sink_->KillOnRequest(child->pid(), static_cast<uint64_t>(plan.kill_param),
                           plan.kill == KillPlan::kOnAsk ? EffectSink::KillOn::kAgentAsk
                                                         : EffectSink::KillOn::kAnyRequest);
    }
    std::vector<std::string> lines;
    auto said = [&](std::string_view what) {
      return std::find(lines.begin(), lines.end(), what) != lines.end();
    };
    bool alive = true;
    if (plan.kill != KillPlan::kEarly) {
      const auto open_deadline = SteadyClock::now() + kChildOpenTimeout;
      while (!said("open") && alive && SteadyClock::now() < open_deadline) {
        alive = child->Read(Remaining(open_deadline), &lines);
      }
    }
    const bool on_event = plan.kill == KillPlan::kOnRequest || plan.kill == KillPlan::kOnAsk ||
                          plan.kill == KillPlan::kAfterApproval ||
                          plan.kill == KillPlan::kAfterKillSwitch;
    const auto kill_at =
        SteadyClock::now() + (on_event ? kOnRequestFallback : milliseconds(plan.kill_param));
    while (alive && !said("idle") && SteadyClock::now() < kill_at) {
      alive = child->Read(Remaining(kill_at), &lines);
    }
    const bool killed_by_sink = sink_->Disarm();
    child->Kill();
    const int status = child->Reap(kChildExitTimeout, &lines);
    bool idle = false;
    const int left_pending = ReadReports(lines, child_index_.at(tag), &reports_, &idle);
    if (plan.kill != KillPlan::kEarly && !said("open") && !killed_by_sink) {
      ADD_FAILURE() << "the child did not open the engine: " << DescribeWaitStatus(status) << "\n"
                    << FileTail(LogPath(tag), kLogTailLines);
      return false;
    }
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
      ADD_FAILURE() << "the child ended on its own: " << DescribeWaitStatus(status) << "\n"
                    << FileTail(LogPath(tag), kLogTailLines);
      return false;
    }
    ++summary_.kills;
    summary_.early_kills += plan.kill == KillPlan::kEarly;
    summary_.kills_by_sink += killed_by_sink && plan.kill == KillPlan::kOnRequest;
    summary_.kills_on_ask += killed_by_sink && plan.kill == KillPlan::kOnAsk;
    // Dead before the test killed it, and not by the sink: by itself.
    summary_.kills_after_approval += plan.kill == KillPlan::kAfterApproval && !alive;
    summary_.kills_after_kill_switch += plan.kill == KillPlan::kAfterKillSwitch && !alive;
    summary_.kills_approval_pending += left_pending > 0;
    summary_.kills_after_idle += idle;
    summary_.runs_resumed += CheckAfterKill(dir_, reports_, &spent_seen_);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "after kill " << iteration << " (" << tag << ", " << Describe(plan)
                    << "); its log:\n"
                    << FileTail(LogPath(tag), kLogTailLines);
      return false;
    }
    return true;
  }

  // The last child: no kill; it answers every approval and must finish every run and exit 0.
  void RunFinalChild() {
    const std::string tag = "final";
    ChildPlan plan;
    plan.new_runs = kFinalNewRuns;
    plan.governed_runs = kFinalGovernedRuns;
    auto child = Spawn(tag, plan, "final");
    ASSERT_NE(child, nullptr);
    std::vector<std::string> lines;
    const auto deadline = SteadyClock::now() + kFinalTimeout;
    while (SteadyClock::now() < deadline && child->Read(Remaining(deadline), &lines)) {
    }
    const bool timed_out = SteadyClock::now() >= deadline;
    if (timed_out) child->Kill();
    const int status = child->Reap(kChildExitTimeout, &lines);
    bool idle = false;
    ReadReports(lines, child_index_.at(tag), &reports_, &idle);
    EXPECT_FALSE(timed_out) << "the final child did not finish within " << kFinalTimeout.count()
                            << " ms";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0 && idle)
        << "the final child " << DescribeWaitStatus(status) << "\n"
        << FileTail(LogPath(tag), kLogTailLines);
  }

  uint64_t seed_ = 0;
  std::optional<Random> random_;
  testing::TempDir temp_;
  std::unique_ptr<EffectSink> sink_;
  std::string dir_;
  ChildReports reports_;
  Summary summary_;
  std::map<std::string, int> child_index_;              // tag -> place in the order children ran
  std::map<RunId, storage::BudgetAmounts> spent_seen_;  // after the last kill
  KillPlan last_kill_ = KillPlan::kAfterOpen;           // the plan of the last child
};

TEST_F(EngineKillTest, RunsFinishAndEffectsApplyOnceAcrossSigkills) {
  ASSERT_NE(sink_, nullptr);
  SCOPED_TRACE("seed=" + std::to_string(seed_));
  const auto started = SteadyClock::now();
  const int iterations = Iterations();
  for (int i = 0; i < iterations; ++i) {
    if (!KillOnce(i, iterations)) break;
  }
  if (!HasFailure()) RunFinalChild();
  for (const std::string& line : reports_.stuck) {
    ADD_FAILURE() << "a child found a run it could not finish: " << line;
  }
  if (!HasFailure()) CheckFinalState(dir_, reports_, *sink_, child_index_, &summary_);
  const SinkStats sink = sink_->stats();
  const GovernedSummary& g = summary_.governed;
  const auto elapsed =
      std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started).count();
  using ull = unsigned long long;
  std::fprintf(
      stderr,
      "engine kill test: %d kills (%d early, %d by the sink on a call, %d during an agent "
      "decision, %d right after an approval, %d right after a kill switch, %d with approvals "
      "left pending, %d after idle), "
      "%zu starts acknowledged, %llu runs left active for the next child, %zu runs, %llu "
      "effects, %llu sink requests (%llu re-deliveries, %llu keys delivered more than once, "
      "%llu declined, %llu delayed, %llu agent asks); governed: %llu runs, %llu decisions "
      "recorded, %llu asked by more than one child, %llu approvals answered (%llu rejected, "
      "%zu acknowledged), %zu kill switches acknowledged, %llu runs killed by a switch, %llu "
      "commits; %lld ms, seed=%llu\n",
      summary_.kills, summary_.early_kills, summary_.kills_by_sink, summary_.kills_on_ask,
      summary_.kills_after_approval, summary_.kills_after_kill_switch,
      summary_.kills_approval_pending, summary_.kills_after_idle, reports_.acked.size(),
      static_cast<ull>(summary_.runs_resumed), summary_.runs, static_cast<ull>(summary_.effects),
      static_cast<ull>(sink.requests), static_cast<ull>(sink.duplicates),
      static_cast<ull>(summary_.effects_redelivered), static_cast<ull>(sink.declined),
      static_cast<ull>(sink.delayed), static_cast<ull>(sink.asks), static_cast<ull>(g.runs),
      static_cast<ull>(g.decisions), static_cast<ull>(g.decisions_reasked),
      static_cast<ull>(g.approvals), static_cast<ull>(g.rejected), reports_.answers.size(),
      reports_.kill_switches.size(), static_cast<ull>(g.killed_by_switch),
      static_cast<ull>(g.commits), static_cast<long long>(elapsed), static_cast<ull>(seed_));
  if (!HasFailure() && iterations >= kIterationsForCoverage) {
    // Otherwise the test passed without testing what it is for.
    EXPECT_GT(summary_.runs_resumed, 0u) << "no kill left a run for the next child to resume";
    EXPECT_GT(summary_.effects_redelivered, 0u)
        << "no kill interrupted a call that had reached the sink";
    EXPECT_GT(summary_.kills_on_ask, 0) << "no kill interrupted an agent decision";
    EXPECT_GT(g.decisions_reasked, 0u) << "no decision was asked again after a kill";
    EXPECT_GT(g.approvals, 0u) << "no approval was answered";
  }
  if (HasFailure()) {
    std::fprintf(stderr, "re-run with CAIRN_TEST_SEED=%llu (CAIRN_KEEP_TEMP=1 keeps the logs)\n",
                 static_cast<unsigned long long>(seed_));
  }
}

}  // namespace
}  // namespace cairn::crash
