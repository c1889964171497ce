#!/usr/bin/env bash
# The demo, from a fresh Debian machine: installs what cairn needs, builds the `cairn`
# CLI, and runs a small back-office workflow end to end on the embedded engine
# (examples/refund: read an order, route by amount, wait for a manager's approval above
# 100, issue the refund once per idempotency key):
#   1. applies the workflow, with the operator's tool catalog;
#   2. a small refund runs to completion (--wait);
#   3. a large one parks waiting for the manager; a signal approves it;
#   4. a deferred start is picked up by `cairn run resume`;
#   5. lists the runs, shows one's timeline, and verifies every hash chain.
#
#   tools/demo.sh [DATA_DIR]      (default: ./cairn-data; the refund ledger goes beside it)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target cairn -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

data="${1:-${CAIRN_DATA:-$PWD/cairn-data}}"
mkdir -p "$data"
export CAIRN_DEMO_LEDGER="$data/refund-ledger.jsonl"
cairn() { build/release/tools/cairn --data "$data" --tools examples/refund/tools.yaml "$@"; }
big="refund-big-$(date +%s)"
set -x
cairn workflow validate examples/refund/workflow.yaml
cairn workflow apply examples/refund/workflow.yaml
cairn policy apply examples/refund/policy.yaml
cairn run start refund-request --wait \
  --input '{"order_id": "A-1001", "amount": 25, "reason": "damaged in transit"}'
cairn run start refund-request --wait --id "$big" \
  --input '{"order_id": "A-1002", "amount": 400, "reason": "arrived three weeks late"}'
cairn run signal "$big" --type com.example.refund.decision --data '{"approved": true}' --as mia
cairn run start refund-request --input '{"order_id": "A-1003", "amount": 10, "reason": "again"}'
cairn run resume
cairn run list
cairn run show "$big"
cairn log verify
cat "$CAIRN_DEMO_LEDGER"
