// The governed workflow of the engine crash test, and the policy and agent it runs under,
// shared by the child that runs it (engine_kill_child.cc) and the test that checks what it
// left (engine_kill_test.cc, governed_checks.h).
//
// One run settles one disputed order: a `call: agent` decision picks how (an allowlist of
// kOptions; the agent is the child's "sink" agent, which asks the test's sink over HTTP),
// then one write, sink.commit, carries the order, its amount and the option picked. The
// policy lets the commit through when the amount is at most kApprovalThreshold and asks
// an approver (kApprover) otherwise; a rejected approval stops the run (approval_denied)
// without the write. The workflow has budgets, so its ledger moves at every decision and
// call. Nothing else can stop it: the sink always answers the agent with an allowed option
// and accepts every commit.
#pragma once

#include <string>
#include <string_view>

namespace cairn::crash {

inline constexpr std::string_view kGovernedWorkflow = "crash/governed";
// The workflow's one write tool: POSTs to "<sink>/sink/commit", like the order's tools.
inline constexpr std::string_view kCommitTool = "sink.commit";
// The agent the decision asks (registered in code by the child).
inline constexpr std::string_view kSinkAgent = "sink";
// Where the sink agent POSTs {"decision_key", "run_id", "child", "options"}; the sink
// answers {"option", "rationale": "ask #<n>", "usage": {...}}.
inline constexpr std::string_view kAskPath = "/agent/ask";
inline constexpr std::string_view kAskRationalePrefix = "ask #";
inline constexpr std::string_view kOptions[] = {"refund", "credit", "replace"};
// Commits of a larger amount wait for an approval by kApprover.
inline constexpr int kApprovalThreshold = 100;
inline constexpr int kAmountMin = 1;
inline constexpr int kAmountMax = 300;
inline constexpr std::string_view kApprover = "crash-approver";
inline constexpr std::string_view kApprovalRule = "large-commits";

// The definition's YAML text.
inline std::string GovernedWorkflowYaml() {
  return R"(
document: {dsl: '1.0.3', namespace: crash, name: governed, version: '1.0.0'}
do:
  - decide:
      call: agent
      with:
        goal: Settle the disputed order
        options: [refund, credit, replace]
        context:
          order: '${ $workflow.input.order }'
          amount: '${ $workflow.input.amount }'
        agent: sink
        timeout: PT20S
  - commit:
      call: sink.commit
      with:
        order: '${ $workflow.input.order }'
        amount: '${ $workflow.input.amount }'
        option: '${ .option }'
  - done:
      set:
        order: '${ $workflow.input.order }'
        status: done
)";
}

// The policy of every run of the test, the order workflow's included: every sink tool is
// allowed, except large commits of the governed workflow, which need an approval (that
// never expires during the test). Only the governed workflow has budgets (none of them
// is ever exhausted: the test checks the ledger, not the caps).
inline std::string CrashPolicyYaml() {
  return R"(
version: 1
name: engine crash test
workflows:
  crash/governed:
    budgets: {steps: 1000, tokens: 100000000, cost: 100000, tool_calls: 10}
rules:
  - id: large-commits
    workflows: [crash/governed]
    tools: [sink.commit]
    when: [{path: /arguments/amount, gt: )" +
         std::to_string(kApprovalThreshold) + R"(}]
    decision: require_approval
    approval: {expires_after: 1d, approvers: [crash-approver]}
  - id: sink-writes
    tools: [sink.*]
    decision: allow
)";
}

}  // namespace cairn::crash
