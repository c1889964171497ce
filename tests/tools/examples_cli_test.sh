#!/usr/bin/env bash
# examples/README.md, run as written: every ```sh block except the ones that build, call a
# model or run the unit tests, with `cairn` the binary under test and the data
# directories and ledgers in a temporary directory instead of ./cairn-examples. Then the
# runs the README names are checked (status, stop reason, output) and the ledgers
# counted: each approved write once, nothing for a rejection, a denial or a budget stop.
#
#   tests/tools/examples_cli_test.sh PATH_TO_CAIRN
set -euo pipefail

cairn=${1:?usage: examples_cli_test.sh PATH_TO_CAIRN}
cairn=$(cd "$(dirname "$cairn")" && pwd)/$(basename "$cairn")
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-examples-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/unused"
unset CAIRN_DATA CAIRN_TOOLS CAIRN_AGENTS CAIRN_DEMO_LEDGER
passed=0
failed=0

# shellcheck source=cli_lib.sh
source "$(dirname "$0")/cli_lib.sh"

# ---- the README's commands ----
python3 - "$repo/examples/README.md" "$work" "$cairn" >"$work/readme.sh" <<'EOF'
import re, shlex, sys
readme, work, cairn = sys.argv[1:]
text = open(readme, encoding="utf-8").read()
print("cairn() { %s \"$@\"; }" % shlex.quote(cairn))
for block in re.findall(r"```sh\n(.*?)```", text, re.S):
    if any(word in block for word in ("cmake", "ollama", "gtest")):
        continue
    print(block.replace("$PWD/cairn-examples", work))
EOF
set +e
(cd "$repo" && bash "$work/readme.sh") >"$work/readme.out" 2>"$work/readme.err"
rc=$?
set -e
# What check() shows on a failure (short: its `head` would cut a long file's pipe).
tail -n 20 "$work/readme.out" >"$work/out"
tail -n 20 "$work/readme.err" >"$work/err"

# The only command that fails is the one the README says is refused.
check "the README's commands run; only fatima's approval is refused" \
  test "$(grep -c '^cairn: ' "$work/readme.err")" -eq 1
check "fatima is refused by name" grep -q "'fatima' may not answer" "$work/readme.err"
check "every workflow and policy validates" \
  test "$(grep -c ': ok' "$work/readme.out")" -eq 8

# describe EXAMPLE RUN: the run as JSON in $work/out.
describe() { run --data "$work/$1" -o json run describe "$2"; }
# is EXAMPLE RUN FIELD VALUE: the run's FIELD (dots go deeper) is VALUE.
is() {
  describe "$1" "$2"
  [ "$rc" -eq 0 ] && [ "$(json_field "$3")" = "$4" ]
}
ledger_lines() { file_lines "$work/$1.ledger.jsonl" "$2"; }

# ---- plan-change ----
check "plan-change: a team of 12 gets Team" is plan-change acme-12 output.plan team
check "plan-change: at 144 a month" is plan-change acme-12 output.monthly_price 144
check "plan-change: 30 people, approved by alice" is plan-change acme-30 output.plan business
check "plan-change: bob's rejection stops the run" is plan-change acme-25 stop_reason approval_denied
check "plan-change: the retry storm hits the budget" \
  is plan-change initech-12 stop_reason budget_exhausted
check "plan-change: two changes in the ledger" ledger_lines plan-change 2
run --data "$work/plan-change" run show acme-30
check "plan-change: show has the decision, the approval and the commit" \
  eval 'out_has "agent_decided" && out_has "approved by alice" && out_has "checked again before the commit"'

# ---- refund-triage ----
check "refund-triage: damaged goods refunded in full" is refund-triage b2001 output.refunded 25
check "refund-triage: over 1000 is denied" is refund-triage b2002-lost stop_reason policy_denied
check "refund-triage: 400 approved by mia" is refund-triage b2002 output.refunded 400
check "refund-triage: noah's rejection" is refund-triage b2002-late stop_reason approval_denied
check "refund-triage: three refunds and a ticket" ledger_lines refund-triage 4

# ---- invoice-approval ----
check "invoice-approval: matched invoice scheduled" is invoice-approval inv-1001 output.status scheduled
check "invoice-approval: approved by li" is invoice-approval inv-1002 output.amount 18500
check "invoice-approval: the CFO's rejection" is invoice-approval inv-1006 stop_reason approval_denied
check "invoice-approval: two payments and a hold" ledger_lines invoice-approval 3

# ---- refund ----
check "refund: the manager's signal" is refund big output.status refunded
check "refund: two refunds" ledger_lines refund 2

# ---- every example's runs replay ----
for example in plan-change refund-triage invoice-approval refund; do
  check "$example: every run replays and audits clean" replays_clean "$work/$example"
done

echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
  echo "--- README commands, stderr:" >&2
  tail -n 60 "$work/readme.err" | sed 's/^/  /' >&2
  exit 1
fi
