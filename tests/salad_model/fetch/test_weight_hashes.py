"""sha256 of the weights we load: published pins (CLIP, MiniLM) and the hashes recorded at download (Drive).

The download runs for real against the loopback release (tests/official_release.py); ``server`` sets
``SALAD_OFFICIAL_SOURCES`` to the shipped sources with this release's CLIP pin, the way a mirror would.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from fake_hubs import FakeHubs
from official_release import DEN

from salad_model import CONFIGS_DIR
from salad_model.fetch import official
from salad_model.fetch.drive import DownloadError, DriveFolder
from salad_model.runtime import integrity
from salad_model.runtime.checkpoints import CheckpointError, load_any

SHIPPED = json.loads((CONFIGS_DIR / "official_sources.json").read_text(encoding="utf-8"))
CLIP_WEIGHTS = f"{official.CLIP_FOLDER}/pytorch_model.bin"


def fetch(server: FakeHubs, root: Path) -> Path:
    return official.download_official("t2m", root, drive_folder=server.drive_root_id, drive_url=server.url,
                                      hf_endpoint=server.url, log=lambda line: None)


def _flip_last_byte(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # same size: only the hash can tell
    return data


def test_shipped_sources_pin_clip_and_name_the_authors_folders() -> None:
    clip = SHIPPED["clip"]
    assert re.fullmatch(r"[0-9a-f]{40}", clip["revision"])  # a commit, not a moving branch
    pinned = {rel.split("/", 1)[1] for rel in clip["sha256"]}
    assert pinned and pinned <= set(clip["files"])  # every pin names a file the snapshot fetches
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in clip["sha256"].values())
    for dataset in official.DATASETS:  # the command no longer needs --drive-folder
        DriveFolder(SHIPPED[dataset]["drive_folder"])  # a well-formed Drive id (raises otherwise)


def test_clip_weights_differing_from_the_published_pin_are_refused(server: FakeHubs, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALAD_OFFICIAL_SOURCES")  # the real pin; the loopback CLIP has random weights
    root = tmp_path / "models"
    want = SHIPPED["clip"]["sha256"][CLIP_WEIGHTS]
    got = integrity.sha256_file(server.hub / "pytorch_model.bin")
    with pytest.raises(DownloadError) as err:
        fetch(server, root)
    msg = str(err.value)
    assert CLIP_WEIGHTS in msg and f"sha256 {got}, expected {want}" in msg and "refused and deleted" in msg
    assert not (root / "t2m.partial" / "checkpoints" / CLIP_WEIGHTS).exists()
    assert official.official_model_dir(root, "t2m") is None and not (root / "t2m").exists()


def test_matching_pin_passes_and_the_download_records_every_hash(server: FakeHubs, tmp_path: Path) -> None:
    root = tmp_path / "models"
    path = fetch(server, root)
    marker = json.loads((root / "t2m" / integrity.MARKER).read_text())
    pin = json.loads(Path(os.environ["SALAD_OFFICIAL_SOURCES"]).read_text())["clip"]["sha256"][CLIP_WEIGHTS]
    assert marker["files"][f"checkpoints/{CLIP_WEIGHTS}"]["sha256"] == pin
    served = server.drive / DEN / "model" / "net_best_fid.tar"
    recorded = marker["files"][f"checkpoints/t2m/{DEN}/model/net_best_fid.tar"]
    assert recorded["sha256"] == integrity.sha256_file(served) and recorded["bytes"] == served.stat().st_size
    assert integrity.check_download(path) is True


def test_every_load_checks_the_files_against_the_download_record(server: FakeHubs, tmp_path: Path) -> None:
    root = tmp_path / "models"
    path = fetch(server, root)
    assert load_any(path).info["name"] == DEN
    tar = path / "model" / "net_best_fid.tar"
    recorded = json.loads((root / "t2m" / integrity.MARKER).read_text())["files"][
        f"checkpoints/t2m/{DEN}/model/net_best_fid.tar"]["sha256"]
    good = _flip_last_byte(tar)
    with pytest.raises(CheckpointError) as err:
        load_any(path)
    msg = str(err.value)
    assert str(tar) in msg and f"expected {recorded}" in msg and integrity.sha256_file(tar) in msg
    assert "changed since it was downloaded" in msg and "download official" in msg
    with pytest.raises(DownloadError, match="net_best_fid.tar has sha256"):  # "already here" checks too
        fetch(server, root)
    tar.write_bytes(good)
    assert load_any(path).info["name"] == DEN

    stats = root / "t2m" / "checkpoints" / "t2m" / "Comp_v6_KLD005" / "meta" / "std.npy"
    kept = stats.read_bytes()
    stats.unlink()
    with pytest.raises(CheckpointError, match=r"std\.npy was recorded at download but is missing"):
        load_any(path)
    stats.write_bytes(kept)

    clip = root / "t2m" / "checkpoints" / official.CLIP_FOLDER
    extra = clip / "model.safetensors"  # transformers would prefer it to the checked pytorch_model.bin
    extra.write_bytes(b"not recorded")
    with pytest.raises(CheckpointError, match=r"model\.safetensors was not part of the verified download"):
        load_any(path)
    extra.unlink()
    assert load_any(path).info["name"] == DEN


def test_cli_reports_a_changed_file_of_the_official_model(server: FakeHubs, tmp_path: Path, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from salad_model.__main__ import main

    monkeypatch.setenv("SALAD_HOME", str(tmp_path / "home"))
    path = fetch(server, tmp_path / "home" / "official")
    _flip_last_byte(path.parent / "t2m_vae_gelu" / "model" / "net_best_fid.tar")
    code = main(["generate", "a person walks forward", "--model", "official", "--out", str(tmp_path / "a.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "t2m_vae_gelu/model/net_best_fid.tar has sha256" in err and "expected" in err
    assert not (tmp_path / "a.npz").exists()


def test_a_folder_not_downloaded_by_us_has_nothing_recorded(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / "t2m" / DEN).mkdir(parents=True)
    assert integrity.download_record(tmp_path / "checkpoints" / "t2m" / DEN) is None
    assert integrity.check_download(tmp_path / "checkpoints" / "t2m" / DEN) is False


def test_check_sha256_names_file_expected_and_actual_and_rehashes_a_changed_file(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"one")
    one = integrity.sha256_file(f)
    integrity.check_sha256(f, one, "unused")
    os.utime(f, ns=(1, 1))
    f.write_bytes(b"two")  # same size, new content: the per-process cache must not answer
    with pytest.raises(integrity.IntegrityError) as err:
        integrity.check_sha256(f, one, "do this")
    assert str(err.value) == f"{f} has sha256 {integrity.sha256_file(f)}, expected {one}: do this"
    with pytest.raises(FileNotFoundError):
        integrity.check_sha256(tmp_path / "missing.bin", one, "unused")


def test_minilm_encoder_refuses_weights_that_are_not_the_pinned_file(tmp_path: Path) -> None:
    from salad_model.runtime import text_hf

    src = text_hf.minilm_model_dir()
    for p in src.iterdir():  # the package's snapshot, its weights swapped
        if p.is_file() and p.name != "model.safetensors":
            (tmp_path / p.name).symlink_to(p)
    (tmp_path / "model.safetensors").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ValueError, match=rf"model\.safetensors has sha256 [0-9a-f]{{64}}, expected "
                                         rf"{text_hf.MINILM_SHA256}.*force-reinstall"):
        text_hf.MiniLMTextEncoder(folder=tmp_path)
