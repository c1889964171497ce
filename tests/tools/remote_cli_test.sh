#!/usr/bin/env bash
# End-to-end test of the CLI's remote mode (--address URL, $CAIRN_ADDRESS): a `cairn serve`
# on 127.0.0.1 (a port the kernel picks) with a token file (reader, operator, two
# approvers, admin), and every `run`, `workflow` and `kill` command through its API:
# apply, start (idempotent --id, --wait through a timer, to an approval, to completion),
# list/describe/show compared byte for byte with the embedded read-only commands on the
# same directory, signal, cancel, kill, approve/reject, resolve, kill switches; refusals
# by role, a bad or missing token, --as, an unreachable server, bad addresses, and the
# commands that stay local. The server stops on SIGTERM with exit 0, then every run
# replays and audits clean. No traffic leaves 127.0.0.1; no sleeps.
#
#   tests/tools/remote_cli_test.sh PATH_TO_CAIRN
set -euo pipefail

cairn=${1:?usage: remote_cli_test.sh PATH_TO_CAIRN}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-remote-cli-test.XXXXXX")
data="$work/data"
unset CAIRN_DATA CAIRN_TOOLS CAIRN_AGENTS CAIRN_ADDRESS CAIRN_TOKEN CAIRN_TOKENS
passed=0
failed=0
server_pid=""
url=""

cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=cli_lib.sh
source "$(dirname "$0")/cli_lib.sh"

field_is() { [ "$(json_field "$1")" = "$2" ]; }
changes() { if [ -f "$work/changes.txt" ]; then wc -l <"$work/changes.txt"; else echo 0; fi; }
# as WHO ARGS...: cairn through the server with WHO's token (from its token file).
as() {
  local who=$1
  shift
  run --address "$url" --token-file "$work/$who.token" "$@"
}
# local_run ARGS...: cairn on the data directory (embedded, read-only beside the server).
local_run() { run --data "$data" "$@"; }
# same_as_embedded WHO ARGS...: ARGS through the server as WHO print exactly what they
# print on the data directory, with the same exit code.
same_as_embedded() {
  local who=$1
  shift
  local_run "$@"
  cp "$work/out" "$work/embedded.out"
  local embedded_rc=$rc
  as "$who" "$@"
  if [ "$rc" -eq "$embedded_rc" ] && [ -s "$work/out" ] && cmp -s "$work/out" "$work/embedded.out"; then
    return 0
  fi
  echo "    embedded exit $embedded_rc; diff embedded remote:" >&2
  diff "$work/embedded.out" "$work/out" | head -20 >&2 || true
  return 1
}

