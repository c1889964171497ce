#!/usr/bin/env bash
# End-to-end test of `cairn policy validate` and `cairn policy explain`: the example of
# policy/README.md validates and explains as documented, verdicts of every kind (rule,
# default, kill switch, approval settings, agent tools, conditions on --arguments given
# inline, @FILE and @-), text and JSON output, invalid policies (every problem on stderr,
# exit 1) and bad usage (one line, exit 2). Needs no data directory.
#
#   tests/tools/policy_cli_test.sh PATH_TO_CAIRN
set -euo pipefail

cairn=${1:?usage: policy_cli_test.sh PATH_TO_CAIRN}
here=$(cd "$(dirname "$0")" && pwd)
readme="$here/../../policy/README.md"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-policy-cli-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data"
unset CAIRN_DATA CAIRN_TOOLS
passed=0
failed=0

# shellcheck source=cli_lib.sh
source "$here/cli_lib.sh"

field_is() { [ "$(json_field "$1")" = "$2" ]; }
out_is() { [ "$(cat "$work/out")" = "$1" ]; }
err_lines() { [ "$(wc -l <"$work/err")" -eq "$1" ]; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---- fixtures ----
# The full example of policy/README.md: the first yaml block after "## The file".
python3 - "$readme" "$work/example.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r"```yaml\n(.*?)```", text[text.index("## The file"):], re.S)
open(sys.argv[2], "w").write(block.group(1))
EOF
example="$work/example.yaml"
example_hash=$(sha256_of "$example")

cat >"$work/bad.yaml" <<'EOF'
version: 1
rules:
  - {id: a}
  - {id: a, decision: allow, tool: x}
  - id: c
    tools: ['bill*ing']
    decision: require_approval
EOF
cat >"$work/kill.yaml" <<'EOF'
version: 1
kill_switch: {runs: [run-13], reason: stuck in a loop}
rules:
  - {id: everything, decision: allow}
EOF
echo '{"monthly_price": 450, "current_plan": "team"}' >"$work/args.json"

# ---- validate ----
run policy validate "$example"
check "the README example validates" exit_is 0
check "ok line: rules and hash" out_is "$example: ok — 5 rules, policy sha256:$example_hash"
check "nothing on stderr" err_lines 0

run -o json policy validate "$example"
check "validate -o json: one valid JSON line" valid_jsonl
check "json: ok" field_is ok True
check "json: name" field_is name back-office
check "json: rules" field_is rules 5
check "json: hash is the file's SHA-256" field_is hash "$example_hash"
check "json: no problems" field_is problems "[]"

run policy validate "$work/bad.yaml"
check "an invalid policy: exit 1" exit_is 1
check "nothing on stdout" out_lines 0
check "every problem on stderr" err_lines 4
check "missing decision, with its position" \
  err_has "^cairn: $work/bad.yaml:3:5: rule 'a': rule: missing 'decision'"
check "duplicate id, naming the first" \
  err_has "^cairn: $work/bad.yaml:4:10: rule 'a': id: 'a' is already the id of the rule at line 3"
check "unknown key by name" err_has "$work/bad.yaml:4:30: rule 'a': rule: unknown key 'tool'"
check "bad glob" err_has "$work/bad.yaml:6:13: rule 'c': tools: not a tool pattern: 'bill\*ing'"

run -o json policy validate "$work/bad.yaml"
check "invalid -o json: exit 1" exit_is 1
check "json: ok false" field_is ok False
check "json: the problems" \
  bash -c "python3 -c 'import json,sys; v=json.load(sys.stdin); assert len(v[\"problems\"]) == 4' <'$work/out'"

run policy validate "$example" "$work/bad.yaml" "$work/kill.yaml"
check "several files: exit 1 when one is invalid" exit_is 1
check "the valid ones are reported" out_lines 2
check "with their hashes" out_has "kill.yaml: ok — 1 rule, policy sha256:$(sha256_of "$work/kill.yaml")"

run policy validate "$work/missing.yaml"
check "a missing file: one line, exit 2" one_line_error 2 "cannot read policy $work/missing.yaml"
run policy validate "$work"
check "a directory: one line, exit 2" one_line_error 2 "is a directory"
head -c 1100000 /dev/zero | tr '\0' '#' >"$work/huge.yaml"
run policy validate "$work/huge.yaml"
check "a file over the size limit: one line, exit 2" one_line_error 2 "larger than the limit"
printf 'version: 1\nrules: [\n' >"$work/syntax.yaml"
run policy validate "$work/syntax.yaml"
check "invalid YAML: exit 1 with a position" exit_is 1
check "  and the parser's message" err_has "syntax.yaml:3:1: invalid YAML"
printf -- '- version: 1\n' >"$work/list.yaml"
run policy validate "$work/list.yaml"
check "not a map: exit 1" exit_is 1
check "  says what it found" err_has "expected a policy (a map with version, defaults, rules, ...), found a list"

# ---- explain ----
run policy explain "$example" --workflow billing/plan-change --tool billing.change_plan \
  --risk medium --arguments '{"monthly_price": 400, "current_plan": "team"}'
check "explain: exit 0" exit_is 0
check "allowed by the matching rule" out_has "^decision       allow$"
check "rule id" out_has "^rule           small-plan-changes$"
check "reason code" out_has "^reason         allowed_by_rule$"
check "detail names rule, tool, workflow, condition and reason" out_has \
  "^detail         rule 'small-plan-changes' allows write tool 'billing.change_plan' for workflow 'billing/plan-change' (when /arguments/monthly_price lte 500): within the self-serve price range$"
check "the workflow's budgets (its own cost)" \
  out_has "^budgets        steps 200, wall_clock 2h, tokens 100000, cost 1.00, tool_calls 50$"
check "the policy and its hash" out_has "^policy         $example (sha256:$example_hash)$"

run policy explain "$example" --workflow billing/plan-change --tool billing.change_plan \
  --risk medium --arguments "@$work/args.json"
check "--arguments @FILE" out_has "^rule           small-plan-changes$"
run_stdin '{"monthly_price": 900}' policy explain "$example" --workflow billing/plan-change \
  --tool billing.change_plan --risk medium --arguments @-
check "--arguments @-: above the range needs approval" out_has "^decision       require_approval$"
check "approval expiry from the rule" out_has "^expires after  2h (7200000 ms)$"
check "approvers from the rule" out_has "^approvers      carol$"

run_stdin '{"current_plan": "enterprise", "monthly_price": 10}' policy explain "$example" \
  --workflow billing/plan-change --tool billing.change_plan --risk low --arguments @-
check "the first matching rule decides" out_has "^rule           no-enterprise-downgrades$"
check "  a deny" out_has "^reason         denied_by_rule$"

run policy explain "$example" --workflow shop/order --tool crm.update_contact
check "no rule: writes are denied by default" out_has "^decision       deny$"
check "  rule defaults.write" out_has "^rule           defaults.write$"
check "  reason" out_has "^reason         denied_by_default$"
check "  detail" out_has \
  "^detail         no rule allows write tool 'crm.update_contact' for workflow 'shop/order'; writes are denied by default$"
check "  the file's budgets" \
  out_has "^budgets        steps 200, wall_clock 2h, tokens 100000, cost 2.50, tool_calls 50$"

run policy explain "$example" --workflow shop/order --tool crm.get_account --effect read --for-agent
check "an agent's read tool" out_has "^rule           agents-read-crm$"
run policy explain "$example" --workflow shop/order --tool crm.get_account --effect read
check "the same tool called by the workflow: reads allowed by default" \
  out_has "^rule           defaults.read$"
check "  allowed" out_has "^reason         allowed_by_default$"

run policy explain "$example" --workflow experiments/ab-test --tool docs.search --effect read \
  --risk low
check "a kill switch denies even reads" out_has "^rule           kill_switch$"
check "  detail names the workflow, the pattern and the reason" out_has \
  "^detail         the policy's kill switch covers workflow 'experiments/ab-test' (as 'experiments/\*'): incident 42$"
run policy explain "$work/kill.yaml" --workflow a/b --tool t --run run-13
check "a kill switch by run id" out_has \
  "^detail         the policy's kill switch covers run 'run-13': stuck in a loop$"
run policy explain "$work/kill.yaml" --workflow a/b --tool t --run run-14
check "another run is not covered" out_has "^rule           everything$"
check "no budgets: no caps" out_has "^budgets        no caps$"

run policy explain "$example" --workflow nightly-report --tool http
check "an inline call" out_has "^rule           no-inline-calls$"
check "a workflow entry by name in any namespace" \
  out_has "^budgets        wall_clock 6h, tokens 100000, cost 2.50, tool_calls 50$"

run -o json policy explain "$example" --workflow shop/order --tool billing.change_plan \
  --arguments '{"monthly_price": 501}'
check "explain -o json: one JSON line" valid_jsonl
check "json: decision" field_is decision require_approval
check "json: rule_id" field_is rule_id big-plan-changes
check "json: reason_code" field_is reason_code approval_required_by_rule
check "json: approval" field_is approval '{"approvers": ["carol"], "expires_after_ms": 7200000}'
check "json: budgets" field_is budgets \
  '{"cost_micros": 2500000, "steps": 200, "tokens": 100000, "tool_calls": 50, "wall_ms": 7200000}'
check "json: hash" field_is hash "$example_hash"
run -o json policy explain "$example" --workflow shop/order --tool crm.x
check "json: no approval for a deny" field_is approval None

# ---- explain: bad input ----
run policy explain "$work/bad.yaml" --workflow a/b --tool t
check "explain with an invalid policy: exit 1" exit_is 1
check "  its problems on stderr" err_lines 4
run policy explain "$work/missing.yaml" --workflow a/b --tool t
check "explain with a missing policy: one line, exit 2" one_line_error 2 "cannot read policy"
run policy explain "$example" --workflow a/b/c --tool t
check "a bad --workflow: one line, exit 2" one_line_error 2 "is not a workflow"
run policy explain "$example" --workflow /b --tool t
check "an empty namespace: one line, exit 2" one_line_error 2 "is not a workflow"
run policy explain "$example" --workflow a/b --tool t --arguments '{"a":'
check "bad --arguments JSON: one line, exit 2" one_line_error 2 "--arguments"
run policy explain "$example" --workflow a/b --tool t --arguments "@$work/none.json"
check "a missing --arguments file: one line, exit 2" one_line_error 2 "none.json"
run policy explain "$example" --tool t
check "--workflow is required: one line, exit 2" one_line_error 2 "--workflow is required"
run policy explain "$example" --workflow a/b --tool t --risk extreme
check "an unknown --risk: one line, exit 2" one_line_error 2 "--risk"
run policy explain "$example" --workflow a/b --tool t --effect delete
check "an unknown --effect: one line, exit 2" one_line_error 2 "--effect"
run policy
check "policy without a command: one line, exit 2" one_line_error 2 "cairn policy --help"
check "nothing was created" test ! -e "$data"

echo "policy_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
