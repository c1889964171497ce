# Shared by the CLI tests (cli_test.sh, run_cli_test.sh): run cairn, record the outcome,
# count checks. The sourcing script sets $cairn, $work, $data, passed=0 and failed=0.

# run ARGS...: runs cairn; leaves stdout in $work/out, stderr in $work/err, status in $rc.
run() {
  set +e
  "$cairn" "$@" >"$work/out" 2>"$work/err" </dev/null
  rc=$?
  set -e
}
# run_stdin TEXT ARGS...: like run, with TEXT on stdin.
run_stdin() {
  local text=$1
  shift
  set +e
  "$cairn" "$@" >"$work/out" 2>"$work/err" <<<"$text"
  rc=$?
  set -e
}
# under_lock ARGS...: like run, while another process holds the data directory's lock.
# flock(1) holds the same flock(2) lock a running cairn holds on <data>/cairn.lock.
under_lock() {
  set +e
  flock "$data/cairn.lock" "$cairn" "$@" >"$work/out" 2>"$work/err" </dev/null
  rc=$?
  set -e
}

show() {
  echo "    exit $rc; stdout:" >&2
  sed 's/^/      /' "$work/out" | head -30 >&2
  echo "    stderr:" >&2
  sed 's/^/      /' "$work/err" | head -20 >&2
}

# check NAME COMMAND...: counts COMMAND's success as a pass.
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name" >&2
    show
  fi
}

exit_is() { [ "$rc" -eq "$1" ]; }
out_has() { grep -q -- "$1" "$work/out"; }
out_has_e() { grep -Eq -- "$1" "$work/out"; }
err_has() { grep -q -- "$1" "$work/err"; }
out_lines() { [ "$(wc -l <"$work/out")" -eq "$1" ]; }
file_lines() { [ -f "$1" ] && [ "$(wc -l <"$1")" -eq "$2" ]; }
# One line on stderr, starting with "cairn: ", containing $2, and exit status $1.
one_line_error() {
  [ "$rc" -eq "$1" ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q '^cairn: ' "$work/err" &&
    grep -q -- "$2" "$work/err"
}
valid_jsonl() {
  [ -s "$work/out" ] &&
    python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$work/out"
}
# json_field FIELD: prints FIELD (dots go deeper: output.greeting) of every JSON line.
json_field() {
  python3 -c '
import json, sys
for line in sys.stdin:
    value = json.loads(line)
    for key in sys.argv[1].split("."):
        value = value[key] if value is not None else None
    print(value if not isinstance(value, (dict, list)) else json.dumps(value, sort_keys=True))
' "$1" <"$work/out"
}

# replays_clean DIR [GLOBAL_FLAGS...]: every run in the data directory DIR replays from its
# log with no divergence, and every hash chain and run header verifies (DESIGN.md §9): the
# runs a CLI test makes are evidence for replay too. Leaves the audit's output in $work/out.
replays_clean() {
  local dir=$1
  shift
  run --data "$dir" "$@" replay --all
  [ "$rc" -eq 0 ] && out_has_e '^replayed [1-9][0-9]* runs?: [0-9]+ matched, 0 diverged;' ||
    return 1
  run --data "$dir" "$@" audit verify --all
  [ "$rc" -eq 0 ] && out_has "all chains intact"
}

# write_change_plan_tool: a catalog ($work/tools.yaml) with billing.change_plan, a write run
# as a command ($work/change_plan.py) that appends "IDEMPOTENCY_KEY PLAN" to
# $work/changes.txt for each call, so a test can count the changes made.
write_change_plan_tool() {
  cat >"$work/change_plan.py" <<'EOF'
#!/usr/bin/env python3
import json, os, sys
request = json.load(sys.stdin)
with open(os.environ["CHANGES_FILE"], "a", encoding="utf-8") as out:
    out.write(os.environ.get("CAIRN_IDEMPOTENCY_KEY", "") + " " + request["plan"] + "\n")
print(json.dumps({"plan": request["plan"], "active": True}))
EOF
  chmod +x "$work/change_plan.py"
  cat >"$work/tools.yaml" <<EOF
tools:
  billing.change_plan:
    description: Change a subscription's plan
    effect: write
    risk: high
    idempotent: true
    command: {command: ./change_plan.py, environment: {CHANGES_FILE: '$work/changes.txt'}}
    timeout: 10s
EOF
}
