#!/usr/bin/env bash
# End-to-end test of `cairn replay`: runs made by the embedded engine (a tool call, an
# approval, a switch) replay with no divergence from the data directory, read-only; a
# definition with a changed expression diverges at the task it changes (exit 1); the
# unchanged definition never does; usage errors are one line, exit 2. Counterfactual
# replay (--policy, --agent): each verdict or decision that would have differed is one
# line (-o json: {"difference": ...}), the summary counts runs and points, differences
# alone exit 0, bad flags exit 2. No sleeps.
#
#   tests/tools/replay_cli_test.sh PATH_TO_CAIRN
set -euo pipefail

cairn=${1:?usage: replay_cli_test.sh PATH_TO_CAIRN}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-replay-cli-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data"
unset CAIRN_DATA CAIRN_TOOLS CAIRN_AGENTS
passed=0
failed=0

# shellcheck source=cli_lib.sh
source "$(dirname "$0")/cli_lib.sh"

cat >"$work/flow.yaml" <<'YAML'
document: {dsl: '1.0.3', namespace: test, name: flow, version: '1.0.0'}
do:
  - first:
      set:
        a: ${ .x + 1 }
  - pick:
      switch:
        - big:
            when: ${ .a > 10 }
            then: big
        - otherwise:
            then: small
  - small:
      set:
        b: ${ .a * 2 }
      then: end
  - big:
      set:
        b: ${ .a * 3 }
YAML
sed 's/\.x + 1/.x + 2/' "$work/flow.yaml" >"$work/changed.yaml"

run --data "$data" workflow apply "$work/flow.yaml"
check "the workflow applies" exit_is 0
for x in 1 20; do
  run --data "$data" run start flow --wait --id "run-$x" --input "{\"x\": $x}"
  check "run-$x completes" exit_is 0
done

run --data "$data" replay --all
check "every run replays: exit 0" exit_is 0
check "the summary counts them" out_has "replayed 2 runs: 2 matched, 0 diverged"
check "the summary gives a rate" out_has "events/s"

run --data "$data" replay run-1 -o json
check "-o json: exit 0" exit_is 0
check "-o json: one summary line" valid_jsonl
check "-o json: matched 1" [ "$(json_field summary.matched)" = 1 ]

run --data "$data" replay --all --definition "$work/flow.yaml"
check "the unchanged definition never diverges" exit_is 0

run --data "$data" replay --all --definition "$work/changed.yaml" -o json
check "a changed expression diverges: exit 1" exit_is 1
check "both runs diverge at the first task's completion" \
  [ "$(grep -c '"divergence":{.*"task_path":"/do/0/first"' "$work/out")" -eq 2 ]
check "the report names the recorded kind" out_has '"kind":"task_completed"'

run --data "$data" replay --all --workflow test/other
check "a workflow with no runs replays nothing" out_has "replayed 0 runs"

run --data "$data" replay
check "no run named: one line, exit 2" one_line_error 2 "name the runs to replay"
run --data "$data" replay run-1 --workflow test/flow
check "--workflow with named runs: one line, exit 2" one_line_error 2 "--workflow selects runs"
run --data "$data" replay no-such-run
check "an unknown run: exit 2" one_line_error 2 "no-such-run"
run --data "$data" replay --all --definition "$work/missing.yaml"
check "a missing definition file: one line, exit 2" one_line_error 2 "missing.yaml"

# ---- counterfactual replay ----
cat >"$work/plan.yaml" <<'YAML'
document: {dsl: '1.0.3', namespace: billing, name: plan, version: '1.0.0'}
do:
  - choose:
      call: agent
      with:
        goal: Pick the plan for the team
        options: [starter, team]
        context: '${ {team_size: .team_size} }'
  - change:
      call: billing.change_plan
      with:
        plan: ${ .option }
        monthly_price: '${ {starter: 10, team: 90}[.option] }'
YAML
cat >"$work/change_plan.py" <<'PY'
#!/usr/bin/env python3
import json, sys
request = json.load(sys.stdin)
print(json.dumps({"plan": request["plan"]}))
PY
chmod +x "$work/change_plan.py"
cat >"$work/tools.yaml" <<'YAML'
tools:
  billing.change_plan:
    description: Change a subscription's plan
    effect: write
    risk: high
    command: {command: ./change_plan.py}
YAML
cat >"$work/agents.yaml" <<'YAML'
default: planner
agents:
  planner:
    kind: scripted
    rules:
      - when: [{path: /context/team_size, gte: 10}]
        option: team
        rationale: Ten or more people share billing.
    otherwise: {option: starter, rationale: Small teams start small.}
  always-team:
    kind: scripted
    otherwise: {option: team, rationale: Everyone is a team.}
YAML
cat >"$work/policy.yaml" <<'YAML'
version: 1
name: billing
rules:
  - id: small-changes
    tools: [billing.change_plan]
    when: [{path: /arguments/monthly_price, lte: 100}]
    decision: allow
