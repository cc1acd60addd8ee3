"""A real HTTP server on loopback that speaks the chat-completions protocol, for the autointerp tests.

Deterministic answers: an explanation names the token with the highest level in the records
("the token X"); a simulation predicts 10 on tokens equal to X and 0 elsewhere. Faults are
injected in order for the first requests (`faults`: "429", "500", "timeout", "badjson"), and every
simulation whose content hashes to 0 mod `malformed_every` gets a malformed (non-JSON) reply.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(self, faults: list[str] | None = None, malformed_every: int = 0, timeout_sleep: float = 3.0,
                 host: str = "127.0.0.1"):
        self.faults = list(faults or [])
        self.malformed_every = malformed_every
        self.timeout_sleep = timeout_sleep
        self.requests: list[dict] = []        # bodies of every request received
        self.authorizations: list[str] = []   # Authorization headers received
        self.lock = threading.Lock()
        self.host = host  # any 127.x.y.z is this machine; featureflow treats only 127.0.0.1 as loopback
        self.httpd = ThreadingHTTPServer((host, 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, body: dict) -> str:
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        if "summarise in one short phrase" in system:
            best, level = "?", -1
            for line in user.splitlines():
                if "\t" in line:
                    tok, lv = line.rsplit("\t", 1)
                    if int(lv) > level:
                        best, level = json.loads(tok), int(lv)
            return f"the token {json.dumps(best)}"
        tokens = [json.loads(line) for line in user.splitlines()]
        if self.malformed_every and int(hashlib.sha256(user.encode()).hexdigest(), 16) % self.malformed_every == 0:
            return "Sure! Here are the activations: [1, 2"
        target = json.loads(system.split("Its explanation: the token ", 1)[1].split("\n", 1)[0])
        return json.dumps({"activations": [10 if t == target else 0 for t in tokens]})

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.authorizations.append(self.headers.get("Authorization", ""))
                    fault = server.faults.pop(0) if server.faults else None
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "slow down", "type": "rate_limit"}}')
                if fault == "500":
                    return self._send(500, b'{"error": {"message": "boom", "type": "server"}}')
                if fault == "timeout":
                    time.sleep(server.timeout_sleep)
                    return self._send(500, b"{}")
                if fault == "badjson":
                    return self._send(200, b"{this is not json")
                content = server.answer(body)
                prompt = sum(len(m["content"]) for m in body["messages"]) // 4
                reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": len(content) // 4,
                                   "total_tokens": prompt + len(content) // 4}}
                return self._send(200, json.dumps(reply).encode())

        return Handler
