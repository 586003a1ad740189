"""Get Official Model as the add-on runs it: the real download command in a subprocess (the worker
environment's Python), polled like the UI's timer, against the loopback Drive + hub server.

No bpy needed: salad_blender.official_model takes the paths and the online flag from its callers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from official_release import DEN

from salad_blender import official_model
from salad_blender.setup_env import SetupError


@pytest.fixture()
def child_env(server, monkeypatch: pytest.MonkeyPatch):
    """The download subprocess reaches only the loopback server (its endpoints come from the environment)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("SALAD_DRIVE_URL", server.url)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # `python -m salad_model` finds this checkout
    return server


def _run(job: official_model.DownloadJob, hang: float = 300) -> list[float]:
    seen, end = [], time.monotonic() + hang
    while not job.poll():
        seen.append(job.progress)
        assert time.monotonic() < end, f"hang guard: {job.status}"
        time.sleep(0.05)
    return seen


def test_get_official_model_downloads_verifies_and_offers_it(child_env, tmp_path: Path) -> None:
    root = tmp_path / "official"
    assert official_model.official_model_path(root) == ""
    job = official_model.start_download(sys.executable, root, "t2m", online_access=True,
                                        drive_folder=child_env.drive_root_id)
    seen = _run(job)
    assert job.state == "done", job.message + "\n" + "\n".join(job.log)
    path = official_model.official_model_path(root)
    assert path.endswith(f"checkpoints/t2m/{DEN}") and path in job.message and job.progress == 1.0
    assert any(0 < p < 1 for p in seen)  # the bar moved with the command's percentage lines
    assert any(ln.startswith("[") and "%]" in ln for ln in job.log)


def test_http_error_reaches_the_preferences_message(child_env, tmp_path: Path) -> None:
    big = child_env.drive / DEN / "model" / "net_best_fid.tar"
    child_env.fail[child_env.id_of(big)] = 403
    job = official_model.start_download(sys.executable, tmp_path / "official", "t2m", online_access=True,
                                        drive_folder=child_env.drive_root_id)
    _run(job)
    assert job.state == "failed"
    assert "Getting the official model failed" in job.message and "HTTP 403" in job.message
    assert official_model.official_model_path(tmp_path / "official") == ""


def test_cancel_then_resume(child_env, tmp_path: Path) -> None:
    root = tmp_path / "official"
    big = child_env.drive / DEN / "model" / "net_best_fid.tar"
    child_env.cut[child_env.id_of(big)] = [1_500_000, 1, 1]  # the run stalls in retries on the big file
    job = official_model.start_download(sys.executable, root, "t2m", online_access=True,
                                        drive_folder=child_env.drive_root_id)
    end = time.monotonic() + 300
    while not any(DEN in ln and "%]" in ln for ln in job.log):
        assert not job.poll(), job.message
        assert time.monotonic() < end, job.status
        time.sleep(0.05)
    job.cancel()
    assert job.state == "cancelled" and "resumes" in job.message
    assert official_model.official_model_path(root) == ""
    child_env.cut.clear()
    again = official_model.start_download(sys.executable, root, "t2m", online_access=True,
                                          drive_folder=child_env.drive_root_id)
    _run(again)
    assert again.state == "done", again.message
    assert Path(official_model.official_model_path(root), "model", "net_best_fid.tar").read_bytes() == big.read_bytes()


def test_online_access_off_refuses_before_anything(server, tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="Online access is disabled.*Get Official Model"):
        official_model.start_download(sys.executable, tmp_path / "o", "t2m", online_access=False)
    with pytest.raises(SetupError, match="--offline-mode"):
        official_model.check_online(False, overridden=True)
    with pytest.raises(SetupError, match="Set Up Model Environment"):
        official_model.start_download("", tmp_path / "o", "t2m", online_access=True)
    assert server.requests == [] and not (tmp_path / "o").exists()


def test_a_partial_download_is_never_offered(tmp_path: Path) -> None:
    (tmp_path / "t2m.partial" / "checkpoints" / "t2m" / DEN).mkdir(parents=True)
    assert official_model.official_model_path(tmp_path) == ""
    (tmp_path / "t2m").mkdir()
    (tmp_path / "t2m" / official_model.MARKER).write_text("{not json")
    assert official_model.official_model_path(tmp_path) == ""


def test_a_failure_message_ends_one_sentence_once(tmp_path: Path) -> None:
    """The command's own 'error: …' line already ends in a full stop: no 'try again.. Nothing was changed'."""
    job = official_model.DownloadJob(str(tmp_path / "no-python"), tmp_path / "official", "t2m")  # starts nothing
    job.log.append("error: Online access is off, so nothing was downloaded. Allow it and try again.")
    job._fail("exited with code 1")
    assert job.message == ("Getting the official model failed: Online access is off, so nothing was downloaded. "
                           "Allow it and try again. Nothing was changed; finished files are kept and the next try "
                           "resumes.")
