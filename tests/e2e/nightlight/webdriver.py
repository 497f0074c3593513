"""A minimal W3C WebDriver client (standard library only) for Debian's chromedriver."""
import base64
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

# Debian's Chromium, headless as root, with nothing reaching out to the network.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1440,1000",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(Exception):
    pass


class Browser:
    def __init__(self, chromedriver="/usr/bin/chromedriver", chromium="/usr/bin/chromium"):
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="nightlight-chromium-")
        self.log = open(os.path.join(self.profile, "chromedriver.log"), "w")
        self.process = subprocess.Popen(
            [chromedriver, f"--port={self.port}"], stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except (OSError, WebDriverError):
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": CHROMIUM_ARGS + [f"--user-data-dir={self.profile}/profile"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as err:
            detail = json.load(err).get("value", {})
            raise WebDriverError(f"{detail.get('error')}: {detail.get('message', '')[:300]}") from None

    def command(self, method, path, body=None):
        return self._call(method, self.session + path, body)

    def get(self, url):
        self.command("POST", "/url", {"url": url})

    def script(self, source, *args):
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    def wait_for(self, source, timeout=15, *args):
        """Polls a script until it returns something truthy, and returns that."""
        deadline = time.time() + timeout
        while True:
            value = self.script(source, *args)
            if value or time.time() > deadline:
                return value
            time.sleep(0.1)

    def find(self, css):
        element = self.command("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(element.values()))

    def click(self, css):
        self.command("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        self.command("POST", f"/element/{self.find(css)}/value", {"text": text})

    def drag(self, css, from_fraction, to_fraction):
        """Presses the mouse at one horizontal fraction of an element and releases it at another."""
        element = self.find(css)
        rect = self.command("GET", f"/element/{element}/rect")
        y = int(rect["y"] + rect["height"] / 2)
        x0 = int(rect["x"] + rect["width"] * from_fraction)
        x1 = int(rect["x"] + rect["width"] * to_fraction)
        self.command("POST", "/actions", {"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "x": x0, "y": y, "origin": "viewport"},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "x": (x0 + x1) // 2, "y": y, "origin": "viewport", "duration": 100},
                {"type": "pointerMove", "x": x1, "y": y, "origin": "viewport", "duration": 100},
                {"type": "pointerUp", "button": 0},
            ],
        }]})

    def console(self):
        """Browser log entries since the last call (level, message)."""
        entries = self.command("POST", "/se/log", {"type": "browser"})
        return [(entry["level"], entry["message"]) for entry in entries]

    def screenshot(self, path):
        with open(path, "wb") as out:
            out.write(base64.b64decode(self.command("GET", "/screenshot")))

    def close(self):
        try:
            self.command("DELETE", "")
        except Exception:
            pass
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
