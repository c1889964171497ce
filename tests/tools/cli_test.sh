#!/usr/bin/env bash
# End-to-end test of the `cairn` CLI: the event-log demo, `log list/dump/verify`, their
# JSON output, and the one-line errors for missing, foreign, damaged and locked data
# directories. No sleeps: a lock holder is simulated with flock(1) on the lock file,
# which is exactly what a running owner holds.
#
#   tests/tools/cli_test.sh PATH_TO_CAIRN
set -euo pipefail

cairn=${1:?usage: cli_test.sh PATH_TO_CAIRN}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-cli-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data"
passed=0
failed=0

# shellcheck source=cli_lib.sh
source "$(dirname "$0")/cli_lib.sh"

# ---- the demo ----
run --data "$data" log demo
check "demo writes runs" exit_is 0
check "demo reports commit groups" out_has "group-committed in"
check "demo suggests the next commands" out_has "log verify"
run --data "$data" log demo --runs 4
check "demo runs again on the same directory" exit_is 0
run --data "$data" -o json log demo --runs 4
check "demo -o json is one JSON object" valid_jsonl
check "demo --runs 4 writes 4 runs" \
  test "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))' <"$work/out")" = 4

# ---- list ----
run --data "$data" log list
check "list exits 0" exit_is 0
check "list has a header" out_has "^RUN  *STATUS  *WORKFLOW  *EVENTS  *UPDATED"
check "list shows 16 runs" out_lines 17
check "list shows refund triage" out_has "billing/refund-triage@1.2.0"
check "list shows plan change" out_has "billing/plan-change@2.0.1"
check "list shows a run waiting" out_has " waiting "
check "list shows a rejected run" out_has "failed (approval_denied)"
run --data "$data" log list -o json
check "list -o json (after the command) is JSON lines" valid_jsonl
check "list -o json has 16 runs" out_lines 16
run --data "$data" -o json log list --status waiting
check "list --status waiting finds the 4 waiting runs" out_lines 4
run --data "$data" log list --status sleeping
check "list --status with a bad name fails in one line" one_line_error 2 "sleeping"
run --data "$data" -o json log list --limit 5
check "list --limit 5" out_lines 5
check "list --limit says how to get the next page" err_has "--after"
last=$(json_field run_id | tail -n 1)
run --data "$data" -o json log list --after "$last"
check "list --after gives the rest" out_lines 11
CAIRN_DATA="$data" run log list -o json
check "CAIRN_DATA chooses the directory" out_lines 16

# ---- dump ----
run --data "$data" -o json log list --status completed
plan=""
for id in $(json_field run_id); do
  run --data "$data" log dump "$id"
  if out_has '"plan-change"'; then
    plan=$id
    break
  fi
done
check "found a completed plan-change run" test -n "$plan"
run --data "$data" log dump "$plan"
check "dump prints valid JSON lines" valid_jsonl
check "dump starts with run_started" \
  test "$(json_field kind | sed -n 1p)" = run_started
check "dump ends with run_stopped" test "$(json_field kind | tail -n 1)" = run_stopped
check "dump sequence numbers are 0..n-1" \
  test "$(json_field seq | tr '\n' ' ')" = "$(seq -s ' ' 0 $(($(wc -l <"$work/out") - 1))) "
run --data "$data" -o text log dump "$plan" --from 2 --limit 3
check "dump --from 2 --limit 3 is JSON whatever -o says" valid_jsonl
check "dump --from 2 --limit 3 gives seq 2..4" test "$(json_field seq | tr '\n' ' ')" = "2 3 4 "
run --data "$data" log dump "$plan" --from 1000
check "dump past the end of a run is empty" exit_is 0
kinds=$(for id in $("$cairn" --data "$data" -o json log list | python3 -c \
  'import json,sys; [print(json.loads(l)["run_id"]) for l in sys.stdin]'); do
  "$cairn" --data "$data" log dump "$id"
done | python3 -c 'import json,sys; print(" ".join({json.loads(l)["kind"] for l in sys.stdin}))')
for kind in run_started task_routed agent_decided policy_verdict approval_requested \
  approval_resolved effect_intent effect_outcome timer_scheduled timer_fired task_completed \
  budget_charged run_stopped; do
  check "the demo writes $kind" grep -qw "$kind" <<<"$kinds"
done
run --data "$data" log dump 01NOSUCHRUN
check "dump of an unknown run: one line, exit 2" one_line_error 2 "run 01NOSUCHRUN not found"
run --data "$data" log dump 01NOSUCHRUN --from 5
check "dump --from of an unknown run: one line, exit 2" one_line_error 2 "not found"
run --data "$data" log dump 'not a run id'
check "dump of a malformed run id: one line, exit 2" one_line_error 2 "run id"

