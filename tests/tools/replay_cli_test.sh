#!/usr/bin/env bash
# End-to-end test of `cairn replay`: runs made by the embedded engine (a tool call, an
# approval, a switch) replay with no divergence from the data directory, read-only; a
# definition with a changed expression diverges at the task it changes (exit 1); the
# unchanged definition never does; usage errors are one line, exit 2. No sleeps.
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

# ---- replay wrote nothing ----
run --data "$data" log verify
check "every run's hash chain verifies" out_has "all chains intact"

echo "replay_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
