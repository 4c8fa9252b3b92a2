"""The HTTP front of the local stack (stdlib ``ThreadingHTTPServer`` on 127.0.0.1).

It reads each request exactly (``Content-Length`` or chunked), hands it to the ``/_local/`` routes or to the
gateway for the public ones, and writes the reply. No request can take a server thread down: a body over
``MAX_BODY`` is refused with 413 without being read (API Gateway's own limit is higher; the handler answers
413 above 256 KiB itself), a malformed framing is a 400, and an error inside the local layer is a 500 JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cartrecovery.local.http_types import Reply, Request, json_reply, not_found, problem_reply

log = logging.getLogger("cartrecovery.local")

MAX_BODY = 1024 * 1024  # well above the ingest limit (256 KiB), so the handler's own 413 is what clients see
QUIET_PATHS = ("/_local/health",)


class BodyError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class App:
    """Routes a request to the first part that handles its path; anything else is API Gateway's 404."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def __call__(self, request: Request) -> Reply:
        try:
            for part in self.parts:
                if part.handles(request.path):
                    reply: Reply = part(request)
                    return reply
            return not_found()
        except Exception:
            log.exception("local stack error on %s %s", request.method, request.path)
            return problem_reply(500, "Internal Server Error", "the local stack failed; see its console output")


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Callable[[Request], Reply] | None = None) -> None:
        super().__init__(address, RequestHandler)
        self.app: Callable[[Request], Reply] = app or (lambda request: not_found())


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cartrecovery-local"
    sys_version = ""
    timeout = 60  # a client that stops sending does not hold a thread forever
    server: LocalHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        split = urlsplit(self.path)
        path = split.path or "/"
        try:
            body = self._read_body()
        except BodyError as exc:
            self.close_connection = True
            self._write(exc.reply)
            log.info("%s %s %d (body refused)", self.command, path, exc.reply.status)
            return
        except (OSError, ValueError):
            self.close_connection = True
            return
        request = Request(
            method=self.command,
            path=path,
            query=split.query,
            headers=[(k, v) for k, v in self.headers.items()],
            body=body,
            client_ip=self.client_address[0],
            host=self.headers.get("Host", ""),
        )
        reply = self.server.app(request)
        self._write(reply)
        if path not in QUIET_PATHS:
            log.info("%s %s %d", self.command, path, reply.status)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        if not length_header.strip().isdigit():
            raise BodyError(problem_reply(400, "Bad Request", "invalid Content-Length"))
        length = int(length_header)
        if length > MAX_BODY:
            raise BodyError(json_reply(413, {"message": "Request Entity Too Large"}))
        body = self.rfile.read(length)
        if len(body) < length:
            raise ValueError("client closed before sending the whole body")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BodyError(problem_reply(400, "Bad Request", "invalid chunked body")) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise BodyError(json_reply(413, {"message": "Request Entity Too Large"}))
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ValueError("client closed inside a chunk")
            chunks.append(chunk)
            self.rfile.readline(1024)  # the CRLF after the chunk

    def _write(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if name.lower() in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    continue
                self.send_header(name, str(value).replace("\r", " ").replace("\n", " "))
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (TimeoutError, OSError):
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines and headers: a JSON answer, then the connection is closed."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"message": message or phrase}).encode()
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)
