#!/usr/bin/env bash
# End-to-end test of the governance commands with the embedded engine: an agents file
# (--agents, $CAIRN_AGENTS, DIR/agents.yaml), a `call: agent` decision shown by run show,
# approvals (describe shows the request; approve/reject by an approver, once; a stranger
# is refused), and kill switches (--workflow, --all, a run; durable across processes; new
# runs refused; --list; --release; bad targets). No sleeps.
#
#   tests/tools/governance_cli_test.sh PATH_TO_CAIRN
set -euo pipefail

cairn=${1:?usage: governance_cli_test.sh PATH_TO_CAIRN}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-governance-cli-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data"
unset CAIRN_DATA CAIRN_TOOLS CAIRN_AGENTS
passed=0
failed=0

# shellcheck source=cli_lib.sh
source "$(dirname "$0")/cli_lib.sh"

field_is() { [ "$(json_field "$1")" = "$2" ]; }
changes() { if [ -f "$work/changes.txt" ]; then wc -l <"$work/changes.txt"; else echo 0; fi; }
g() { run --data "$data" --tools "$work/tools.yaml" --agents "$work/agents.yaml" "$@"; }

# ---- fixtures: pick a plan (agent), change it (write tool, approval above 100) ----
cat >"$work/plan.yaml" <<'EOF'
document: {dsl: '1.0.3', namespace: billing, name: plan-change, version: '1.0.0'}
do:
  - choose:
      call: agent
      with:
        goal: Pick the plan for the team
        options: [starter, team, enterprise]
        context: '${ {team_size: .team_size} }'
        max_steps: 2
        timeout: {seconds: 10}
  - change:
      call: billing.change_plan
      with:
        plan: ${ .option }
        monthly_price: '${ {starter: 10, team: 90, enterprise: 900}[.option] }'
EOF
cat >"$work/agents.yaml" <<'EOF'
default: planner
agents:
  planner:
    kind: scripted
    rules:
      - when: [{path: /context/team_size, gte: 50}]
        option: enterprise
        rationale: Fifty or more people need enterprise support.
      - when: [{path: /context/team_size, gte: 10}]
        option: team
        rationale: Ten or more people share billing.
    otherwise: {option: starter, rationale: Small teams start small.}
EOF
write_change_plan_tool
cat >"$work/policy.yaml" <<'EOF'
version: 1
name: billing
rules:
  - id: small-changes
    tools: [billing.change_plan]
    when: [{path: /arguments/monthly_price, lte: 100}]
    decision: allow
  - id: big-changes
    tools: [billing.change_plan]
    decision: require_approval
    approval: {expires_after: 1h, approvers: [alice, bob]}
budgets:
  tool_calls: 5
EOF

g workflow apply "$work/plan.yaml"
check "apply the plan-change workflow" exit_is 0
g policy apply "$work/policy.yaml"
check "apply the policy" exit_is 0

# ---- the agents file ----
g run start billing/plan-change --wait --id small --input '{"team_size": 12}'
check "a small change completes: the agent chose, the policy allowed" exit_is 0
check "the output is the tool's result" out_has '"plan":"team"'
check "the write ran once" test "$(changes)" -eq 1
g run show small
check "show has the agent's decision" out_has_e "agent_decided +planner chose team \(decided\)"
check "show has the policy's verdict" out_has_e "policy_verdict +allow billing.change_plan \(rule small-changes\)"
g -o json run describe small
check "describe -o json has the budget ledger" field_is budget.spent.tool_calls 1
check "describe -o json has the run's policy" out_has_e '"policy_hash":"[0-9a-f]{64}"'

run --data "$data" --tools "$work/tools.yaml" run start billing/plan-change --wait --id noagents \
  --input '{"team_size": 3}'
check "without an agents file the decision faults: unknown_agent" exit_is 1
check "the error names the missing agents file" out_has "no default agent is configured"
cp "$work/agents.yaml" "$data/agents.yaml"
run --data "$data" --tools "$work/tools.yaml" run start billing/plan-change --wait --id implicit \
  --input '{"team_size": 3}'
check "DIR/agents.yaml is used when --agents is not given" exit_is 0
rm "$data/agents.yaml"
CAIRN_AGENTS="$work/agents.yaml" run --data "$data" --tools "$work/tools.yaml" \
  run start billing/plan-change --wait --id fromenv --input '{"team_size": 4}'
check "\$CAIRN_AGENTS names the agents file" exit_is 0
printf 'agents:\n  planner:\n    kind: oracle\n' >"$work/bad_agents.yaml"
run --data "$data" --agents "$work/bad_agents.yaml" run start billing/plan-change \
  --input '{"team_size": 4}'
check "a bad agents file: one line, exit 2, file:line:col" \
  one_line_error 2 "bad_agents.yaml:3:11: "
run --data "$data" --agents "$work/none.yaml" run start billing/plan-change --input '{}'
check "a missing agents file: one line, exit 2" one_line_error 2 "none.yaml"

