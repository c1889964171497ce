#!/usr/bin/env python3
"""The daemon under SIGKILL: nothing it acknowledged is lost, no write happens twice.

Each round starts `cairn serve` on 127.0.0.1 (a fresh process on the same data
directory), lets concurrent clients start runs over HTTP (each with its own run_id) and
SIGKILLs the server at a random moment. A run whose start was acknowledged (201/200)
must exist after the restart and complete; its one write (a command tool appending to a
ledger under the run's idempotency key, as a payment service would) must be in the
ledger exactly once, whatever the kills interrupted. At the end the server stops on
SIGTERM with exit 0, and every run replays and audits clean.

    tests/tools/serve_crash_test.py PATH_TO_CAIRN [ROUNDS]
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

WORKFLOW = """
document: {dsl: '1.0.3', namespace: crash, name: pay, version: '1.0.0'}
do:
  - prepare:
      set:
        id: ${ .id }
        amount: ${ .amount }
  - pay:
      call: ledger.append
      with:
        id: ${ .id }
        amount: ${ .amount }
  - done:
      set:
        paid: ${ .id }
"""

TOOLS = """
tools:
  ledger.append:
    description: Append a payment to the ledger, once per idempotency key
    effect: write
    risk: high
    idempotent: true
    command: ./append.py
    timeout: 30s
"""

POLICY = """
version: 1
name: crash
rules:
  - id: payments
    tools: [ledger.append]
    decision: allow
"""

APPEND = """#!/usr/bin/env python3
import fcntl, json, os, sys, time
request = json.load(sys.stdin)
key = os.environ["CAIRN_IDEMPOTENCY_KEY"]
with open(os.environ["LEDGER"], "a+", encoding="utf-8") as ledger:
    fcntl.flock(ledger, fcntl.LOCK_EX)
    ledger.seek(0)
    for line in ledger:
        entry = json.loads(line)
        if entry["key"] == key:
            print(json.dumps(entry))
            sys.exit(0)
    time.sleep(0.01)  # a window for the kill to land inside a call
    entry = {"key": key, "id": request["id"], "amount": request["amount"]}
    ledger.write(json.dumps(entry) + "\\n")
    ledger.flush()
    os.fsync(ledger.fileno())
print(json.dumps(entry))
"""

STARTS_PER_CLIENT_PER_ROUND = 25
passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok    " + name)
    else:
        failed += 1
        print("FAIL  " + name + ("\n    " + str(detail)[:3000] if detail else ""), file=sys.stderr)


def start_server(cairn, env, cwd):
    server = subprocess.Popen([cairn, "serve", "--listen", "127.0.0.1:0"], env=env, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    if " on http://127.0.0.1:" not in line:
        server.kill()
        raise RuntimeError("cairn serve did not start: " + line)
    port = int(line.strip().rsplit(":", 1)[1])
    return server, port


def request(port, method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def list_runs(port, status=None):
    """Every run (of one status), following the listing's pages."""
    runs = []
    after = ""
    while True:
        query = "limit=1000" + (f"&status={status}" if status else "") + \
            (f"&after={after}" if after else "")
        _, page = request(port, "GET", "/v1/runs?" + query)
        runs += page["runs"]
        after = page.get("next_after")
        if not after:
            return runs


