#!/usr/bin/env python3
"""A stand-in CRM: reads {"order_id"} on stdin, prints the order as JSON."""
import json
import sys

ORDERS = {
    "A-1001": {"customer": "Ada Lovelace", "total": 79.0, "currency": "EUR", "refunded": False},
    "A-1002": {"customer": "Grace Hopper", "total": 1250.0, "currency": "EUR", "refunded": False},
    "A-1003": {"customer": "Alan Turing", "total": 40.0, "currency": "EUR", "refunded": True},
}

request = json.load(sys.stdin)
order = ORDERS.get(request.get("order_id"))
if order is None:
    print(f"no order {request.get('order_id')!r}", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"order_id": request["order_id"], **order}))