# ---- approvals ----
g run start billing/plan-change --wait --id big --input '{"team_size": 80}'
check "a big change parks on an approval (exit 0)" exit_is 0
check "it says who answers and how" err_has "run approve big --as NAME"
check "no write before the approval" test "$(changes)" -eq 3
g run describe big
check "describe shows the approval and its tool" out_has_e "^approval +a[0-9]+ to call billing.change_plan \(rule big-changes\)"
check "describe shows the arguments" out_has '"plan":"enterprise"'
check "describe shows the approvers" out_has_e "approvers +alice, bob"
check "describe shows the expiry" out_has "unanswered by then"
g -o json run describe big
check "describe -o json has the approval's binding hash" out_has_e '"binding_hash":"[0-9a-f]{64}"'
check "describe -o json lists the approvers" field_is approval.approvers '["alice", "bob"]'
g --as mallory run approve big
check "a stranger may not approve: one line, exit 2" one_line_error 2 "'mallory' may not answer"
check "still no write" test "$(changes)" -eq 3
g --as alice run approve big --reason "budget signed off"
check "an approver approves; the run completes" exit_is 0
check "the run completed" out_has_e "^status +completed"
check "the write ran once, after the approval" test "$(changes)" -eq 4
g --as bob run approve big
check "a second answer is refused: one line, exit 2" one_line_error 2 "has stopped"
g run show big
check "show has the approval request" out_has_e "approval_requested +a[0-9]+ for billing.change_plan"
check "show has who approved" out_has_e "approval_resolved +a[0-9]+ approved by alice"
check "show has the verdict checked again before the commit" out_has_e "policy_verdict +allow billing.change_plan \(rule big-changes, checked again before the commit\)"

g run start billing/plan-change --wait --id big2 --input '{"team_size": 80}'
g --as bob run reject big2 --reason "not this quarter"
check "a rejection is recorded (exit 0)" exit_is 0
check "the run failed: approval_denied" out_has "failed (approval_denied)"
check "the reason is kept" out_has "not this quarter"
check "no write after a rejection" test "$(changes)" -eq 4
g --as bob run approve not-a-run
check "approve of an unknown run: one line, exit 2" one_line_error 2 "not-a-run"
g --as bob run approve small
check "approve of a run that waits on nothing: one line, exit 2" one_line_error 2 "has stopped"

# ---- kill switches ----
g run start billing/plan-change --wait --id parked1 --input '{"team_size": 80}'
g run start billing/plan-change --wait --id parked2 --input '{"team_size": 90}'
g --as ops kill --workflow billing/plan-change --reason "incident 7"
check "kill --workflow engages and stops the covered runs" exit_is 0
check "it says what was engaged" out_has "engaged the kill switch of workflow billing/plan-change (engaged by ops): incident 7"
check "it lists the runs it stopped" out_has_e "^parked1 +killed"
g run describe parked2
check "a covered parked run is killed" out_has_e "^status +killed"
check "no write from killed runs" test "$(changes)" -eq 4
g run start billing/plan-change --wait --input '{"team_size": 2}'
check "a new run of the workflow is refused (another process: durable)" one_line_error 2 "kill switch of workflow billing/plan-change"
g kill --list
check "kill --list shows the switch" out_has_e "^workflow +billing/plan-change .* ops +incident 7"
g -o json kill --list
check "kill --list -o json" field_is target billing/plan-change
g --as alice run approve parked1
check "a killed run cannot be approved" one_line_error 2 "has stopped (killed)"
g kill --release --workflow billing/plan-change
check "release" out_has "released the kill switch of workflow billing/plan-change"
g kill --release --workflow billing/plan-change
check "releasing twice: one line, exit 2" one_line_error 2 "no kill switch"
g run start billing/plan-change --wait --id after --input '{"team_size": 2}'
check "after the release new runs start" exit_is 0

g run start billing/plan-change --wait --id one --input '{"team_size": 80}'
g run start billing/plan-change --wait --id other --input '{"team_size": 80}'
g kill one --reason "this one only"
check "kill RUN stops that run" out_has_e "^one +killed"
g run describe other
check "other runs are untouched" out_has_e "^status +waiting"
g kill --all
check "kill --all engages the global switch" exit_is 0
g run describe other
check "the global switch stopped the parked run" out_has_e "^status +killed"
g run start billing/plan-change --input '{"team_size": 2}'
check "the global switch refuses new runs" one_line_error 2 "global kill switch"
g kill --release --all
check "release the global switch" exit_is 0
g kill --release one
check "release the run's switch" exit_is 0
g -o json kill --list
check "no switch is left" test ! -s "$work/out"

g kill
check "kill without a target: one line, exit 2" one_line_error 2 "name exactly one kill switch"
g kill --all --workflow billing/plan-change
check "two targets: one line, exit 2" one_line_error 2 "name exactly one kill switch"
g kill --workflow plan-change
check "a workflow without a namespace: one line, exit 2" one_line_error 2 "expected NAMESPACE/NAME"
g kill small
check "a stopped run: one line, exit 2" one_line_error 2 "has already stopped"
g kill no-such-run
check "an unknown run: one line, exit 2" one_line_error 2 "no-such-run"
g kill --list --all
check "--list with a target: one line, exit 2" one_line_error 2 "--list takes no switch"

# ---- the chains still verify ----
run --data "$data" log verify
check "every run's hash chain verifies" out_has "all chains intact"

# ---- every run replays ----
check "every run replays and audits clean" \
  replays_clean "$data" --tools "$work/tools.yaml" --agents "$work/agents.yaml"

echo "governance_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
