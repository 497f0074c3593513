#!/usr/bin/env python3
"""HTTP fixtures for the rules end-to-end test.

  http_fixtures.py exporter FILE PORT   serves FILE (re-read on every request) as /metrics
  http_fixtures.py receiver DIR PORT    appends every POSTed JSON body as one line to DIR/<path>.jsonl
"""
import json
import pathlib
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def exporter(source: pathlib.Path):
    class Exporter(BaseHTTPRequestHandler):
        def do_GET(self):
            body = source.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Exporter


def receiver(directory: pathlib.Path):
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            name = self.path.strip("/").replace("/", "_") or "root"
            with open(directory / f"{name}.jsonl", "a") as out:
                out.write(json.dumps(body, sort_keys=True) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Receiver


def main():
    mode, target, port = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
    handler = exporter(target) if mode == "exporter" else receiver(target)
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main()
