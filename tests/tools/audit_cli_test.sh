#!/usr/bin/env bash
# End-to-end test of the audit commands on runs of the seed scenario (examples/plan-change):
# `cairn trace` (text and JSON: decisions, verdicts, approvals, commits, the stop, with who
# and why), `cairn audit verify` (clean; the run header checks are unit-tested with the
# store), `cairn export` (JSON lines whose hashes chain, re-checked here from --bytes
# without cairn), and their one-line errors. No sleeps.
#
#   tests/tools/audit_cli_test.sh PATH_TO_CAIRN
set -euo pipefail

cairn=${1:?usage: audit_cli_test.sh PATH_TO_CAIRN}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-audit-cli-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data"
unset CAIRN_DATA CAIRN_TOOLS CAIRN_AGENTS
export CAIRN_DEMO_LEDGER="$work/ledger.jsonl"
passed=0
failed=0

# shellcheck source=cli_lib.sh
source "$(dirname "$0")/cli_lib.sh"

field_is() { [ "$(json_field "$1")" = "$2" ]; }
x="$root/examples/plan-change"
g() { run --data "$data" --tools "$x/tools.yaml" --agents "$x/agents.yaml" "$@"; }

g workflow apply "$x/workflow.yaml"
g policy apply "$x/policy.yaml"
g run start plan-change --wait --id small --input '{"account_id": "acme", "team_size": 12}'
check "a run of the seed scenario completes" exit_is 0
g run start plan-change --wait --id big --input '{"account_id": "acme", "team_size": 30}'
g --as alice run approve big --reason "budgeted for Q3"
check "a run approved by alice completes" exit_is 0

# ---- trace ----
run --data "$data" trace big
check "trace works read-only" exit_is 0
check "trace shows the start and who started it" out_has_e "^0 .* start +cli +examples/plan-change:1.0.0"
check "trace shows the agent's decision and its rationale" \
  out_has_e "decision +agent planner \(scripted\) +chose business of .* — Business is"
check "trace shows the verdict, its rule and the policy" \
  out_has_e "verdict +policy rule large-plan-changes \(sha256:[0-9a-f]{12}\) +require_approval billing.change_plan"
check "trace shows who approved and why" out_has_e "approval +alice +a[0-9]+ approved — budgeted for Q3"
check "trace shows the re-check before the commit" out_has "checked again before the commit"
check "trace shows the commit with its key" out_has_e "commit +workflow +billing.change_plan .* — key big#[0-9]+, idempotent"
check "trace shows the stop" out_has_e "stop +workflow +completed"
run --data "$data" -o json trace big
check "trace -o json: JSON lines" valid_jsonl
check "trace -o json has what, by and why" \
  test "$(json_field what | sort -u | tr '\n' ' ')" = "approval budget commit decision done outcome read route start stop timer verdict "
run --data "$data" trace nope
check "trace of an unknown run: one line, exit 2" one_line_error 2 "nope"

# ---- audit verify ----
run --data "$data" audit verify
check "audit verify: all clean" out_has "verified 2 runs"
check "audit verify exits 0" exit_is 0
run --data "$data" audit verify big --all
check "run ids and --all: one line, exit 2" one_line_error 2 "not both"
run --data "$data" -o json audit verify small
check "audit verify -o json: a report per run" field_is ok True
run --data "$work/none" audit verify
check "audit verify of a missing directory: one line, exit 2" one_line_error 2 "does not exist"

# ---- export ----
run --data "$data" export --all --bytes
check "export --all: JSON lines" valid_jsonl
events=$(wc -l <"$work/out")
run --data "$data" log list -o json
total=$(python3 -c 'import json,sys; print(sum(json.loads(l)["next_seq"] for l in sys.stdin))' <"$work/out")
check "export --all has every event" test "$events" -eq "$total"
run --data "$data" export --all --bytes
check "the exported chain re-checks without cairn" python3 -c '
import base64, hashlib, json, sys
prev = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    prev_hash = e["prev_hash"] or "0" * 64  # null for the first event (32 zero bytes)
    assert prev_hash == prev.get(e["run_id"], "0" * 64), (e["run_id"], e["seq"], "prev_hash")
    h = hashlib.sha256(bytes.fromhex(prev_hash) + base64.b64decode(e["bytes_base64"])).hexdigest()
    assert h == e["hash"], (e["run_id"], e["seq"], "hash")
    prev[e["run_id"]] = h
' "$work/out"
run --data "$data" export big --format jsonl
check "export RUN: stable fields" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert set(e) == {"run_id", "seq", "time", "time_ns", "prev_hash", "task_path", "kind", "body", "hash"}, set(e)
' "$work/out"
run --data "$data" export --all --workflow examples/other
check "export --workflow filters" test ! -s "$work/out"
run --data "$data" export
check "export without runs: one line, exit 2" one_line_error 2 "or --all"
run --data "$data" export big --workflow examples/plan-change
check "--workflow without --all: one line, exit 2" one_line_error 2 "goes with --all"

echo "audit_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
