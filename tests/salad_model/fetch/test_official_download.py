"""``download official`` for real against a loopback Drive + hub server (tests/fake_hubs.py).

The server serves the authors' folder layout with files built from random weights
(tests/official_release.py). Nothing here talks to the internet: the hub's offline switch is lifted only
for the loopback calls.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from fake_hubs import FakeHubs
from official_release import CLIP_REPO, DEN

from salad_model.fetch import official
from salad_model.fetch.drive import DownloadError
from salad_model.runtime.checkpoints import load_any


def fetch(server: FakeHubs, root: Path, **kw) -> Path:
    lines: list[str] = []
    path = official.download_official("t2m", root, drive_folder=server.drive_root_id, drive_url=server.url,
                                      hf_endpoint=server.url, log=lines.append, **kw)
    fetch.lines = lines  # type: ignore[attr-defined]
    return path


def _file_gets(server: FakeHubs, path: Path) -> list[str]:
    fid = server.id_of(path)
    return [r for r in server.requests if f"/uc?id={fid}" in r]


def test_download_verifies_and_offers_the_model(server: FakeHubs, tmp_path: Path) -> None:
    root = tmp_path / "models"
    path = fetch(server, root)
    assert path == root / "t2m" / "checkpoints" / "t2m" / DEN
    assert official.official_model_dir(root, "t2m") == path
    assert not (root / "t2m.partial").exists()
    bundle = load_any(path)  # the published folder loads on its own, CLIP found beside it
    assert bundle.info["dataset"] == "t2m" and bundle.text_encoder["path"].endswith("clip-vit-base-patch32")
    served = server.drive / DEN / "model" / "net_best_fid.tar"
    assert (path / "model" / "net_best_fid.tar").read_bytes() == served.read_bytes()
    marker = json.loads((root / "t2m" / official.MARKER).read_text())
    assert marker["model"] == f"checkpoints/t2m/{DEN}" and marker["text_dim"] == 16
    assert "checkpoints/clip-vit-base-patch32/pytorch_model.bin" in marker["files"]
    assert not (root / "t2m" / "checkpoints" / "clip-vit-base-patch32" / "README.md").exists()
    assert not _file_gets(server, server.drive / "text_mot_match" / "model" / "finest.tar")  # evaluator skipped
    assert any("%]" in line for line in fetch.lines)  # progress lines
    n = len(server.requests)
    assert fetch(server, root) == path and len(server.requests) == n  # already there: no request at all


def test_interrupted_transfer_resumes(server: FakeHubs, tmp_path: Path) -> None:
    root = tmp_path / "models"
    big = server.drive / DEN / "model" / "net_best_fid.tar"
    assert big.stat().st_size > 2_500_000
    server.cut[server.id_of(big)] = [1_500_000, 700_000, 700_000]  # every attempt of the first run is cut
    with pytest.raises(DownloadError, match="interrupted|incomplete|failed"):
        fetch(server, root)
    stage = root / "t2m.partial" / "checkpoints" / "t2m" / DEN / "model"
    parts = list(stage.glob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size >= 1_000_000
    assert not (stage / "net_best_fid.tar").exists()  # the partial file never has the model's name
    assert official.official_model_dir(root, "t2m") is None and not (root / "t2m").exists()
    kept = parts[0].stat().st_size
    before = len(_file_gets(server, big))
    path = fetch(server, root)
    second = _file_gets(server, big)[before:]
    assert any(f"Range: bytes={kept}-" in r for r in second), second  # continued, not restarted
    assert (path / "model" / "net_best_fid.tar").read_bytes() == big.read_bytes()
    vae = server.drive / "t2m_vae_gelu" / "model" / "net_best_fid.tar"
    assert len(_file_gets(server, vae)) == 1  # finished files are not fetched again


def test_corrupt_file_is_refused_deleted_and_fetched_again(server: FakeHubs, tmp_path: Path) -> None:
    root = tmp_path / "models"
    vae = server.drive / "t2m_vae_gelu" / "model" / "net_best_fid.tar"
    good = vae.read_bytes()
    vae.write_bytes(good[: len(good) // 2])  # truncated on the server
    with pytest.raises(DownloadError, match=r"refused.*t2m_vae_gelu.*net_best_fid\.tar.*run the command again"):
        fetch(server, root)
    assert official.official_model_dir(root, "t2m") is None and not (root / "t2m").exists()
    assert not (root / "t2m.partial" / "checkpoints" / "t2m" / "t2m_vae_gelu" / "model" / "net_best_fid.tar").exists()
    vae.write_bytes(good)  # fixed upstream
    assert load_any(fetch(server, root)).info["name"] == DEN


def test_wrong_shapes_and_text_width_are_refused(server: FakeHubs, tmp_path: Path) -> None:
    den = server.drive / DEN / "model" / "net_best_fid.tar"
    ckpt = torch.load(den, weights_only=True)
    key = "input_process.layers.0.weight"
    ckpt["denoiser"]["word_emb.weight"] = torch.zeros(128, 32)  # 32-wide text in, the CLIP gives 16
    torch.save(ckpt, den)
    with pytest.raises(DownloadError, match="16-wide text features.*needs 32"):
        fetch(server, tmp_path / "a")
    del ckpt["denoiser"][key]
    torch.save(ckpt, den)
    with pytest.raises(DownloadError, match=f"refused.*{key}"):
        fetch(server, tmp_path / "b")
    assert official.official_model_dir(tmp_path / "b", "t2m") is None


@pytest.mark.parametrize("status", [403, 404])
def test_http_errors_say_what_happened(server: FakeHubs, tmp_path: Path, status: int) -> None:
    big = server.drive / DEN / "model" / "net_best_fid.tar"
    server.fail[server.id_of(big)] = status
    with pytest.raises(DownloadError, match=f"HTTP {status}") as err:
        fetch(server, tmp_path / "models")
    assert ("not shared publicly" if status == 403 else "outdated") in str(err.value)
    server.fail.clear()
    server.fail["pytorch_model.bin"] = status  # the hub side
    with pytest.raises(DownloadError, match=f"CLIP text model.*HTTP {status}"):
        fetch(server, tmp_path / "models")
    assert official.official_model_dir(tmp_path / "models", "t2m") is None


def test_folder_listing_refused(server: FakeHubs, tmp_path: Path) -> None:
    server.fail[server.drive_root_id] = 404
    with pytest.raises(DownloadError, match="listing the Drive folder.*HTTP 404"):
        fetch(server, tmp_path / "models")


def test_incomplete_release_is_named(server: FakeHubs, tmp_path: Path) -> None:
    shutil.rmtree(server.drive / "Comp_v6_KLD005")
    srv = FakeHubs(drive_root=server.drive, hub_repos={CLIP_REPO: server.hub}, lifetime=60)
    with srv, pytest.raises(DownloadError, match="incomplete.*Comp_v6_KLD005/meta/mean.npy"):
        fetch(srv, tmp_path / "models")


def test_online_access_off_refuses_before_any_request(server: FakeHubs, tmp_path: Path, capsys,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DownloadError, match="Online access is off"):
        fetch(server, tmp_path / "models", online=False)
    from salad_model.__main__ import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["download", "official", "--dir", str(tmp_path / "m"), "--drive-folder", server.drive_root_id,
                 "--drive-url", server.url])
    assert code == 2 and "Online access is off" in capsys.readouterr().err
    assert server.requests == [] and not (tmp_path / "models").exists()


def test_cli_downloads_and_model_official_resolves(server: FakeHubs, tmp_path: Path, capsys,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from salad_model.__main__ import main
    from salad_model.fetch.cli import resolve_model

    monkeypatch.setenv("SALAD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    with pytest.raises(DownloadError, match="not downloaded yet.*download official"):
        resolve_model("official")
    assert main(["download", "official", "--drive-folder", server.drive_root_id, "--drive-url", server.url]) == 0
    out = capsys.readouterr()
    assert resolve_model("official") == out.out.strip().splitlines()[-1]
    assert "%]" in out.err and "verified" in out.err
