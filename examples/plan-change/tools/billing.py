#!/usr/bin/env python3
"""A stand-in billing service for the plan-change example: JSON on stdin, JSON on stdout.

    billing.py get_subscription     {"account_id"}  -> the subscription (plan, seats, price)
    billing.py get_account_limits   {"account_id"}  -> what the account may buy on its own
    billing.py list_plans           {}              -> the price list
    billing.py change_plan          {"account_id", "subscription_id", "from_plan", "plan",
                                     "seats", "monthly_price"} -> the confirmation

The accounts and plans come from ../billing.json. Plan changes are appended to a JSON-lines
ledger ($CAIRN_DEMO_LEDGER, default ./plan-change-ledger.jsonl), once per idempotency key
($CAIRN_IDEMPOTENCY_KEY, set by cairn): a key already in the ledger returns the recorded
confirmation instead of changing the plan twice, and the same key with other arguments is
refused. Reads see the changes in the ledger. Nothing depends on the clock: the same
ledger and the same request give the same answer.

Exit codes: 0 ok; 2 a request that will never work (unknown account, wrong price, ...);
75 (EX_TEMPFAIL) the billing API is "temporarily unavailable" (worth a retry).
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
    with open(os.path.join(HERE, "..", "billing.json"), encoding="utf-8") as f:
        return json.load(f)


def ledger_path():
    return os.environ.get("CAIRN_DEMO_LEDGER", "plan-change-ledger.jsonl")


def ledger_entries():
    try:
        with open(ledger_path(), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def account_of(data, request):
    account_id = request.get("account_id")
    account = data["accounts"].get(account_id)
    if account is None:
        fail(2, f"no account {account_id!r}")
    return account_id, account


def plan_of(data, plan_id):
    for plan in data["plans"]:
        if plan["id"] == plan_id:
            return plan
    fail(2, f"no plan {plan_id!r}")


def get_subscription(data, request):
    account_id, account = account_of(data, request)
    plan, seats = account["plan"], account["seats"]
    for entry in ledger_entries():  # later changes win
        change = entry.get("change", {})
        if entry.get("tool") == "billing.change_plan" and change.get("account_id") == account_id:
            plan, seats = change["plan"], change["seats"]
    return {
        "account_id": account_id,
        "subscription_id": account["subscription_id"],
        "plan": plan,
        "seats": seats,
        "monthly_price": plan_of(data, plan)["price_per_seat"] * seats,
        "currency": data["currency"],
    }


def get_account_limits(data, request):
    account_id, account = account_of(data, request)
    return {"account_id": account_id, **account["limits"]}


def list_plans(data, request):
    return {"currency": data["currency"], "plans": data["plans"]}


def change_plan(data, request):
    key = os.environ.get("CAIRN_IDEMPOTENCY_KEY", "")
    if not key:
        fail(2, "refusing a plan change without an idempotency key")
    account_id, account = account_of(data, request)
    if request.get("subscription_id") != account["subscription_id"]:
        fail(2, f"subscription {request.get('subscription_id')!r} is not {account_id}'s")
    plan = plan_of(data, request.get("plan"))
    seats = request.get("seats")
    if not isinstance(seats, int) or seats < 1 or seats > plan["seats_max"]:
        fail(2, f"plan {plan['id']} seats 1 to {plan['seats_max']}, asked for {seats!r}")
    # The price the policy judged must be the price charged.
    price = plan["price_per_seat"] * seats
    if request.get("monthly_price") != price:
        fail(2, f"{plan['id']} for {seats} seats costs {price} a month, not "
                f"{request.get('monthly_price')!r}")
    if account.get("outage"):
        fail(75, "billing API temporarily unavailable (503), try again later")
    with open(ledger_path(), "a+", encoding="utf-8") as ledger:
        fcntl.flock(ledger, fcntl.LOCK_EX)
        ledger.seek(0)
        for line in ledger:
            entry = json.loads(line)
            if entry.get("key") != key:
                continue
            if entry.get("request") != request:
                fail(2, f"idempotency key {key} was used for another plan change")
            return entry["result"]
        result = {
            "confirmation": "chg_" + key.replace("#", "_")[-24:],
            "subscription_id": account["subscription_id"],
            "plan": plan["id"],
            "seats": seats,
            "monthly_price": price,
            "currency": data["currency"],
        }
        change = {"account_id": account_id, "plan": plan["id"], "seats": seats}
        ledger.write(json.dumps({"key": key, "tool": "billing.change_plan", "request": request,
                                 "change": change, "result": result}) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())
    return result


COMMANDS = {
    "get_subscription": get_subscription,
    "get_account_limits": get_account_limits,
    "list_plans": list_plans,
    "change_plan": change_plan,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        fail(2, "usage: billing.py " + "|".join(COMMANDS) + " < request.json")
    text = sys.stdin.read()
    print(json.dumps(COMMANDS[sys.argv[1]](load_data(), json.loads(text) if text.strip() else {})))