start_server() {
  rm -f "$work/serve.fifo"
  mkfifo "$work/serve.fifo"
  "$cairn" --data "$data" --tools "$work/tools.yaml" serve --listen 127.0.0.1:0 \
    --tokens "$work/tokens.yaml" >"$work/serve.fifo" 2>"$work/serve.err" &
  server_pid=$!
  exec 3<"$work/serve.fifo"
  local line=""
  read -r -t 60 line <&3 || true
  url=${line##* on }
  [[ "$url" == http://127.0.0.1:* ]]
}
stop_server() {
  kill -TERM "$server_pid"
  set +e
  wait "$server_pid"
  server_rc=$?
  set -e
  server_pid=""
  exec 3<&-
  [ "$server_rc" -eq 0 ]
}

# ---- fixtures ----
mkdir -p "$work/wf"
cat >"$work/wf/wait.yaml" <<'EOF'
document: {dsl: '1.0.3', namespace: demo, name: wait, version: '1.0.0'}
do:
  - hello:
      set:
        greeting: '${ "hello " + .name }'
  - wait:
      listen:
        to:
          one:
            with: {type: demo.go}
EOF
cat >"$work/wf/pause.yaml" <<'EOF'
document: {dsl: '1.0.3', namespace: demo, name: pause, version: '1.0.0'}
do:
  - pause:
      wait: {milliseconds: 200}
  - after:
      set: {waited: true}
EOF
cat >"$work/wf/nap.yaml" <<'EOF'
document: {dsl: '1.0.3', namespace: demo, name: nap, version: '1.0.0'}
do:
  - nap:
      wait: {hours: 1}
EOF
cat >"$work/wf/plan.yaml" <<'EOF'
document: {dsl: '1.0.3', namespace: billing, name: plan-change, version: '1.0.0'}
input:
  schema:
    document:
      type: object
      required: [plan, price]
do:
  - change:
      call: billing.change_plan
      with:
        plan: ${ .plan }
        monthly_price: ${ .price }
EOF
cat >"$work/wf/slow.yaml" <<'EOF'
document: {dsl: '1.0.3', namespace: demo, name: slow, version: '1.0.0'}
do:
  - nap:
      run:
        shell:
          command: 'sleep 30'
EOF
cat >"$work/wf/invalid.yaml" <<'EOF'
document: {dsl: '1.0.3', namespace: demo, name: invalid, version: '1.0.0'}
do:
  - oops:
      sett:
        a: 1
EOF
sed 's/greeting:/greeting2:/' "$work/wf/wait.yaml" >"$work/wf/wait-changed.yaml"
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
  - {id: inline-shell, tools: [shell], decision: allow}
EOF

# ---- before the server: a run blocked on an effect of unknown outcome (embedded) ----
local_run workflow apply "$work/wf/slow.yaml"
check "embedded apply before the server" exit_is 0
local_run policy apply "$work/policy.yaml"
check "apply the policy (policy commands stay local)" exit_is 0
local_run run start slow --id slow-1 --wait --timeout 300ms
check "the slow run is cut off by its engine's close" exit_is 1
local_run run resume --timeout 60s
check "resume parks it for an operator" out_has_e "^slow-1 +blocked .*indeterminate_effect"

# ---- tokens, and the server ----
for entry in ro:reader ops:operator alice:approver mallory:approver root:admin; do
  name=${entry%%:*}
  "$cairn" serve token add "$name" --role "${entry##*:}" --tokens "$work/tokens.yaml" \
    >"$work/$name.token" 2>/dev/null
done
chmod 600 "$work"/*.token
check "five tokens" test "$(grep -c sha256 "$work/tokens.yaml")" -eq 5
check "cairn serve starts on 127.0.0.1 and says where" start_server

# ---- workflow apply / list ----
as root workflow apply "$work/wf/wait.yaml" "$work/wf/pause.yaml" "$work/wf/plan.yaml" \
  "$work/wf/nap.yaml"
check "remote apply exits 0" exit_is 0
check "remote apply says what it applied" out_has "wait.yaml: applied demo/wait:1.0.0 (sha256:"
as root workflow apply "$work/wf/wait.yaml"
check "applying the same bytes again: unchanged" out_has "unchanged demo/wait:1.0.0 .*applied before"
as root -o json workflow apply "$work/wf/pause.yaml"
check "remote apply -o json" field_is created False
as root workflow apply "$work/wf/invalid.yaml" "$work/wf/wait.yaml"
check "an invalid file: exit 1, nothing applied" exit_is 1
check "its problem names FILE:LINE:COL" err_has "invalid.yaml:[0-9]*:[0-9]*: "
check "and nothing was sent" err_has "nothing applied"
as root workflow apply "$work/wf/wait-changed.yaml"
check "other bytes under an applied version: exit 1" exit_is 1
check "the refusal names the file" err_has "^cairn: .*wait-changed.yaml: "
as ops workflow apply "$work/wf/wait.yaml"
check "an operator may not apply definitions: one line, exit 2" one_line_error 2 "forbidden: 'ops' (operator) may not admin"
check "workflow list: the same as embedded" same_as_embedded ro workflow list
check "workflow list -o json: the same as embedded" same_as_embedded ro -o json workflow list
as ro workflow validate "$work/wf/wait.yaml"
check "workflow validate stays local" out_has "wait.yaml: ok (demo/wait:1.0.0"

# ---- run start ----
as ops run start demo/wait --input '{"name": "ann"}' --id w-1
check "start prints the run id" out_has "^w-1$"
check "start says where the run runs" err_has "started run w-1 of demo/wait on $url"
as ops -o json run start demo/wait --input '{"name": "ann"}' --id w-1
check "start again with the same --id: the same run" out_has '"created":false'
check "start again says nothing new started" err_has "was started before with this --id"
as ops run start demo/wait --id w-1 --wait
check "start --wait of an existing run follows it to where it parks" exit_is 0
check "it waits on its event" out_has_e "^waiting on +event for /do/1/wait \(type demo.go\)"
check "the note names the command that moves it on" err_has "cairn run signal w-1 --type demo.go"
as ops run start demo/wait --input '{"name": "bo"}' --id w-2 --wait
check "start --wait parked on an event: exit 0" exit_is 0
check "started by the token's owner" out_has_e "^started +.* by ops$"
as ops -o json run start demo/pause --wait
check "start --wait follows a run through its timer to the end" field_is status completed
check "its output" field_is output.waited True
as ops run start demo/nap --id nap-1 --wait --timeout 0
check "start --wait --timeout 0 of a run on a long timer: parked, exit 0" exit_is 0
check "it says the server goes on with it" err_has "the server goes on with it after "
as ops run cancel nap-1 --timeout 0
check "cancel a run waiting on a timer (--timeout 0): exit 0" exit_is 0
check "it is cancelled" out_has_e "^status +cancelled"
as ops run start billing/plan-change --input '{"plan": "team", "price": 90}' --id small --wait
check "a small plan change completes: exit 0" exit_is 0
check "the write ran once, on the server" test "$(changes)" -eq 1
as ops run start billing/plan-change --input '{"plan": "enterprise", "price": 900}' --id big --wait
check "a big one parks on an approval: exit 0" exit_is 0
check "describe shows the approval" out_has_e "^approval +.* to call billing.change_plan \(rule big-changes\)"
check "the note names approve and reject" err_has "run approve big"
as ops run start billing/plan-change --input '{"plan": "x"}'
check "input the workflow refuses: one line, exit 2" one_line_error 2 "starting billing/plan-change: "
as ops run start demo/nope
check "an unknown workflow: one line, exit 2" one_line_error 2 "demo/nope"
as ops run start demo/wait --input '{bad'
check "bad --input JSON is refused before anything is sent" one_line_error 2 "--input: invalid JSON"
as ro run start demo/wait --id nope
check "a reader may not start a run: one line, exit 2" one_line_error 2 "forbidden: 'ro' (reader) may not operate"

# ---- list / describe / show: the same bytes as the embedded read-only commands ----
for args in "run list" "-o json run list" "run list --status waiting" \
  "run list --workflow billing/plan-change" "-o json run list --limit 2" \
  "run describe w-1" "-o json run describe w-1" "run describe big" "-o json run describe big" \
  "run describe small" "-o json run describe small" "run show big" "-o json run show big" \
  "run show small" "-o json run show slow-1" "run describe slow-1"; do
  # shellcheck disable=SC2086
  check "$args: the same as embedded" same_as_embedded ro $args
done
as ro run list --limit 2
check "list --limit says where the next page starts" err_has "more runs follow: add --after "
as ro run describe nobody
check "describe of an unknown run: one line, exit 2" one_line_error 2 "run nobody not found"
as ro run show 'a/b'
check "a malformed run id is refused before anything is sent" one_line_error 2 "run id 'a/b'"

# ---- signal / cancel / kill ----
as ops run signal w-2 --type demo.go --data '{"ok": true}'
check "signal: the run completes, exit 0" exit_is 0
check "signal prints the new state" out_has_e "^status +completed"
as ro run show w-2
check "the event was received from the token's owner" out_has_e "event_received +demo.go from cairn by ops"
as ops run signal w-2 --type demo.go
check "signal of a stopped run: one line, exit 2" one_line_error 2 "cannot signal: run w-2 has stopped"
as ops run signal nobody --type demo.go
check "signal of an unknown run: one line, exit 2" one_line_error 2 "cannot signal: run nobody not found"
as ops run start demo/wait --input '{"name": "cy"}' --id w-3 --wait
as ops run cancel w-3 --reason "not needed"
check "cancel: exit 0" exit_is 0
check "cancel stops the run as cancelled" out_has_e "^status +cancelled"
check "who cancelled" out_has_e "^stopped by +ops"
as ops run start demo/wait --input '{"name": "di"}' --id w-4 --wait
as ops run kill w-4
check "an operator may not kill: one line, exit 2" one_line_error 2 "cannot kill: forbidden"
as root -o json run kill w-4 --reason runaway
check "an admin kills: exit 0" exit_is 0
check "kill stops the run as killed" field_is status killed
check "the kill's reason" field_is stop_detail runaway

# ---- approve / reject, --as ----
as ops run approve big
check "an operator may not approve: one line, exit 2" one_line_error 2 "cannot approve: forbidden"
as mallory run approve big
check "an approver the approval does not name is refused: exit 2" one_line_error 2 "'mallory' may not answer"
as alice --as bob run approve big
check "--as naming someone else than the token's owner is refused" one_line_error 2 "--as bob: .* 'alice' (approver)"
check "nothing was answered" test "$(changes)" -eq 1
as alice --as alice run approve big --reason "signed off"
check "alice approves (--as alice with alice's token): exit 0" exit_is 0
check "the run completes" out_has_e "^status +completed"
check "the change was made once" test "$(changes)" -eq 2
as alice run approve big
check "a second answer: one line, exit 2" one_line_error 2 "cannot approve: "
as ro run show big
check "show has who approved" out_has_e "approval_resolved +.* approved by alice"
as ops run start billing/plan-change --input '{"plan": "enterprise", "price": 900}' --id big-2 --wait
as alice -o json run reject big-2 --reason "too much"
check "reject: exit 0" exit_is 0
check "the run stops failed (approval_denied)" field_is stop_reason approval_denied
check "no change for a rejection" test "$(changes)" -eq 2

# ---- resolve ----
as ops run resolve slow-1 --outcome ok --result '{"slept": true}' --reason "checked by hand"
check "resolve ok completes the run: exit 0" exit_is 0
check "the resolved result is the output" out_has '"slept":true'
as ops run resolve slow-1 --outcome failed
check "resolve on a run not blocked: one line, exit 2" one_line_error 2 "not blocked"
as ops run resolve slow-1 --outcome ok --result '{"x": 1}' --as someone
check "--as someone with ops's token is refused" one_line_error 2 "--as someone"

# ---- kill switches ----
as ops run start demo/wait --input '{"name": "ed"}' --id w-5 --wait
as ops kill --all
check "an operator may not engage a kill switch: exit 2" one_line_error 2 "forbidden"
as root kill --workflow demo/wait --reason incident
check "engage a workflow's switch: exit 0" exit_is 0
check "it says what it engaged" out_has "engaged the kill switch of workflow demo/wait (engaged by root): incident"
check "the covered run stopped" out_has_e "^w-5 +killed"
as ops run start demo/wait --input '{"name": "fy"}'
check "a new run of it is refused: one line, exit 2" one_line_error 2 "no new run of demo/wait may start"
check "kill --list: the same as embedded" same_as_embedded ro kill --list
check "kill --list -o json: the same as embedded" same_as_embedded ro -o json kill --list
as root -o json kill --release --workflow demo/wait
check "release: exit 0" field_is released.scope workflow
as root kill --release --workflow demo/wait
check "releasing a switch that is not engaged: one line, exit 2" one_line_error 2 "cannot release"
as ops run start demo/wait --input '{"name": "gu"}' --id w-6 --wait
as root kill w-6 --reason "one run"
check "a run's switch stops it" out_has_e "^w-6 +killed"
as root kill w-6
check "a switch for a stopped run is refused: one line, exit 2" one_line_error 2 "has already stopped (killed)"
as root kill --release w-6
check "release the run's switch" out_has "released the kill switch of run w-6"
as root kill --all --reason drill
check "the global switch covers no running run here" out_has "0 runs covered"
as root kill --release --all
check "release the global switch" exit_is 0
as ro kill --list
check "no switch is engaged" out_has "no kill switch is engaged"
as root kill --workflow nonamespace
check "a bad target is refused before anything is sent" one_line_error 2 "NAMESPACE/NAME"

# ---- tokens, addresses, the environment ----
CAIRN_TOKEN=$(cat "$work/ro.token") run --address "$url" -o json run list
check "\$CAIRN_TOKEN gives the token" exit_is 0
cp "$work/out" "$work/flag.out"
CAIRN_ADDRESS=$url CAIRN_TOKEN=$(cat "$work/ro.token") run -o json run list
check "\$CAIRN_ADDRESS works as --address does" cmp -s "$work/out" "$work/flag.out"
CAIRN_TOKEN=wrong run --address "$url" run list
check "a bad token: one line, exit 2" one_line_error 2 'unauthenticated: unknown token (the token from $CAIRN_TOKEN)'
run --address "$url" run list
check "no token: one line, exit 2" one_line_error 2 "no token was given"
as ghost run list
check "a missing token file: one line, exit 2" one_line_error 2 "ghost.token"
: >"$work/empty.token"
as empty run list
check "an empty token file: one line, exit 2" one_line_error 2 "the file is empty"
# A port bound but not listening, held until these checks end: connecting is refused, and
# no concurrently running test can take the port meanwhile.
exec {port_holder}< <(python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1], flush=True)
sys.stdin.close(); time.sleep(120)' </dev/null)
port_holder_pid=$!
read -r free_port <&"$port_holder"
run --address "http://127.0.0.1:$free_port" --token-file "$work/ro.token" run list
check "an unreachable server: exactly one line, exit 2" test "$rc" -eq 2 -a \
  "$(cat "$work/err")" = "cairn: cannot reach http://127.0.0.1:$free_port: connection refused"
run --address "https://127.0.0.1:$free_port" run list
check "https is refused: no TLS, use a TLS-terminating proxy" one_line_error 2 "TLS-terminating proxy"
run --address "127.0.0.1:$free_port" run list
check "an address without http:// is refused" one_line_error 2 "expected http://HOST:PORT"
kill "$port_holder_pid" 2>/dev/null || true
exec {port_holder}<&-
as ro run resume
check "run resume with an address: one line, exit 2" one_line_error 2 "resumes every run itself"
as ro log list
check "--address on a command that stays local is refused" one_line_error 2 "'cairn log list' does not talk to a server"
CAIRN_ADDRESS=$url run --data "$data" log list
check "\$CAIRN_ADDRESS is ignored by commands that stay local" exit_is 0

# ---- the server stops; the embedded mode is as before ----
check "SIGTERM stops the server with exit 0" stop_server
local_run workflow apply "$work/wf/wait.yaml"
check "embedded apply owns the directory again" out_has "unchanged demo/wait:1.0.0"
local_run run start demo/wait --input '{"name": "hi"}' --id w-7 --wait
check "embedded start --wait parks as before" exit_is 0
check "started by \$USER or cli, not a token" out_has_e "^started +.* by (${USER:-cli}|cli)$"
check "every run replays and audits clean" replays_clean "$data"

echo "remote_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
