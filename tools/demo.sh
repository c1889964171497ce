#!/usr/bin/env bash
# The demo, from a fresh Debian machine: installs what cairn needs, builds the `cairn`
# CLI, writes a few back-office runs into the event log (through group commit, synced),
# then lists them, dumps one as JSON lines, and verifies every hash chain.
#
#   tools/demo.sh [DATA_DIR]      (default: ./cairn-data)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target cairn -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

data="${1:-${CAIRN_DATA:-$PWD/cairn-data}}"
cairn=build/release/tools/cairn
set -x
"$cairn" --data "$data" log demo
"$cairn" --data "$data" log list
run=$("$cairn" --data "$data" -o json log list --limit 1 2>/dev/null | sed -n 's/.*"run_id":"\([^"]*\)".*/\1/p')
"$cairn" --data "$data" log dump "$run" --limit 5
"$cairn" --data "$data" log verify
