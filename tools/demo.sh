#!/usr/bin/env bash
# The demo, from a fresh Debian machine: installs what cairn needs, builds the `cairn`
# CLI, and runs the seed scenario end to end on the embedded engine (examples/plan-change:
# "pick the best plan and activate a subscription for a team of 12 people"):
#   1. applies the workflow and the operators' policy; the tool catalog and the agents
#      file (a scripted planner: no model, no network) come with every command;
#   2. a team of 12: three reads, the planner picks from the plans that fit, the policy
#      allows the change (at most 200 a month), the plan is changed once — then the run's
#      timeline: every read, verdict, decision, budget charge and the write;
#   3. a team of 30: the change is over 200 a month, so the run parks on an approval;
#      describe shows it, alice approves, the change is committed;
#   4. a kill switch on the workflow stops a run parked on its approval and refuses new
#      runs until it is released;
#   5. lists the runs and verifies every hash chain.
# examples/README.md has this example and three more (refund triage, invoice approval).
#
#   tools/demo.sh [DATA_DIR]      (default: ./cairn-data; the billing ledger goes beside it)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target cairn -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

data="${1:-${CAIRN_DATA:-$PWD/cairn-data}}"
mkdir -p "$data"
# The stand-in billing service's state (examples/plan-change/tools/billing.py).
export CAIRN_DEMO_LEDGER="$data/billing-ledger.jsonl"
x=examples/plan-change
# Every command is shown before it runs; the data directory, tool catalog and agents file
# are the same for all of them (examples/README.md sets them once with CAIRN_DATA,
# CAIRN_TOOLS and CAIRN_AGENTS instead).
cairn() {
  printf '\n$ cairn %s\n' "$*" >&2
  build/release/tools/cairn --data "$data" --tools "$x/tools.yaml" --agents "$x/agents.yaml" "$@"
}
# Run ids of this demo (the demo can run again on the same directory).
n=$(date +%s)
echo "data directory: $data (tools $x/tools.yaml, agents $x/agents.yaml)" >&2
cairn workflow validate "$x/workflow.yaml"
cairn workflow apply "$x/workflow.yaml"
cairn policy apply "$x/policy.yaml"
cairn run start plan-change --wait --id "team-of-12-$n" \
  --input '{"account_id": "acme", "team_size": 12}'
cairn run show "team-of-12-$n"
cairn run start plan-change --wait --id "team-of-30-$n" \
  --input '{"account_id": "acme", "team_size": 30}'
cairn run describe "team-of-30-$n"
cairn run approve "team-of-30-$n" --as alice --reason "budgeted for Q3"
cairn run start plan-change --wait --id "team-of-40-$n" \
  --input '{"account_id": "acme", "team_size": 40}'
cairn kill --workflow examples/plan-change --reason "billing incident 7" --as ops
cairn run start plan-change --input '{"account_id": "acme", "team_size": 3}' ||
  echo "(refused, as it should be: the kill switch is engaged)"
cairn kill --list
cairn kill --release --workflow examples/plan-change
cairn run list
cairn log verify
printf "\n$ cat %s   # the billing service's ledger: a line per plan change\n" "$CAIRN_DEMO_LEDGER" >&2
cat "$CAIRN_DEMO_LEDGER"
