#!/usr/bin/env python3
"""A stand-in payment service: refunds once per idempotency key.

Reads {"order_id", "amount", "reason"} on stdin. The ledger is a JSON-lines file
($CAIRN_DEMO_LEDGER, default ./refund-ledger.jsonl); a key already in it returns the
recorded refund instead of refunding twice.
"""
import fcntl
import json
import os
import sys
import time

request = json.load(sys.stdin)
key = os.environ.get("CAIRN_IDEMPOTENCY_KEY", "")
if not key:
    print("refusing a refund without an idempotency key", file=sys.stderr)
    sys.exit(2)
path = os.environ.get("CAIRN_DEMO_LEDGER", "refund-ledger.jsonl")
with open(path, "a+", encoding="utf-8") as ledger:
    fcntl.flock(ledger, fcntl.LOCK_EX)
    ledger.seek(0)
    for line in ledger:
        entry = json.loads(line)
        if entry["key"] == key:
            print(json.dumps(entry["refund"]))
            sys.exit(0)
    refund = {
        "refund_id": "rf_" + key.replace("#", "_")[-20:],
        "order_id": request["order_id"],
        "amount": request["amount"],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    ledger.write(json.dumps({"key": key, "refund": refund}) + "\n")
    ledger.flush()
    os.fsync(ledger.fileno())
print(json.dumps(refund))
