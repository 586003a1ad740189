"""Import Motion from Video onto the selected object: a wrong target is refused before the worker reads the video.

Why: reading a video takes the worker seconds to minutes; a cube or a rig the preset does not fit must be
said at the click (as Generate says it), not after the whole video was read. No mediapipe needed: the
refusals come before any worker request (the pool's worker records what it was sent).
"""

import pytest

bpy = pytest.importorskip("bpy")

from blender_state import snapshot  # noqa: E402
from shot_fakes import FakePool  # noqa: E402
from testdata import DATA  # noqa: E402

from benchmarks.bench_retarget import synthetic_walk  # noqa: E402
from salad_blender import armature, jobs, video_jobs  # noqa: E402

CLIP = DATA / "video" / "walk_turn_left_front.mp4"


def test_wrong_target_is_refused_before_the_video_is_read(scene, tiny_model_dir):
    import sys

    config = jobs.WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1)
    pool = FakePool()
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    rig = armature.create_smpl22_armature("Rig", synthetic_walk(8), with_mesh=False)
    before = snapshot()
    for target, message in ((jobs.Target(kind="armature", armature=cube.name), "not an armature"),
                            (jobs.Target(kind="armature", armature=rig.name, rig="mixamo"), "cannot take the motion"),
                            (jobs.Target(kind="armature", armature=""), "Select the armature"),
                            (jobs.Target(kind="elsewhere"), "Unknown target")):
        with pytest.raises(jobs.JobError, match=message):
            video_jobs.start_import_video(config, str(CLIP), target, pool=pool)
    assert pool.worker.sent == [] and snapshot() == before
    target = jobs.Target(kind="armature", armature=rig.name, rig="auto")
    video_jobs.start_import_video(config, str(CLIP), target, pool=pool)
    assert target.rig == "smpl22"  # resolved now, as Generate resolves it


def test_all_selected_armatures_are_checked_before_the_video_is_read(scene, tiny_model_dir):
    import sys

    config = jobs.WorkerConfig(python=sys.executable, model=str(tiny_model_dir), device="cpu", threads=1)
    pool = FakePool()
    good = armature.create_smpl22_armature("Good", synthetic_walk(8), with_mesh=False)
    broken = armature.create_smpl22_armature("Broken", synthetic_walk(8), with_mesh=False)
    bpy.context.view_layer.objects.active = broken
    bpy.ops.object.mode_set(mode="EDIT")
    broken.data.edit_bones.remove(broken.data.edit_bones["left_foot"])
    bpy.ops.object.mode_set(mode="OBJECT")
    target = jobs.Target(kind="armature", armature=good.name, others=(good.name, broken.name))
    with pytest.raises(jobs.JobError, match="'Broken' cannot take the motion"):
        video_jobs.start_import_video(config, str(CLIP), target, pool=pool)
    assert pool.worker.sent == []
