#!/usr/bin/env python3
"""The timeline page in a real browser: headless Chromium (Debian's `chromium`) against a
`cairn serve` this test starts on 127.0.0.1 with a token file.

Runs of the plan-change example are made first (one completed, one waiting on alice's
approval). Then, driving Chromium over the DevTools protocol (a minimal WebSocket client
below; nothing beyond Python's standard library):
  - the completed run's timeline has its task bars, the agent's decision, the policy
    verdicts, the commits and the stop reason;
  - the waiting run shows its pending approval; a reader's click on "approve" is refused
    (the error shows, the run still waits); alice's click approves it and the run
    completes, with alice recorded in its log;
  - a screenshot of each is kept as an artifact (ARTIFACT_DIR/timeline-*.png).

    tests/tools/browser_test.py PATH_TO_CAIRN ARTIFACT_DIR
"""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(REPO, "examples", "plan-change")
passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok    " + name)
    else:
        failed += 1
        print("FAIL  " + name + ("\n    " + str(detail)[:2000] if detail else ""), file=sys.stderr)


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client masking."""

    def __init__(self, url):
        assert url.startswith("ws://"), url
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise EOFError("the DevTools socket closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError("no WebSocket upgrade: " + head.decode(errors="replace"))
        self.buf = b""

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            header = bytes([0x81, 0x80 | n])
        elif n < 65536:
            header = bytes([0x81, 0x80 | 126]) + struct.pack(">H", n)
        else:
            header = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("the DevTools socket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            if b1 & 0x80:
                self._read(4)
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise EOFError("the DevTools socket closed")
            if opcode in (9, 10):
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class Page:
    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout=20):
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        return value

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def main():
    cairn, artifacts = sys.argv[1], sys.argv[2]
    os.makedirs(artifacts, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("browser_test: chromium is not installed (tools/setup.sh installs it)",
              file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="cairn-browser-test.")
    env = dict(os.environ, CAIRN_DATA=os.path.join(work, "data"),
               CAIRN_TOOLS=os.path.join(EXAMPLE, "tools.yaml"),
               CAIRN_AGENTS=os.path.join(EXAMPLE, "agents.yaml"),
               CAIRN_DEMO_LEDGER=os.path.join(work, "ledger.jsonl"),
               CAIRN_TOKENS=os.path.join(work, "tokens.yaml"))
    server = browser = None
    try:
        def cli(*args):
            return subprocess.run([cairn, *args], env=env, cwd=REPO, capture_output=True,
                                  text=True, timeout=120)

        for args in (["workflow", "apply", os.path.join(EXAMPLE, "workflow.yaml")],
                     ["policy", "apply", os.path.join(EXAMPLE, "policy.yaml")]):
            r = cli(*args)
            check(" ".join(args[:2]), r.returncode == 0, r.stderr)
        r = cli("run", "start", "plan-change", "--wait", "--id", "acme-12", "--input",
                '{"account_id": "acme", "team_size": 12}')
        check("acme-12 completes", r.returncode == 0, r.stderr)
        r = cli("run", "start", "plan-change", "--wait", "--id", "acme-30", "--input",
                '{"account_id": "acme", "team_size": 30}')
        check("acme-30 waits on an approval", "approval" in r.stdout + r.stderr, r.stdout + r.stderr)
        tokens = {}
        for name, role in (("alice", "approver"), ("rita", "reader")):
            r = cli("serve", "token", "add", name, "--role", role)
            check(f"token for {name}", r.returncode == 0, r.stderr)
            tokens[name] = r.stdout.strip()

        server = subprocess.Popen([cairn, "serve", "--listen", "127.0.0.1:0"], env=env,
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        line = server.stdout.readline()
        check("the server says where it listens", " on http://127.0.0.1:" in line, line)
        url = line.strip().rsplit(" on ", 1)[1]

        profile = os.path.join(work, "profile")
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        devtools = None
        deadline = time.time() + 30
        while devtools is None and time.time() < deadline:
            line = browser.stderr.readline()
            if not line:
                break
            if "DevTools listening on " in line:
                devtools = line.split("DevTools listening on ", 1)[1].strip()
        check("chromium starts with DevTools on loopback", devtools is not None)
        if devtools is None:
            return 1
        port = devtools.split("://", 1)[1].split("/", 1)[0]
        targets = json.load(urllib.request.urlopen(f"http://{port}/json/list", timeout=10))
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")

        def open_run(run, token):
            page.call("Page.navigate", url=f"{url}/#run={run}")
            page.wait_for("document.readyState === 'complete'")
            page.eval(f"""(async () => {{
                document.getElementById('token').value = {json.dumps(token)};
                sessionStorage.setItem('cairn-token', {json.dumps(token)});
                await loadRuns();
                await selectRun({json.dumps(run)});
            }})()""")
            return page.wait_for(f"document.body.dataset.loaded === {json.dumps(run)}")

        # ---- a completed run's timeline ----
        check("the page loads acme-12", open_run("acme-12", tokens["rita"]))
        counts = page.eval("""(() => {
            const n = (s) => document.querySelectorAll(s).length;
            return {tasks: n('#timeline g.task'), decisions: n('#timeline g.mark.agent_decided'),
                    verdicts: n('#timeline g.mark.policy_verdict'),
                    commits: n('#timeline g.mark.effect_outcome'),
                    stops: n('#timeline g.mark.run_stopped'),
                    stop: (document.querySelector('#timeline .stop-reason') || {}).textContent,
                    runs: n('#run-rows tr'),
                    change: n('#timeline g.task[data-path="/do/7/changePlan"]')};
        })()""")
        check("task bars are drawn", counts["tasks"] >= 8, counts)
        check("the change task has its bar", counts["change"] == 1, counts)
        check("one agent decision", counts["decisions"] == 1, counts)
        check("four policy verdicts", counts["verdicts"] == 4, counts)
        check("four commits (three reads, one change)", counts["commits"] == 4, counts)
        check("the stop reason ends the timeline",
              counts["stops"] == 1 and counts["stop"] == "stopped: completed", counts)
        check("both runs are listed", counts["runs"] == 2, counts)
        page.screenshot(os.path.join(artifacts, "timeline-completed.png"))

        # ---- a pending approval: refused for a reader, answered by alice ----
        check("the page loads acme-30", open_run("acme-30", tokens["rita"]))
        shown = page.eval("""getComputedStyle(document.getElementById('approval')).display !== 'none'
            && document.getElementById('approval-what').textContent""")
        check("the pending approval is shown", shown and "billing.change_plan" in shown, shown)
        page.screenshot(os.path.join(artifacts, "timeline-pending-approval.png"))
        page.eval("document.getElementById('approve').click()")
        error = page.wait_for("document.getElementById('error').textContent")
        check("a reader's approval is refused on the page", error and "forbidden" in error, error)
        status = page.eval("document.getElementById('run-status').textContent")
        check("the run still waits", "waiting" in (status or ""), status)

        open_run("acme-30", tokens["alice"])
        page.eval("""document.getElementById('approval-reason').value = 'budgeted for Q3';
                     document.getElementById('approve').click()""")
        done = page.wait_for(
            "(document.getElementById('run-status').textContent || '').includes('completed')")
        check("alice's approval completes the run", done,
              page.eval("document.getElementById('run-status').textContent + ' / ' + "
                        "document.getElementById('error').textContent"))
        page.screenshot(os.path.join(artifacts, "timeline-approved.png"))
        r = cli("-o", "json", "log", "dump", "acme-30")
        approvals = [json.loads(l) for l in r.stdout.splitlines()
                     if json.loads(l)["kind"] == "approval_resolved"]
        check("alice is recorded as the approver, with her reason",
              len(approvals) == 1 and approvals[0]["body"]["actor"]["name"] == "alice"
              and approvals[0]["body"]["reason"] == "budgeted for Q3", approvals)
        for name in ("timeline-completed.png", "timeline-pending-approval.png",
                     "timeline-approved.png"):
            path = os.path.join(artifacts, name)
            with open(path, "rb") as f:
                check(f"screenshot {name} kept", f.read(8) == b"\x89PNG\r\n\x1a\n", path)
    finally:
        if browser is not None:
            browser.kill()
            browser.wait()
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=30)
                check("SIGTERM stops the server with exit 0", code == 0, server.stderr.read())
            except subprocess.TimeoutExpired:
                server.kill()
                check("SIGTERM stops the server", False)
        shutil.rmtree(work, ignore_errors=True)
    print(f"browser_test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