def main():
    cairn = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    rng = random.Random(int(os.environ.get("CAIRN_SEED", str(int(time.time())))))
    work = tempfile.mkdtemp(prefix="cairn-serve-crash.")
    try:
        with open(os.path.join(work, "append.py"), "w") as f:
            f.write(APPEND)
        os.chmod(os.path.join(work, "append.py"), 0o755)
        for name, text in (("workflow.yaml", WORKFLOW), ("tools.yaml", TOOLS),
                           ("policy.yaml", POLICY)):
            with open(os.path.join(work, name), "w") as f:
                f.write(text)
        ledger = os.path.join(work, "ledger.jsonl")
        env = dict(os.environ, CAIRN_DATA=os.path.join(work, "data"),
                   CAIRN_TOOLS=os.path.join(work, "tools.yaml"), LEDGER=ledger)
        env.pop("CAIRN_TOKENS", None)
        for args in (["workflow", "apply", "workflow.yaml"], ["policy", "apply", "policy.yaml"]):
            r = subprocess.run([cairn, *args], env=env, cwd=work, capture_output=True, text=True)
            check(" ".join(args[:2]), r.returncode == 0, r.stderr)

        acknowledged = set()
        lock = threading.Lock()
        for round_no in range(rounds):
            server, port = start_server(cairn, env, work)
            stop = threading.Event()

            def client(c):
                # Paced and bounded: the point is kills landing among starts and calls,
                # not a load test (too many runs at once and the recovered server's
                # command queue, bounded on purpose, refuses calls; the ledger's lock
                # makes every payment wait for the others).
                pace = random.Random(rng.random())
                n = 0
                while not stop.is_set() and n < STARTS_PER_CLIENT_PER_ROUND:
                    time.sleep(pace.uniform(0, 0.03))
                    run_id = f"r{round_no}-c{c}-{n}"
                    n += 1
                    try:
                        status, _ = request(port, "POST", "/v1/runs",
                                            {"workflow": "crash/pay", "run_id": run_id,
                                             "input": {"id": run_id, "amount": n}}, timeout=10)
                    except (OSError, http.client.HTTPException, ValueError):
                        return  # the server is gone: this start was not acknowledged
                    if status in (200, 201):
                        with lock:
                            acknowledged.add(run_id)

            clients = [threading.Thread(target=client, args=(c,)) for c in range(8)]
            for t in clients:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            server.send_signal(signal.SIGKILL)
            server.wait()
            stop.set()
            for t in clients:
                t.join()
            print(f"round {round_no}: killed with {len(acknowledged)} starts acknowledged so far")

        # A last server drives what the kills interrupted to the end.
        server, port = start_server(cairn, env, work)
        deadline = time.time() + 120
        unfinished = None
        while time.time() < deadline:
            unfinished = list_runs(port, "running") + list_runs(port, "waiting")
            if not unfinished:
                break
            time.sleep(0.2)
        check("every run finishes after the restarts", not unfinished,
              [r["run_id"] + " " + r["status"] + " " + r.get("waiting_on", "") for r in unfinished or []][:10])
        check("some starts were acknowledged", len(acknowledged) > 0, len(acknowledged))
        missing = []
        not_completed = []
        for run_id in sorted(acknowledged):
            status, run = request(port, "GET", "/v1/runs/" + run_id)
            if status != 200:
                missing.append(run_id)
            elif run["status"] != "completed":
                not_completed.append((run_id, run["status"], run.get("error")))
        check(f"all {len(acknowledged)} acknowledged runs exist", not missing, missing[:10])
        check("all acknowledged runs completed", not not_completed, not_completed[:5])
        all_runs = {r["run_id"]: r["status"] for r in list_runs(port)}
        entries = {}
        if os.path.exists(ledger):
            with open(ledger) as f:
                for line in f:
                    entry = json.loads(line)
                    entries.setdefault(entry["id"], []).append(entry["key"])
        twice = {k: v for k, v in entries.items() if len(v) != 1}
        check("no payment was made twice", not twice, twice)
        unpaid = [r for r, s in all_runs.items() if s == "completed" and r not in entries]
        check("every completed run paid once", not unpaid, unpaid[:10])
        strangers = [r for r in entries if r not in all_runs]
        check("no payment without a run", not strangers, strangers[:10])

        server.send_signal(signal.SIGTERM)
        check("SIGTERM stops the server with exit 0", server.wait(timeout=60) == 0)
        for args, what in ((["replay", "--all"], "every run replays"),
                           (["audit", "verify", "--all"], "every chain and header verifies")):
            r = subprocess.run([cairn, *args], env=env, cwd=work, capture_output=True, text=True)
            check(what, r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:])
        print(f"{len(all_runs)} runs, {len(acknowledged)} acknowledged, {len(entries)} payments")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"serve_crash_test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
