"""A loopback server (127.0.0.1 only) that speaks just enough of Google Drive and the Hugging Face hub.

Why: the download code must run for real in tests without the internet. The server serves a Drive folder
tree (``/embeddedfolderview`` pages with Drive-style links, ``/uc?id=`` files with Range support) and a hub
model repo (``/api/models/<repo>/revision/<rev>``, ``/<repo>/resolve/<rev>/<file>``). Faults are injected
per file: an HTTP status, or a connection cut after N bytes (once). It records every request, serves at
most ``max_requests`` and stops itself after ``lifetime`` seconds.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (gdown's probe, an injected cut) are expected here


class FakeHubs:
    def __init__(self, drive_root: Path | None = None, hub_repos: dict[str, Path] | None = None,
                 lifetime: float = 300.0, max_requests: int = 2000) -> None:
        self.ids: dict[str, Path] = {}  # drive id → file or folder
        self.drive_root_id = self._index(drive_root) if drive_root else ""
        self.hub_repos = dict(hub_repos or {})
        self.fail: dict[str, int] = {}  # drive id or hub file name → HTTP status
        self.cut: dict[str, list[int]] = {}  # drive id or hub file name → bytes sent before each of the next drops
        self.requests: list[str] = []
        self.max_requests = max_requests
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> FakeHubs:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    def _index(self, folder: Path) -> str:
        fid = "F" + hashlib.sha1(str(folder).encode()).hexdigest()[:27]
        self.ids[fid] = folder
        for child in sorted(folder.iterdir()):
            if child.is_dir():
                self._index(child)
            else:
                self.ids["f" + hashlib.sha1(str(child).encode()).hexdigest()[:27]] = child
        return fid

    def id_of(self, path: Path) -> str:
        return next(i for i, p in self.ids.items() if p == path)

    # -- request handling --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hubs = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._route(head=True)

            def do_GET(self) -> None:
                self._route(head=False)

            def _route(self, head: bool) -> None:
                rng = self.headers.get("Range")
                hubs.requests.append(f"{self.command} {self.path}" + (f" Range: {rng}" if rng else ""))
                if len(hubs.requests) > hubs.max_requests:
                    return self._status(503)
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/embeddedfolderview":
                    return self._folder(q.get("id", ""))
                if url.path == "/uc":
                    return self._drive_file(q.get("id", ""), head)
                if url.path.startswith("/api/models/"):
                    return self._hub_info(unquote(url.path[len("/api/models/"):]))
                if "/resolve/" in url.path:
                    repo, rest = unquote(url.path[1:]).split("/resolve/", 1)
                    return self._hub_file(repo, rest.split("/", 1)[1], head)
                self._status(404)

            def _status(self, code: int) -> None:
                body = f"error {code}".encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(body)

            def _folder(self, fid: str) -> None:
                folder = hubs.ids.get(fid)
                if fid in hubs.fail:
                    return self._status(hubs.fail[fid])
                if folder is None or not folder.is_dir():
                    return self._status(404)
                rows = []
                for child in sorted(folder.iterdir()):
                    cid = hubs.id_of(child)
                    href = (f"https://drive.google.com/drive/folders/{cid}" if child.is_dir()
                            else f"https://drive.google.com/file/d/{cid}/view?usp=drive_web")
                    rows.append(f'<div class="flip-entry" id="entry-{cid}"><a href="{href}" target="_blank">'
                                f'<div class="flip-entry-title">{html.escape(child.name)}</div></a></div>')
                page = (f"<!DOCTYPE html><html><head><title>{html.escape(folder.name)}</title></head><body>"
                        f'<div class="flip-entries">{"".join(rows)}</div></body></html>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def _drive_file(self, fid: str, head: bool) -> None:
                path = hubs.ids.get(fid)
                if fid in hubs.fail:
                    return self._status(hubs.fail[fid])
                if path is None or not path.is_file():
                    return self._status(404)
                self._send_bytes(path.read_bytes(), fid, head, {
                    "Content-Disposition": f'attachment; filename="{path.name}"'})

            def _hub_info(self, rest: str) -> None:
                tree = "/tree/" in rest
                repo = rest.split("/tree/" if tree else "/revision/")[0]
                folder = hubs.hub_repos.get(repo)
                if folder is None:
                    return self._status(404)
                files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
                if tree:
                    body = json.dumps([{"type": "file", "path": f, "size": (folder / f).stat().st_size,
                                        "oid": hashlib.sha1((folder / f).read_bytes()).hexdigest()}
                                       for f in files]).encode()
                else:
                    body = json.dumps({"id": repo, "modelId": repo, "sha": "a" * 40, "private": False,
                                       "siblings": [{"rfilename": f} for f in files]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _hub_file(self, repo: str, name: str, head: bool) -> None:
                folder = hubs.hub_repos.get(repo)
                if name in hubs.fail:
                    return self._status(hubs.fail[name])
                if folder is None or not (folder / name).is_file():
                    return self._status(404)
                data = (folder / name).read_bytes()
                self._send_bytes(data, name, head, {"X-Repo-Commit": "a" * 40,
                                                     "ETag": f'"{hashlib.sha256(data).hexdigest()}"'})

            def _send_bytes(self, data: bytes, key: str, head: bool, extra: dict[str, str]) -> None:
                start = 0
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes=") and not head:
                    start = int(rng[6:].split("-")[0] or 0)
                part = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(part)))
                self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                if head:
                    return
                cuts = hubs.cut.get(key) or []
                if cuts:
                    cut = cuts.pop(0)
                    self.wfile.write(part[:cut])
                    self.wfile.flush()
                    self.close_connection = True  # fewer bytes than Content-Length, then EOF
                    return
                self.wfile.write(part)

        return Handler
