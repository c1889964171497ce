#include "tests/crash/governed_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

#include "tests/crash/governed_workflow.h"

namespace cairn::crash {
namespace {

using storage::ApprovalResolution;
using storage::RunStatus;
using storage::StopReason;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The child's place in the order of children; -1 (and a failure) for an unknown tag.
int ChildIndex(const GovernanceWitness& witness, const std::string& tag) {
  auto it = witness.child_index.find(tag);
  if (it != witness.child_index.end()) return it->second;
  ADD_FAILURE() << "an ask names child '" << tag << "', which the test never started";
  return -1;
}

// The ask a recorded decision came from, by the "ask #N" its rationale carries.
const AgentAsk* AskOf(const GovernanceWitness& witness, const storage::AgentDecided& decided) {
  std::string_view rationale = decided.rationale;
  if (!StartsWith(rationale, kAskRationalePrefix)) return nullptr;
  rationale.remove_prefix(kAskRationalePrefix.size());
  uint64_t seq = 0;
  auto [end, ec] = std::from_chars(rationale.data(), rationale.data() + rationale.size(), seq);
  if (ec != std::errc() || end != rationale.data() + rationale.size() || seq == 0 ||
      seq > witness.asks.size()) {
    return nullptr;
  }
  return &witness.asks[seq - 1];
}

// Decisions and the asks behind them. Returns the recorded option (if any).
std::optional<std::string> CheckDecisions(const RunId& id, const RunFacts& facts,
                                          const GovernanceWitness& witness,
                                          GovernedSummary* summary) {
  std::vector<const AgentAsk*> asks;  // of this run
  for (const AgentAsk& ask : witness.asks) {
    if (ask.run_id == id.str()) asks.push_back(&ask);
  }
  // No child asks one decision twice: it asks again only when it recovers the run.
  std::map<std::pair<std::string, std::string>, int> per_child;
  std::map<std::string, std::set<std::string>> children_of_key;
  for (const AgentAsk* ask : asks) {
    const int asked = ++per_child[{ask->decision_key, ask->child}];
    EXPECT_EQ(asked, 1) << "child " << ask->child << " asked decision " << ask->decision_key
                        << " twice";
    children_of_key[ask->decision_key].insert(ask->child);
  }
  for (const auto& [key, children] : children_of_key) {
    summary->decisions_reasked += children.size() > 1;
  }
  std::optional<std::string> option;
  std::map<std::string, int> recorded;
  for (const RecordedDecision& d : facts.decisions) {
    const storage::AgentDecided& decided = d.decided;
    const std::string& key = decided.decision_key;
    SCOPED_TRACE("decision " + key + " (event " + std::to_string(d.seq) + ")");
    EXPECT_EQ(++recorded[key], 1) << "more than one agent_decided for one decision key";
    ++summary->decisions;
    EXPECT_EQ(decided.reason_code, "decided") << decided.detail;
    EXPECT_TRUE(std::find(std::begin(kOptions), std::end(kOptions), decided.option) !=
                std::end(kOptions))
        << "option '" << decided.option << "'";
    const AgentAsk* ask = AskOf(witness, decided);
    if (ask == nullptr) {
      ADD_FAILURE() << "the rationale '" << decided.rationale << "' names no ask of the sink";
      continue;
    }
    EXPECT_EQ(ask->decision_key, key) << "the recorded answer is that of ask #" << ask->seq;
    EXPECT_EQ(ask->option, decided.option) << "the sink answered ask #" << ask->seq << " so";
    EXPECT_EQ(ask->tokens, decided.usage.prompt_tokens + decided.usage.completion_tokens);
    EXPECT_EQ(ask->cost_micros, decided.usage.cost_micros);
    option = decided.option;
    // Once a child recorded the decision, nobody asks it again: not that child, and no
    // child after it (each starts only once the one before it is dead).
    const int recorder = ChildIndex(witness, ask->child);
    for (const AgentAsk* other : asks) {
      if (other->decision_key != key || other->seq == ask->seq) continue;
      EXPECT_LT(ChildIndex(witness, other->child), recorder)
          << "decision " << key << " was asked again (ask #" << other->seq << " by child "
          << other->child << ") after child " << ask->child << " recorded ask #" << ask->seq;
    }
  }
  auto covered = witness.kill_switches.find(id);
  if (covered != witness.kill_switches.end()) {
    for (const AgentAsk* ask : asks) {
      EXPECT_LT(ChildIndex(witness, ask->child), covered->second)
          << "ask #" << ask->seq << " of " << ask->decision_key << " by child " << ask->child
          << " came after the run's kill switch was engaged";
    }
  }
  return option;
}

// At most one approval, asked exactly for large amounts, for the commit's arguments, and
// answered as the children said. Returns the answer in the history, if any.
std::optional<RecordedApproval> CheckApprovals(const RunId& id, const RunFacts& facts,
                                               const GovernanceWitness& witness, const Json& commit,
                                               GovernedSummary* summary) {
  const int64_t amount = facts.input.value("amount", int64_t{-1});
  EXPECT_LE(facts.approvals_requested.size(), 1u) << "approval_requested events";
  EXPECT_LE(facts.approvals_resolved.size(), 1u) << "approval_resolved events";
  for (const RecordedApproval& asked : facts.approvals_requested) {
    EXPECT_GT(amount, kApprovalThreshold) << "approval " << asked.approval_id << " asked";
    EXPECT_EQ(asked.tool, kCommitTool);
    if (!commit.is_null()) {
      EXPECT_EQ(asked.arguments, commit) << "approval " << asked.approval_id;
    }
  }
  std::optional<RecordedApproval> answer;
  if (!facts.approvals_resolved.empty()) answer = facts.approvals_resolved.front();
  if (answer) {
    ++summary->approvals;
    summary->rejected += answer->resolution == ApprovalResolution::kRejected;
    EXPECT_TRUE(!facts.approvals_requested.empty() &&
                facts.approvals_requested.front().approval_id == answer->approval_id &&
                facts.approvals_requested.front().seq < answer->seq)
        << "approval " << answer->approval_id << " answered but not asked before";
    EXPECT_NE(answer->resolution, ApprovalResolution::kExpired) << "no approval expires here";
    EXPECT_EQ(answer->actor, kApprover);
  }
  // Every acknowledged answer is in the history, as given.
  const std::string prefix = id.str() + " ";
  for (auto it = witness.answers.lower_bound(prefix);
       it != witness.answers.end() && StartsWith(it->first, prefix); ++it) {
    const std::string approval_id = it->first.substr(prefix.size());
    EXPECT_TRUE(answer && answer->approval_id == approval_id &&
                (answer->resolution == ApprovalResolution::kApproved) == it->second)
        << "a child's answer to approval " << approval_id << " ("
        << (it->second ? "approved" : "rejected") << ") was acknowledged, the history "
        << (answer ? "says " + answer->approval_id + " resolution " +
                         std::to_string(static_cast<int>(answer->resolution))
                   : std::string("has no answer"));
  }
  return answer;
}

// The commit: after its approval, with the recorded option, applied once by the sink.
void CheckCommit(const RunId& id, const RunFacts& facts, const GovernanceWitness& witness,
                 const Json& commit, const std::optional<RecordedApproval>& answer,
                 std::set<std::string>* claimed) {
  using S = storage::EffectOutcome::Status;
  const bool needs_approval = facts.input.value("amount", int64_t{-1}) > kApprovalThreshold;
  EXPECT_LE(facts.intents.size(), 1u) << "the workflow makes one call";
  for (const Intent& intent : facts.intents) {
    SCOPED_TRACE("effect " + intent.key);
    EXPECT_TRUE(claimed->insert(intent.key).second) << "two intents with one key";
    EXPECT_EQ(intent.tool, kCommitTool);
    EXPECT_TRUE(intent.idempotent && intent.executor == "http");
    if (!commit.is_null()) {
      EXPECT_EQ(intent.arguments, commit) << "not the recorded option";
    }
    if (needs_approval) {
      EXPECT_TRUE(answer && answer->resolution == ApprovalResolution::kApproved &&
                  answer->seq < intent.seq)
          << "a commit over the threshold without an approval before it";
    }
    if (witness.kill_switches.count(id) != 0) continue;  // CheckKilled
    auto outcomes = facts.outcomes.find(intent.key);
    const size_t count = outcomes == facts.outcomes.end() ? 0 : outcomes->second.size();
    EXPECT_EQ(count, 1u) << "effect_outcome events";
    if (count == 1) {
      EXPECT_EQ(outcomes->second.front().status, S::kOk);
    }
    auto seen = witness.sink_keys.find(intent.key);
    if (seen == witness.sink_keys.end()) {
      ADD_FAILURE() << "the run recorded the commit, but it never reached the sink";
      continue;
    }
    EXPECT_EQ("sink." + seen->second.tool, intent.tool);
    EXPECT_EQ(seen->second.first_body, intent.arguments) << "the sink applied other arguments";
    EXPECT_EQ(seen->second.applied, 1u);
  }
}

// The writes of the run that reached the sink.
std::vector<std::string> SinkKeysOf(const RunId& id, const GovernanceWitness& witness) {
  std::vector<std::string> keys;
  const std::string prefix = id.str() + "#";
  for (auto it = witness.sink_keys.lower_bound(prefix);
       it != witness.sink_keys.end() && StartsWith(it->first, prefix); ++it) {
    keys.push_back(it->first);
  }
  return keys;
}

void CheckEnd(const RunId& id, const storage::RunHeader& header, const RunFacts& facts,
              const GovernanceWitness& witness, const std::optional<RecordedApproval>& answer,
              GovernedSummary* summary) {
  auto covered = witness.kill_switches.find(id);
  if (covered != witness.kill_switches.end()) {
    ++summary->killed_by_switch;
    EXPECT_EQ(header.status, RunStatus::kKilled)
        << "the kill switch engaged by child #" << covered->second << " covers it; status "
        << storage::Name(header.status) << ", stop reason " << storage::Name(header.stop_reason);
    EXPECT_EQ(facts.stop_reason, StopReason::kKilled);
    for (const std::string& key : SinkKeysOf(id, witness)) {
      ADD_FAILURE() << "write " << key << " reached the sink, but the run's kill switch was "
                    << "engaged (by child #" << covered->second << ") before any intent";
    }
    return;
  }
  EXPECT_EQ(facts.kills_requested, 0) << "no kill switch covers the run";
  if (answer && answer->resolution == ApprovalResolution::kRejected) {
    EXPECT_EQ(facts.stop_reason, StopReason::kApprovalDenied)
        << "status " << storage::Name(header.status);
    EXPECT_TRUE(facts.intents.empty()) << "a commit after a rejection";
    for (const std::string& key : SinkKeysOf(id, witness)) {
      ADD_FAILURE() << "write " << key << " reached the sink after its approval was rejected";
    }
    return;
  }
  EXPECT_EQ(header.status, RunStatus::kCompleted)
      << "stop reason " << storage::Name(header.stop_reason);
  EXPECT_EQ(facts.stop_reason, StopReason::kCompleted);
  EXPECT_EQ(facts.decisions.size(), 1u) << "agent_decided events";
  EXPECT_EQ(facts.intents.size(), 1u) << "commits";
  const bool needs_approval = facts.input.value("amount", int64_t{-1}) > kApprovalThreshold;
  EXPECT_EQ(facts.approvals_requested.size(), needs_approval ? 1u : 0u) << "approvals asked";
  summary->commits += SinkKeysOf(id, witness).size();
}

// Spent figures never go back, and add up to what was recorded.
void CheckLedger(const storage::RunHeader& header, const RunFacts& facts) {
  for (size_t i = 1; i < facts.charges.size(); ++i) {
    const std::string down =
        BudgetDecrease(facts.charges[i - 1].spent_after, facts.charges[i].spent_after);
    EXPECT_EQ(down, "") << "budget_charged #" << i << " (" << facts.charges[i].purpose
                        << ") spent less " << down << " than the one before";
  }
  if (!facts.charges.empty()) {
    const std::string down = BudgetDecrease(facts.charges.back().spent_after, header.budget_spent);
    EXPECT_EQ(down, "") << "the header spent less " << down << " than the last budget_charged";
  }
  uint64_t tokens = 0;
  int64_t cost = 0;
  for (const RecordedDecision& d : facts.decisions) {
    tokens += d.decided.usage.prompt_tokens + d.decided.usage.completion_tokens;
    cost += d.decided.usage.cost_micros;
  }
  EXPECT_EQ(header.budget_spent.tokens, tokens) << "spent tokens vs. the recorded decisions";
  EXPECT_EQ(header.budget_spent.cost_micros, cost) << "spent cost vs. the recorded decisions";
  EXPECT_EQ(header.budget_spent.tool_calls, facts.intents.size()) << "spent tool calls";
  // Every reservation was settled or released by the end -- that of a decision under way
  // when the run was killed too -- and a decision asked again after a crash did not
  // reserve twice.
  const storage::BudgetAmounts& reserved = header.budget_reserved;
  EXPECT_TRUE(reserved == storage::BudgetAmounts{})
      << "still reserved at the end: " << reserved.tokens << " tokens, " << reserved.cost_micros
      << " micros, " << reserved.tool_calls << " tool calls, " << reserved.steps << " steps";
}

}  // namespace

std::string BudgetDecrease(const storage::BudgetAmounts& before,
                           const storage::BudgetAmounts& after) {
  if (after.steps < before.steps) return "steps";
  if (after.tokens < before.tokens) return "tokens";
  if (after.cost_micros < before.cost_micros) return "cost";
  if (after.wall_ms < before.wall_ms) return "wall_clock";
  if (after.tool_calls < before.tool_calls) return "tool_calls";
  return "";
}

void CheckGovernedRun(const RunId& id, const storage::RunHeader& header, const RunFacts& facts,
                      const GovernanceWitness& witness, std::set<std::string>* claimed,
                      GovernedSummary* summary) {
  SCOPED_TRACE("governed run " + id.str());
  ++summary->runs;
  EXPECT_EQ(facts.run_stopped, 1) << "run_stopped events";
  EXPECT_TRUE(facts.last_is_run_stopped) << "the last event is not run_stopped";
  const std::optional<std::string> option = CheckDecisions(id, facts, witness, summary);
  Json commit;  // the commit's arguments, once the option is known
  if (option) {
    commit = Json{{"order", id.str()},
                  {"amount", facts.input.value("amount", int64_t{-1})},
                  {"option", *option}};
  }
  const std::optional<RecordedApproval> answer =
      CheckApprovals(id, facts, witness, commit, summary);
  CheckCommit(id, facts, witness, commit, answer, claimed);
  CheckEnd(id, header, facts, witness, answer, summary);
  CheckLedger(header, facts);
}

void CheckAsks(const GovernanceWitness& witness, const std::set<RunId>& governed_runs) {
  for (size_t i = 0; i < witness.asks.size(); ++i) {
    const AgentAsk& ask = witness.asks[i];
    EXPECT_EQ(ask.seq, i + 1);
    static_cast<void>(ChildIndex(witness, ask.child));
    auto run = RunId::Parse(ask.run_id);
    EXPECT_TRUE(run.ok() && governed_runs.count(*run) != 0 &&
                StartsWith(ask.decision_key, ask.run_id + "#"))
        << "ask #" << ask.seq << " (" << ask.decision_key << ") is not of a governed run";
  }
}

}  // namespace cairn::crash
