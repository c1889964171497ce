#!/usr/bin/env python3
"""A stand-in accounts-payable system for the invoice-approval example: JSON on stdin,
JSON on stdout.

    payables.py get_invoice         {"invoice_id"}  -> the invoice, with its payment status
    payables.py get_vendor          {"vendor_id"}   -> the vendor (status, bank check, terms)
    payables.py get_purchase_order  {"po_number"}   -> the purchase order, or {found: false}
    payables.py schedule_payment    {"invoice_id", "vendor_id", "amount", "currency", "pay_on"}
    payables.py place_hold          {"invoice_id", "reason"}

Invoices, vendors and purchase orders come from ../payables.json. Payments and holds are
appended to a JSON-lines ledger ($CAIRN_DEMO_LEDGER, default ./invoice-ledger.jsonl), once
per idempotency key ($CAIRN_IDEMPOTENCY_KEY, set by cairn): a key already in the ledger
returns the recorded answer, and the same key with other arguments is refused. An invoice
with a payment in the ledger reads as "scheduled", and is never scheduled twice. Nothing
depends on the clock.

Exit codes: 0 ok; 2 a request that will never work (unknown invoice, wrong amount,
already scheduled under another key).
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
    with open(os.path.join(HERE, "..", "payables.json"), encoding="utf-8") as f:
        return json.load(f)


def ledger_path():
    return os.environ.get("CAIRN_DEMO_LEDGER", "invoice-ledger.jsonl")


def ledger_entries():
    try:
        with open(ledger_path(), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def once(tool, request, make_result):
    """Applies `make_result(key)` once per idempotency key, recording it in the ledger."""
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


def payment_of(invoice_id):
    for entry in ledger_entries():
        if entry.get("tool") == "ap.schedule_payment" and entry["request"]["invoice_id"] == invoice_id:
            return entry["result"]
    return None


def invoice_of(data, invoice_id):
    invoice = data["invoices"].get(invoice_id)
    if invoice is None:
        fail(2, f"no invoice {invoice_id!r}")
    payment = payment_of(invoice_id)
    return {"invoice_id": invoice_id, **invoice,
            "status": "scheduled" if payment else "open",
            "payment_id": payment["payment_id"] if payment else None}


def get_invoice(data, request):
    return invoice_of(data, request.get("invoice_id"))


def get_vendor(data, request):
    vendor = data["vendors"].get(request.get("vendor_id"))
    if vendor is None:
        fail(2, f"no vendor {request.get('vendor_id')!r}")
    return {"vendor_id": request["vendor_id"], **vendor}


def get_purchase_order(data, request):
    po = data["purchase_orders"].get(request.get("po_number"))
    if po is None:
        return {"po_number": request.get("po_number"), "found": False}
    return {"po_number": request["po_number"], "found": True, **po}


def schedule_payment(data, request):
    invoice = invoice_of(data, request.get("invoice_id"))
    if request.get("amount") != invoice["amount"] or request.get("vendor_id") != invoice["vendor_id"]:
        fail(2, f"invoice {invoice['invoice_id']} is {invoice['amount']} to {invoice['vendor_id']}, "
                f"not {request.get('amount')!r} to {request.get('vendor_id')!r}")

    def make(key):
        if payment_of(invoice["invoice_id"]):  # under the ledger's lock
            fail(2, f"invoice {invoice['invoice_id']} is already scheduled for payment")
        return {"payment_id": "pay_" + key.replace("#", "_")[-24:],
                "invoice_id": invoice["invoice_id"], "amount": invoice["amount"],
                "currency": invoice["currency"], "pay_on": request.get("pay_on")}

    return once("ap.schedule_payment", request, make)


def place_hold(data, request):
    invoice_of(data, request.get("invoice_id"))
    return once("ap.place_hold", request,
                lambda key: {"hold_id": "hold_" + key.replace("#", "_")[-24:],
                             "invoice_id": request["invoice_id"], "reason": request.get("reason")})


COMMANDS = {
    "get_invoice": get_invoice,
    "get_vendor": get_vendor,
    "get_purchase_order": get_purchase_order,
    "schedule_payment": schedule_payment,
    "place_hold": place_hold,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        fail(2, "usage: payables.py " + "|".join(COMMANDS) + " < request.json")
    text = sys.stdin.read()
    print(json.dumps(COMMANDS[sys.argv[1]](load_data(), json.loads(text) if text.strip() else {})))
