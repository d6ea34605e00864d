"""Who may use the web face and what a request may carry: the access token (when bound beyond
this machine), CSRF tokens on every form, form and upload parsing with a size cap."""
from __future__ import annotations

import hmac
import re
import secrets
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from bot.errors import UsageError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
CSRF_COOKIE, AUTH_COOKIE, PROFILE_COOKIE = "interview_csrf", "interview_auth", "interview_profile"
MAX_FORM_BYTES = 256 * 1024  # an answer is text: far below this
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # what the transcript readers accept (as in Slack)
PROFILE_RE = re.compile(r"^[\w.@-]{1,64}$")
HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def check_bind(host: str, token: str | None, user_header: str = "") -> None:
    """Refuse to serve beyond this machine without a token or a sign-in proxy's user header: the
    pages hold a person's answers."""
    if user_header and not HEADER_RE.match(user_header):
        raise UsageError(f"INTERVIEW_WEB_USER_HEADER={user_header!r} is not a header name.",
                         "Name the header your sign-in proxy sets, e.g. X-Forwarded-User.")
    if host not in LOCAL_HOSTS and not token and not user_header:
        raise UsageError(f"--host {host} would serve your answers to the network without a password.",
                         "Set INTERVIEW_WEB_TOKEN to a long random string (everyone then opens the link "
                         "with ?token=...), or put a sign-in proxy in front and set INTERVIEW_WEB_USER_HEADER "
                         "to the header naming the user, or leave --host at 127.0.0.1.")
    if token is not None and len(token) < 16:
        raise UsageError("INTERVIEW_WEB_TOKEN is shorter than 16 characters.",
                         "Use a long random one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`.")


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32}")  # what new_token() makes: also a safe file name


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TooLarge(Exception):
    pass


async def read_body(request, limit: int) -> bytes:
    """The request body, refused once it passes `limit` bytes (without reading the rest)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge()
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit + 64 * 1024:  # room for the multipart framing around a file at the cap
            raise TooLarge()
    return bytes(data)


async def form(request, limit: int = MAX_FORM_BYTES) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
    """Fields (name -> values) and files (name -> (filename, bytes)) of a form post, urlencoded or
    multipart, parsed with the standard library."""
    body = await read_body(request, limit)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/x-www-form-urlencoded"):
        return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True), {}
    if not ctype.startswith("multipart/form-data"):
        return {}, {}
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, list[str]] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in msg.iter_parts() if msg.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, payload)
        else:
            fields.setdefault(name, []).append(payload.decode("utf-8", "replace"))
    return fields, files


def first(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    values = fields.get(name)
    return values[0] if values else default
