"""A small chat-completions server on 127.0.0.1 for tests: the OpenAI wire format (JSON and SSE
streaming, GET /v1/models), with per-request behaviours (status codes, delays, stalls, errors that
echo the request's headers)."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER_PIECES = ["A ship ", "is moored ", "at the pier."]


class Endpoint:
    """Records every request; ``plan`` holds one behaviour per POST (then plain answers)."""

    def __init__(self):
        self.requests = []
        self.plan = []
        self.models = ["sar-vlm"]
        self.stop = threading.Event()
        self.disconnected = threading.Event()
        self.lock = threading.Lock()

    def posts(self):
        return [r for r in self.requests if r["method"] == "POST"]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _json(self, status, payload, headers=()):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body):
        ep = self.server.ep
        with ep.lock:
            ep.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})

    def do_GET(self):
        ep = self.server.ep
        self._record(None)
        if self.path.rstrip("/") == "/v1/models" and ep.models is not None:
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "me"}
                                                        for m in ep.models]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self):
        ep = self.server.ep
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self._record(body)
        with ep.lock:
            plan = ep.plan.pop(0) if ep.plan else {}
        if plan.get("delay"):
            if ep.stop.wait(plan["delay"]):
                return
        status = plan.get("status", 200)
        if status != 200:
            message = plan.get("message", f"status {status}")
            if plan.get("echo_headers"):   # as some proxies do: the request's headers in the error
                message += f" (request {self.path} with headers {dict(self.headers)})"
            self._json(status, {"error": {"message": message, "type": "x"}}, plan.get("headers", ()))
            return
        pieces = plan.get("pieces", ANSWER_PIECES)
        if not body.get("stream"):
            self._json(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": "".join(pieces)}}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def send(payload):
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        try:
            send({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                  "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
            for i, piece in enumerate(pieces):
                if plan.get("stall_after") == i:
                    # hold the stream open until the client hangs up (what cancel must do promptly)
                    self.connection.settimeout(30.0)   # long enough for a loaded CI machine
                    if self.connection.recv(1) == b"":
                        ep.disconnected.set()
                    return
                send({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                      "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            if plan.get("error_event"):
                send({"error": {"message": plan["error_event"]}})
                return
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:
            ep.disconnected.set()




@contextmanager
def serve():
    """An Endpoint listening on 127.0.0.1 (a free port) until the block ends; ``ep.url`` is its /v1."""
    ep = Endpoint()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.ep = ep
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    ep.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield ep
    finally:
        ep.stop.set()
        server.shutdown()
        server.server_close()
