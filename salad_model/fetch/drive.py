"""A thin Google Drive layer: list a shared folder, fetch its files with gdown (resume, retries, cancel).

Why our own listing: gdown hard-codes drive.google.com, so its folder walk cannot be pointed at a test
server. Listing a public folder is one page (``/embeddedfolderview?id=…``) whose links name the
children; the file transfer itself (confirmation pages, ``.part`` files, Range resume) stays gdown's.
``base_url`` is injectable so tests run this very code against a loopback server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

DRIVE_URL = "https://drive.google.com"
_FILE_RE = re.compile(r"/file/d/([-\w]{10,})(?:/|$)")
_FOLDER_RE = re.compile(r"/drive/folders/([-\w]{10,})(?:[/?]|$)")


class DownloadError(Exception):
    """A download was refused, failed or is incomplete; the message says what and what to do."""


@dataclass(frozen=True)
class DriveEntry:
    """One file of a Drive folder tree: its id and path relative to the folder."""

    id: str
    path: PurePosixPath


class _Links(HTMLParser):
    """Collects (href, text) of every <a> in a folder page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def http_error_message(status: int, what: str) -> str:
    """What an HTTP status means for a user fetching public weights."""
    if status in (401, 403):
        return (f"{what} was refused (HTTP {status}): the file is not shared publicly any more, or Google "
                "Drive's download quota for it is used up for today. Try again later, or download it in a "
                "browser.")
    if status == 404:
        return f"{what} was not found (HTTP 404): the link is outdated; update salad_model or report it."
    if status == 429:
        return f"{what}: too many requests (HTTP 429). Wait a few minutes and run the command again."
    return f"{what} failed with HTTP {status}. Run the command again; finished files are kept."


class DriveFolder:
    """A public Drive folder tree behind ``base_url`` (``https://drive.google.com`` or a test server)."""

    def __init__(self, folder_id: str, base_url: str = DRIVE_URL, timeout: float = 60.0) -> None:
        if not re.fullmatch(r"[-\w]{10,}", folder_id or ""):
            raise DownloadError(f"not a Google Drive folder id: {folder_id!r}")
        self.folder_id, self.base_url, self.timeout = folder_id, base_url.rstrip("/"), timeout

    def _children(self, folder_id: str) -> list[tuple[str, str, bool]]:
        import requests

        url = f"{self.base_url}/embeddedfolderview?id={folder_id}"
        try:
            r = requests.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DownloadError(f"cannot reach {self.base_url}: {exc}") from exc
        if r.status_code != 200:
            raise DownloadError(http_error_message(r.status_code, f"listing the Drive folder {folder_id}"))
        parser = _Links()
        parser.feed(r.text)
        out: list[tuple[str, str, bool]] = []
        for href, name in parser.links:
            if not name or "/" in name or name in (".", ".."):
                continue
            m = _FILE_RE.search(href)
            if m:
                out.append((m.group(1), name, False))
                continue
            m = _FOLDER_RE.search(href)
            if m and m.group(1) != folder_id:
                out.append((m.group(1), name, True))
        return out

    def walk(self, max_depth: int = 6) -> Iterator[DriveEntry]:
        """Every file below the folder (depth-first), with its relative path."""
        stack = [(self.folder_id, PurePosixPath(), 0)]
        while stack:
            fid, prefix, depth = stack.pop()
            for cid, name, is_folder in self._children(fid):
                if is_folder and depth < max_depth:
                    stack.append((cid, prefix / name, depth + 1))
                elif not is_folder:
                    yield DriveEntry(cid, prefix / name)

    def file_url(self, file_id: str) -> str:
        return f"{self.base_url}/uc?id={file_id}&export=download"

    def download(self, entry: DriveEntry, dest: Path, progress: Callable[[int, int | None], None] | None = None,
                 cancel: threading.Event | None = None, retries: int = 2) -> Path:
        """Fetch one file to ``dest`` through gdown; an interrupted transfer resumes from its ``.part`` file."""
        import gdown
        import requests

        dest.parent.mkdir(parents=True, exist_ok=True)
        what = f"downloading {entry.path}"
        try:
            gdown.download(url=self.file_url(entry.id), output=str(dest), quiet=True, resume=True,
                           progress=progress, cancel=cancel, retries=retries, timeout=self.timeout)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            raise DownloadError(http_error_message(status, what)) from exc
        except (requests.RequestException, OSError) as exc:
            raise DownloadError(f"{what} was interrupted: {exc}. Run the command again to resume.") from exc
        except Exception as exc:  # gdown's own errors (permission pages, quota pages, cancelled)
            status = _status_in(str(exc))
            if status:
                raise DownloadError(http_error_message(status, what)) from exc
            raise DownloadError(f"{what} failed: {exc}") from exc
        if not dest.is_file():
            raise DownloadError(f"{what} produced no file")
        return dest


def _status_in(text: str) -> int:
    m = re.search(r"\b(40[134]|429|5\d\d)\b", text)
    return int(m.group(1)) if m else 0
