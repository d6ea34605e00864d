"""A fake OpenAI-compatible server on 127.0.0.1: speaks the real /v1/chat/completions protocol,
records each request, and answers from a queue (text, an HTTP error, or a delay).

A request for token probabilities (`logprobs: true`, the fact check's one-token question) is kept
apart in `probes` and answered from `top_logprobs` (token -> log probability), not from the queue;
with `top_logprobs` None it is answered as a server without them answers: no `logprobs` field."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self):
        self.replies: deque = deque()
        self.requests: list[dict] = []
        # What an empty queue answers (a load test's endless stream of gradings); None: HTTP 500.
        self.default = None
        self.probes: list[dict] = []
        self.top_logprobs: dict[str, float] | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def queue(self, *replies) -> "FakeOpenAI":
        """Each reply: a str/dict (the message content), a callable (request body -> content), or
        ("status", code, body, headers), or ("sleep", s, reply)."""
        self.replies.extend(replies)
        return self

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, code: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body.get("logprobs"):
                    fake.probes.append({"path": self.path, "body": body})
                    top = sorted((fake.top_logprobs or {}).items(), key=lambda kv: -kv[1])
                    choice = {"index": 0, "finish_reason": "length",
                              "message": {"role": "assistant", "content": top[0][0] if top else "true"}}
                    if top:
                        alts = [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                for t, lp in top[:body.get("top_logprobs") or 1]]
                        choice["logprobs"] = {"content": [{**alts[0], "top_logprobs": alts}]}
                    return self._send(200, {"id": "chatcmpl-fake", "object": "chat.completion",
                                            "created": int(time.time()), "model": body.get("model", "fake"),
                                            "choices": [choice],
                                            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})
                fake.requests.append({"path": self.path, "body": body,
                                      "auth": self.headers.get("Authorization")})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                try:
                    reply = fake.replies.popleft()
                except IndexError:  # popleft, not a check first: handler threads race for the queue
                    reply = fake.default or ("status", 500, {"error": {"message": "queue empty"}}, {})
                if isinstance(reply, tuple) and reply[0] == "sleep":
                    time.sleep(reply[1])
                    reply = reply[2]
                if callable(reply):
                    reply = reply(body)
                if isinstance(reply, tuple) and reply[0] == "status":
                    return self._send(reply[1], reply[2], reply[3] if len(reply) > 3 else None)
                content = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
                self._send(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                })

        return Handler


def fill(schema: dict):
    """The smallest reply valid under a JSON schema: for tests and benchmarks about something
    else than grading (Slack, load), which only need a reply the grader accepts."""
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type")
    if kind == "object":
        return {k: fill(schema["properties"][k]) for k in schema.get("required", [])}
    if kind == "array":
        return [fill(schema["items"]) for _ in range(schema.get("minItems", 0))]
    return {"string": "Fine.", "integer": 0, "number": 0.0, "boolean": False}.get(kind)
