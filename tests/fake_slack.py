"""A fake Slack Web API on 127.0.0.1, in a thread (the approach of bolt-python's own
tests/mock_web_api_server): records every call and answers with the real response shapes.

It also enforces the limits real Slack enforces (50 blocks a message, 100 a Home view, 3000 chars a
section text, a bot token on every call), so a renderer that breaks them fails a test the way it
would fail in a workspace: `{"ok": false, "error": "invalid_blocks"}`.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BOT_USER, BOT_ID, TEAM = "UBOT", "BBOT", "T0TEAM"


@dataclass
class Call:
    method: str  # chat.postMessage, or the path for non-API requests (/files/..., /upload/...)
    params: dict
    headers: dict
    at: float = field(default_factory=time.monotonic)
    body: bytes = b""


class FakeSlack:
    def __init__(self):
        self.calls: list[Call] = []
        self.files: dict[str, dict] = {}  # file id -> {"name", "content", "user", "shared_in"}
        self.uploads: dict[str, bytes] = {}
        self.thread_of: dict[str, str] = {}  # ts of each message posted -> its thread's ts (its own at the root)
        self.on_call = None  # called with each Call as it is recorded (a load test watches without polling)
        self._rate_limits: dict[str, int] = {}  # method -> Retry-After seconds, answered once
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # --- control ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def rate_limit_once(self, method: str, retry_after: int = 1) -> None:
        self._rate_limits[method] = retry_after

    def add_file(self, file_id: str, name: str, content: bytes, *, user: str = "U0ALICE",
                 shared_in: tuple[str, ...] = ()) -> None:
        """A file `user` uploaded, shared in the conversations `shared_in` (C…: public channels, G…:
        private ones, D…: DMs), as files.info reports it."""
        self.files[file_id] = {"name": name, "content": content, "user": user, "shared_in": tuple(shared_in)}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # --- inspection -------------------------------------------------------------------------
    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "calls"):
        """Poll until predicate(self) is truthy; bounded, then fail with the calls seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate(self)
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; calls: {[c.method for c in self.calls]}")

    def wait_count(self, method: str, n: int, timeout: float = 20.0) -> list[Call]:
        return self.wait_for(lambda f: f.of(method) if len(f.of(method)) >= n else None, timeout,
                             f"{n} x {method}")

    def texts(self, method: str = "chat.postMessage") -> list[str]:
        """Everything a user would read in those calls: fallback text and all block text."""
        return [c.params.get("text", "") + "\n" + block_text(c.params.get("blocks")) for c in self.of(method)]

    # --- protocol ---------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{1700000000 + next(self._ts)}.{next(self._ts):06d}"

    def _answer(self, method: str, p: dict, headers: dict) -> tuple[int, dict, dict]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer xoxb-"):
            return 200, {"ok": False, "error": "not_authed" if not auth else "invalid_auth"}, {}
        if "revoked" in auth:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if method in self._rate_limits:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self._rate_limits.pop(method))}
        if method == "auth.test":
            return 200, {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "interviewbot",
                         "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}, {}
        blocks = p.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            if not p.get("channel"):
                return 200, {"ok": False, "error": "channel_not_found"}, {}
            if not p.get("text") and not blocks:
                return 200, {"ok": False, "error": "no_text"}, {}
            if blocks is not None and not blocks_ok(blocks, 50):
                return 200, {"ok": False, "error": "invalid_blocks"}, {}
            # A user id as channel means the app's DM with that user: Slack answers with the D… id.
            channel = "D" + p["channel"][1:] if p["channel"].startswith("U") else p["channel"]
            if method == "chat.postEphemeral":
                return 200, {"ok": True, "message_ts": self._next_ts()}, {}
            ts = p.get("ts") if method == "chat.update" else self._next_ts()
            if method == "chat.postMessage":
                self.thread_of[ts] = p.get("thread_ts") or ts
            message = {"type": "message", "text": p.get("text", ""), "user": BOT_USER, "bot_id": BOT_ID, "ts": ts,
                       "team": TEAM, "blocks": blocks or []}
            if p.get("thread_ts"):
                message["thread_ts"] = p["thread_ts"]
            out = {"ok": True, "channel": channel, "ts": ts, "message": message}
            if method == "chat.update":
                out["text"] = p.get("text", "")
            return 200, out, {}
        if method == "views.publish":
            view = p.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            if not view or not blocks_ok(view.get("blocks", []), 100):
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            return 200, {"ok": True, "view": {"id": f"V{next(self._ids):08d}", "team_id": TEAM, "type": view["type"],
                                              "blocks": view["blocks"], "state": {"values": {}}, "hash": "1.abc"}}, {}
        if method == "files.info":
            f = self.files.get(p.get("file", ""))
            if f is None:
                return 200, {"ok": False, "error": "file_not_found"}, {}
            fid = p["file"]
            url = f"{self.url}/files-pri/{TEAM}-{fid}/download/{f['name']}"
            where = {kind: [c for c in f["shared_in"] if c[0] == prefix] for kind, prefix in
                     (("channels", "C"), ("groups", "G"), ("ims", "D"))}
            share = {"ts": "1700000000.000100", "reply_count": 0}
            return 200, {"ok": True, "file": {
                "id": fid, "name": f["name"], "title": f["name"], "mimetype": "text/plain", "filetype": "text",
                "size": len(f["content"]), "user": f["user"], "url_private": url, "url_private_download": url,
                "permalink": f"https://fake.slack.com/files/{f['user']}/{fid}/{f['name']}", **where,
                "shares": {"public": {c: [share] for c in where["channels"]},
                           "private": {c: [share] for c in where["groups"] + where["ims"]}}},
                "comments": [], "response_metadata": {"next_cursor": ""}}, {}
        if method == "files.getUploadURLExternal":
            fid = f"F{next(self._ids):08d}UP"
            return 200, {"ok": True, "upload_url": f"{self.url}/upload/v1/{fid}", "file_id": fid}, {}
        if method == "files.completeUploadExternal":
            files = p.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            if not files or any(f["id"] not in self.uploads for f in files):
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            return 200, {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body, headers: dict | None = None, ctype="application/json; charset=utf-8"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _record(self, method, params, raw=b""):
                call = Call(method, params, {k.lower(): v for k, v in self.headers.items()}, body=raw)
                with fake._lock:
                    fake.calls.append(call)
                if fake.on_call is not None:
                    fake.on_call(call)

            def do_GET(self):
                u = urlparse(self.path)
                if u.path.startswith("/files-pri/"):
                    self._record(u.path, {})
                    fid = u.path.split("/")[2].split("-", 1)[1]
                    f = fake.files.get(fid)
                    if not (self.headers.get("Authorization") or "").startswith("Bearer xoxb-"):
                        # Real Slack answers a login page, not a 401, to a download without the token.
                        return self._send(200, b"<html>sign in</html>", ctype="text/html")
                    if f is None:
                        return self._send(404, b"not found", ctype="text/plain")
                    return self._send(200, f["content"], ctype="text/plain")
                self._send(404, {"ok": False, "error": "not_found"})

            def do_POST(self):
                u = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if u.path.startswith("/upload/"):
                    fid = u.path.rsplit("/", 1)[1]
                    self._record(u.path, {}, raw)
                    fake.uploads[fid] = raw
                    return self._send(200, f"OK - {len(raw)}".encode(), ctype="text/plain")
                if u.path.startswith("/respond/"):  # a slash command's response_url
                    params = json.loads(raw or b"{}")
                    self._record(u.path, params, raw)
                    return self._send(200, b"ok", ctype="text/plain")
                if not u.path.startswith("/api/"):
                    return self._send(404, {"ok": False, "error": "not_found"})
                method = u.path[len("/api/"):]
                ctype = self.headers.get("Content-Type", "")
                if ctype.startswith("application/json"):
                    params = json.loads(raw or b"{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                params.update({k: v[0] for k, v in parse_qs(u.query).items()})
                self._record(method, params, raw)
                status, body, headers = fake._answer(method, params, {k.lower(): v for k, v in self.headers.items()})
                self._send(status, body, headers)

        return Handler


def blocks_ok(blocks: list, max_blocks: int) -> bool:
    if len(blocks) > max_blocks:
        return False
    for b in blocks:
        if b.get("type") == "section" and len(b.get("text", {}).get("text", "")) > 3000:
            return False
        if b.get("type") == "header" and len(b["text"]["text"]) > 150:
            return False
        if b.get("type") == "context" and any(len(e.get("text", "")) > 3000 for e in b.get("elements", [])):
            return False
    return True


def block_text(blocks) -> str:
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    out = []
    for b in blocks or []:
        if "text" in b and isinstance(b["text"], dict):
            out.append(b["text"].get("text", ""))
        for e in b.get("elements", []) or []:
            if isinstance(e, dict):
                t = e.get("text")
                out.append(t.get("text", "") if isinstance(t, dict) else (t or ""))
    return "\n".join(out)
