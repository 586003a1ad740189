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
                       "--model", str(tiny_model_dir), "--python", sys.executable, "--bvh", "--out", str(out)])
    monkeypatch.setattr(exporter, "write_armature", real)
    err = capsys.readouterr().err
    assert code == 1
    assert older.read_text(encoding="utf-8") == "an earlier run's complete file"  # not cut by the failed write
    assert sorted(f.name for f in out.iterdir()) == ["a_person_walks.blend", "a_person_walks.bvh"]  # no partial
    line = next(ln for ln in err.splitlines() if ln.startswith("error: 'a person walks'"))
    assert line == ("error: 'a person walks': cannot write a_person_walks.bvh: No space left on device "
                    "(a_person_walks.blend written)")