YAML
cat >"$work/frozen.yaml" <<'YAML'
version: 1
name: frozen
rules:
  - id: no-changes
    tools: [billing.change_plan]
    decision: deny
YAML
cat >"$work/steps.yaml" <<'YAML'
version: 1
rules:
  - id: small-changes
    tools: [billing.change_plan]
    decision: allow
budgets: {steps: 1}
YAML
printf 'version: 1\nrules:\n  - id: x\n    decision: maybe\n' >"$work/bad_policy.yaml"
# summary_field FIELD: FIELD of the last line's {"summary": {...}}.
summary_field() {
  tail -1 "$work/out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["summary"][sys.argv[1]])' "$1"
}
g() { run --data "$data" --tools "$work/tools.yaml" --agents "$work/agents.yaml" "$@"; }

g workflow apply "$work/plan.yaml"
check "the plan workflow applies" exit_is 0
g policy apply "$work/policy.yaml"
check "the policy applies" exit_is 0
g run start billing/plan --wait --id small --input '{"team_size": 3}'
check "the small team's run completes (starter, allowed)" exit_is 0
g run start billing/plan --wait --id team --input '{"team_size": 12}'
check "the team's run completes (team, allowed)" exit_is 0

g replay --all --policy "$work/policy.yaml"
check "the recorded policy: exit 0" exit_is 0
check "the recorded policy: no run differs (4 runs, 10 points)" \
  out_has "; 0 of 4 runs would have differed at 0 of 10 points;"

g replay --all --policy "$work/frozen.yaml"
check "a denying policy: differences alone exit 0" exit_is 0
check "a header per run that differs" out_has_e "^run small would have differed at 1 of 3 points:$"
check "one line per verdict that differs" \
  out_has_e "^  seq [0-9]+ /do/1/change: policy_verdict billing.change_plan allow \(rule small-changes\) -> deny \(rule no-changes: denied_by_rule\)$"
check "both runs of the plan differ, once each" [ "$(grep -c "policy_verdict billing" "$work/out")" -eq 2 ]
check "the summary counts runs and points" \
  out_has "replayed 4 runs: 4 matched, 0 diverged; 2 of 4 runs would have differed at 2 of 10 points;"

g replay small team --policy "$work/frozen.yaml" -o json
check "-o json: exit 0" exit_is 0
check "-o json: valid JSON lines" valid_jsonl
check "-o json: two differences and a summary" out_lines 3
check "-o json: the difference's kind" out_has '"kind":"policy_verdict"'
check "-o json: the recorded side" \
  out_has '"recorded":{"decision":"allow","reason_code":"allowed_by_rule","rule_id":"small-changes","tool":"billing.change_plan"}'
check "-o json: the counterfactual side" out_has '"counterfactual":{"approvers":\[\],"decision":"deny"'
check "-o json: the summary's points" [ "$(summary_field points)" = 6 ]
check "-o json: the summary's runs_with_differences" \
  [ "$(summary_field runs_with_differences)" = 2 ]
check "-o json: the summary's differences" [ "$(summary_field differences)" = 2 ]

g replay team --policy "$work/steps.yaml"
check "a lower step cap: exit 0" exit_is 0
check "a lower step cap stops the run at the second task" \
  out_has_e "^  seq [0-9]+ /do/1/change: budget steps none -> 1: the run would have stopped here \(budget_exhausted: steps; 2 over a cap of 1\)$"

g replay --all --agent always-team
check "another agent: exit 0" exit_is 0
check "the small team's decision differs" \
  out_has_e "^  seq [0-9]+ /do/0/choose: agent_decision planner chose starter -> always-team chose team$"
check "the summary counts the decisions" \
  out_has "; 1 of 4 runs would have differed at 1 of 2 points;"

g replay small --agent always-team --policy "$work/frozen.yaml" -o json
check "both flags together: exit 0" exit_is 0
check "both flags together: a decision and a verdict" \
  [ "$(grep -c '"difference"' "$work/out")" -eq 2 ]
check "both flags together: points" [ "$(summary_field points)" = 4 ]

g replay --all --definition "$work/changed.yaml" --policy "$work/frozen.yaml"
check "a divergence still exits 1 with --policy" exit_is 1

g replay --all --policy "$work/bad_policy.yaml"
check "a bad --policy file: one line, exit 2" one_line_error 2 "bad_policy.yaml"
g replay --all --policy "$work/none.yaml"
check "a missing --policy file: one line, exit 2" one_line_error 2 "none.yaml"
g replay --all --agent nobody
check "an unknown --agent: one line, exit 2" one_line_error 2 "no agent named 'nobody'"
run --data "$data" replay --all --agent always-team
check "--agent without an agents file: one line, exit 2" one_line_error 2 "no agents file"

# ---- replay wrote nothing ----
run --data "$data" log verify
check "every run's hash chain verifies" out_has "all chains intact"

echo "replay_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