# ---- verify ----
run --data "$data" log verify
check "verify exits 0" exit_is 0
check "verify says all chains are intact" out_has "verified 16 runs, .* events: all chains intact"
run --data "$data" log verify "$plan"
check "verify one run" out_has "verified 1 run,"
run --data "$data" -o json log verify
check "verify -o json prints a report per run" out_lines 16
check "verify -o json reports are ok" test "$(json_field ok | sort -u)" = True
run --data "$data" log verify "$plan" 01NOSUCHRUN
check "verify of an unknown run: exit 2" exit_is 2
check "verify of an unknown run names it" err_has "run 01NOSUCHRUN not found"

# ---- a tampered event ----
# Rewrites bytes inside one event in the write-ahead log and re-seals the WAL record's
# CRC32C, as someone editing the database would: RocksDB accepts the record, and only the
# hash chain can tell.
cat >"$work/tamper.py" <<'PYEOF'
import glob, struct, sys

def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table

TABLE = crc32c_table()

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

def tamper(db, old, new):
    assert len(old) == len(new)
    for path in sorted(glob.glob(db + "/*.log")):
        data = bytearray(open(path, "rb").read())
        pos = 0
        while pos + 7 <= len(data):
            block_left = 32768 - pos % 32768
            if block_left < 7:
                pos += block_left
                continue
            length = struct.unpack_from("<H", data, pos + 4)[0]
            start, end = pos + 7, pos + 7 + length
            at = data.find(old, start, end)
            if at >= 0:
                data[at:at + len(old)] = new
                crc = masked(crc32c(bytes(data[pos + 6:end])))
                struct.pack_into("<I", data, pos, crc)
                open(path, "wb").write(data)
                return 0
            pos = end
    return 1

sys.exit(tamper(sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()))
PYEOF
cp -a "$data" "$work/tampered"
check "tamper with an event in a copy" python3 "$work/tamper.py" "$work/tampered/db" \
  "cracked jug" "CRACKED JUG"
run --data "$work/tampered" log verify
check "verify of a tampered store exits 1" exit_is 1
check "verify names the first bad seq" out_has "^[0-9A-Z]*: first bad seq [0-9]*: chain broken"
check "verify counts the failed run" out_has "^1 of 16 runs failed verification"
bad_run=$(sed -n 's/^\([0-9A-Z]*\): first bad seq.*/\1/p' "$work/out")
run --data "$work/tampered" -o json log verify "$bad_run"
check "verify -o json of the tampered run reports ok=false" test "$(json_field ok)" = False
check "verify of the tampered run alone exits 1" exit_is 1

# ---- usage ----
run --version
check "--version" out_has "^cairn "
run --data "$data" log
check "log without a command: one line, exit 2" one_line_error 2 "cairn log --help"
run --data "$data" -o TEXT log list
check "-o is case-insensitive" out_has "^RUN "
run --data "$data" -o xml log list
check "-o xml: one line, exit 2" one_line_error 2 "xml"
run --data "$data" log list --bogus
check "unknown option: one line, exit 2" one_line_error 2 "bogus"

# ---- directories that cannot be read ----
run --data "$work/missing" log list
check "missing directory: one line, exit 2" one_line_error 2 "$work/missing does not exist"
mkdir "$work/empty"
run --data "$work/empty" log verify
check "directory without a store: one line, exit 2" one_line_error 2 "no cairn store in $work/empty"
touch "$work/file"
run --data "$work/file" log list
check "a file, not a directory: one line, exit 2" one_line_error 2 "not a directory"

cp -a "$data" "$work/no-current"
mv "$work/no-current/db/CURRENT" "$work/no-current/db/CURRENT.moved"
run --data "$work/no-current" log list
check "store without db/CURRENT: one line, exit 2" one_line_error 2 "$work/no-current"

cp -a "$data" "$work/bad-current"
printf 'garbage' >"$work/bad-current/db/CURRENT"
run --data "$work/bad-current" log verify
check "store with a damaged db/CURRENT: one line, exit 2" one_line_error 2 "$work/bad-current"

cp -a "$data" "$work/bad-manifest"
manifest=$(ls "$work/bad-manifest"/db/MANIFEST-* | head -n 1)
size=$(stat -c %s "$manifest")
printf 'cairn test corruption in the middle of the MANIFEST' |
  dd of="$manifest" bs=1 seek=$((size / 2)) conv=notrunc status=none
run --data "$work/bad-manifest" log list
check "store with a damaged MANIFEST: one line, exit 2" one_line_error 2 "$work/bad-manifest"

# ---- beside a lock holder ----
if command -v flock >/dev/null; then
  under_lock --data "$data" -o json log list
  check "list works while another process holds the lock" out_lines 16
  under_lock --data "$data" log verify
  check "verify works while another process holds the lock" exit_is 0
  under_lock --data "$data" log demo
  check "demo on a locked directory: one line, exit 2" one_line_error 2 "is in use by"
else
  echo "skip  lock holder cases: flock(1) is not installed"
fi

echo "cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
