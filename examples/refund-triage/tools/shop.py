#!/usr/bin/env python3
"""A stand-in shop back office for the refund-triage example: JSON on stdin, JSON on stdout.

    shop.py get_order     {"order_id"}                  -> the order, with what is refundable
    shop.py get_customer  {"customer_id"}               -> the customer's history
    shop.py refund        {"order_id", "amount", "currency", "reason", "triage"}
    shop.py open_ticket   {"order_id", "amount", "reason", "summary"}

Orders and customers come from ../shop.json. Refunds and tickets are appended to a
JSON-lines ledger ($CAIRN_DEMO_LEDGER, default ./refund-triage-ledger.jsonl), once per
idempotency key ($CAIRN_IDEMPOTENCY_KEY, set by cairn): a key already in the ledger returns
the recorded answer, and the same key with other arguments is refused. Orders read the
refunds in the ledger. Nothing depends on the clock.

Exit codes: 0 ok; 2 a request that will never work (unknown order, more than refundable).
"""
import fcntl
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(code, message):
    print(message, file=sys.stderr)
    sys.exit(code)


def load_data():
    with open(os.path.join(HERE, "..", "shop.json"), encoding="utf-8") as f:
        return json.load(f)


def ledger_path():
    return os.environ.get("CAIRN_DEMO_LEDGER", "refund-triage-ledger.jsonl")


def ledger_entries():
    try:
        with open(ledger_path(), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def once(tool, request, make_result):
    """Applies `make_result()` once per idempotency key, recording it in the ledger."""
    key = os.environ.get("CAIRN_IDEMPOTENCY_KEY", "")
    if not key:
        fail(2, f"refusing {tool} without an idempotency key")
    with open(ledger_path(), "a+", encoding="utf-8") as ledger:
        fcntl.flock(ledger, fcntl.LOCK_EX)
        ledger.seek(0)
        for line in ledger:
            entry = json.loads(line)
            if entry.get("key") != key:
                continue
            if entry.get("tool") != tool or entry.get("request") != request:
                fail(2, f"idempotency key {key} was used for another request")
            return entry["result"]
        result = make_result(key)
        ledger.write(json.dumps({"key": key, "tool": tool, "request": request,
                                 "result": result}) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())
    return result


def order_of(data, order_id):
    order = data["orders"].get(order_id)
    if order is None:
        fail(2, f"no order {order_id!r}")
    refunded = order["refunded"] + sum(
        e["result"]["amount"] for e in ledger_entries()
        if e.get("tool") == "payments.refund" and e["result"]["order_id"] == order_id)
    return {"order_id": order_id, **order, "refunded": refunded,
            "refundable": round(order["total"] - refunded, 2)}


def get_order(data, request):
    return order_of(data, request.get("order_id"))


def get_customer(data, request):
    customer = data["customers"].get(request.get("customer_id"))
    if customer is None:
        fail(2, f"no customer {request.get('customer_id')!r}")
    return {"customer_id": request["customer_id"], **customer}


def refund(data, request):
    order_of(data, request.get("order_id"))
    amount = request.get("amount")
    if not isinstance(amount, (int, float)) or amount <= 0:
        fail(2, f"amount must be a positive number, got {amount!r}")

    def make(key):
        order = order_of(data, request["order_id"])  # under the ledger's lock
        if amount > order["refundable"]:
            fail(2, f"order {order['order_id']}: {amount} asked, {order['refundable']} refundable")
        return {"refund_id": "rf_" + key.replace("#", "_")[-24:], "order_id": order["order_id"],
                "amount": amount, "currency": order["currency"]}

    return once("payments.refund", request, make)


def open_ticket(data, request):
    order_of(data, request.get("order_id"))
    return once("support.open_ticket", request,
                lambda key: {"ticket_id": "T-" + key.replace("#", "_")[-24:],
                             "queue": "refund-escalations", "order_id": request["order_id"]})


COMMANDS = {
    "get_order": get_order,
    "get_customer": get_customer,
    "refund": refund,
    "open_ticket": open_ticket,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        fail(2, "usage: shop.py " + "|".join(COMMANDS) + " < request.json")
    text = sys.stdin.read()
    print(json.dumps(COMMANDS[sys.argv[1]](load_data(), json.loads(text) if text.strip() else {})))
