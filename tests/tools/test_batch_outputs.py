"""tools/batch.py when an output cannot be written (disk full): no truncated file, an older one kept, one line."""

import errno
import importlib
import importlib.util
import sys

from batch_module import load_batch
from needs import require_module

bpy = require_module("bpy")


def _batch():
    return load_batch("salad_batch_outputs")


def test_a_full_disk_during_the_bvh_export_leaves_no_truncated_file(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """Blender's BVH exporter writes in place: ENOSPC half-way left 32 KB of a 42 KB .bvh under its final name
    (seen on a 260 KB tmpfs) and the error line was the exporter's whole traceback."""
    batch = _batch()
    import addon_utils

    addon_utils.enable("io_anim_bvh", default_set=False)
    exporter = importlib.import_module("io_anim_bvh.export_bvh")
    real = exporter.write_armature

    def disk_full(context, filepath, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        with open(filepath, "w", encoding="utf-8") as fh:
            fh.write("HIERARCHY\nROOT pelvis\n{\n")  # what reached the disk before it filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "out"
    out.mkdir()
    older = out / "a_person_walks.bvh"
    older.write_text("an earlier run's complete file", encoding="utf-8")
    monkeypatch.setattr(exporter, "write_armature", disk_full)
    code = batch.main(["batch.py", "--prompt", "a person walks", "--seconds", "2", "--steps", "2", "--threads", "1",
                       "--model", str(tiny_model_dir), "--python", sys.executable, "--bvh", "--out", str(out),
                       "--force"])  # the older .bvh is to be replaced
    monkeypatch.setattr(exporter, "write_armature", real)
    err = capsys.readouterr().err
    assert code == 1
    assert older.read_text(encoding="utf-8") == "an earlier run's complete file"  # not cut by the failed write
    assert sorted(f.name for f in out.iterdir()) == ["a_person_walks.blend", "a_person_walks.bvh"]  # no partial
    line = next(ln for ln in err.splitlines() if ln.startswith("error: 'a person walks'"))
    assert line == ("error: 'a person walks': cannot write a_person_walks.bvh: No space left on device "
                    "(a_person_walks.blend written)")


def test_existing_outputs_are_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """A second run into one folder replaced the first run's files without a word (``python -m salad_model``
    refuses without --force); now refused before Blender or a worker starts, naming the file."""
    batch = _batch()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_person_walks_2.bvh").write_text("an earlier run's file", encoding="utf-8")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person walks\na person walks\n", encoding="utf-8")  # slugs a_person_walks(_2)

    def no_worker(flag):  # noqa: ANN001
        raise AssertionError("a worker was looked for")

    monkeypatch.setattr(batch, "worker_python", no_worker)
    code = batch.main(["batch.py", "--prompts", str(prompts), "--bvh", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {out / 'a_person_walks_2.bvh'} exists; choose another --out or pass --force to overwrite"]
    assert (out / "a_person_walks_2.bvh").read_text(encoding="utf-8") == "an earlier run's file"
    plain = batch.parse_args(["--prompts", str(prompts), "--out", str(out)])  # without --bvh: nothing of it exists
    assert batch.existing_outputs(plain, out, ["a_person_walks", "a_person_walks_2"]) == []


def test_error_lines_name_the_prompt_short_and_right():
    """An empty prompt's error was labelled 'the shot'; a 10,000-character prompt was repeated whole in its line."""
    batch = _batch()
    a = batch.parse_args(["--prompt", "x", "--out", "o"])
    long = "walk " * 2000
    runs = batch.plan(a, ["", long, "a person walks", "a person walks"])
    assert [slug for _, slug, _ in runs] == ["motion", "walk_walk_walk_walk_walk_walk_walk_walk_walk_walk_walk_walk",
                                             "a_person_walks", "a_person_walks_2"]
    labels = [label for _, _, label in runs]
    assert labels[0] == "''" and labels[2] == "'a person walks'"
    assert len(labels[1]) <= 82 and labels[1].endswith("…'")
    shot = batch.parse_args(["--segment", "a person waves:3", "--out", "o"])
    assert batch.plan(shot, [None])[0][1:] == ("shot_a_person_waves", "'the shot'")


def test_force_over_an_existing_blend_leaves_no_blend1_backup(tmp_path, tiny_model_dir):
    """Blender's "Save Versions" (1 by default) kept the replaced file as a_person_walks.blend1 beside a --force
    run's new .blend (a second `bash scripts/demo.sh` showed it); the user's preference itself is put back."""
    batch = _batch()
    out = tmp_path / "out"
    args = ["batch.py", "--prompt", "a person walks", "--seconds", "2", "--steps", "2", "--threads", "1",
            "--model", str(tiny_model_dir), "--python", sys.executable, "--out", str(out), "--force"]
    prefs = bpy.context.preferences.filepaths
    assert prefs.save_version >= 1  # Blender's default: the backup would be made
    versions = prefs.save_version
    assert batch.main(args) == 0
    first = (out / "a_person_walks.blend").stat().st_mtime_ns
    assert batch.main(args) == 0
    assert (out / "a_person_walks.blend").stat().st_mtime_ns >= first
    assert sorted(f.name for f in out.iterdir()) == ["a_person_walks.blend"]
    assert prefs.save_version == versions
