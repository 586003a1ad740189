"""salad_blender.heatmap: word grouping, panel drawing and the Blender image (the last one needs bpy)."""

import numpy as np
from needs import require_module

from salad_blender import heatmap


def test_word_groups_for_bert_and_clip_tokens():
    bert = ["[CLS]", "a", "person", "walk", "##s", "forward", ",", "then", "jumps", "[SEP]"]
    assert heatmap.word_groups("A person walks forward, then jumps", bert) == [
        ("A", [1]), ("person", [2]), ("walks", [3, 4]), ("forward", [5]), ("then", [7]), ("jumps", [8])]
    clip = ["<|startoftext|>", "a</w>", "right</w>", "-</w>", "handed</w>", "wave</w>", "<|endoftext|>"]
    assert heatmap.word_groups("a right-handed wave", clip) == [("a", [1]), ("right-handed", [2, 3, 4]),
                                                                ("wave", [5])]
    assert heatmap.split_words("walks, then jumps!") == ["walks", "then", "jumps"]


def test_render_panels_layout_and_normalisation():
    rng = np.random.default_rng(0)
    maps = rng.random((5, 7, 20))
    maps[3] *= 5.0  # one strong word
    groups = [("a", [1]), ("person", [2]), ("jumps", [3, 4])]
    wm = heatmap.word_maps(maps, groups)
    assert wm.shape == (3, 7, 20) and np.allclose(wm[2], maps[3] + maps[4])
    img = heatmap.render(wm, ["a", "person", "jumps"], row_px=8, gap=6)
    assert img.dtype == np.float32 and img.shape[2] == 4 and np.all(img[..., 3] == 1.0)
    assert img.shape[0] == 3 * 7 * 8 + 2 * 6 + 2 * 6
    left = img.shape[1] - 6 - 20 * int(np.ceil(480 / 20))
    bright = [img[6 + k * 62: 6 + k * 62 + 56, left:-6, :3].mean() for k in range(3)]
    assert bright[2] > bright[0] and bright[2] > bright[1]  # shared scale: the strong word is brightest
    per_word = heatmap.render(wm, ["a", "person", "jumps"], normalize="word")
    b2 = [per_word[6 + k * 62: 6 + k * 62 + 56, left:-6, :3].mean() for k in range(3)]
    assert max(b2) - min(b2) < 0.1  # each panel stretched to its own range
    assert heatmap.text_mask("jumps", 2).shape == (10, 38) and heatmap.text_mask("jumps").any()
    assert np.allclose(heatmap.colormap(np.array([0.0, 1.0])), heatmap._RAMP[[0, -1]])


def test_blender_image_created_then_resized_in_place():
    bpy = require_module("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    a = np.zeros((10, 20, 4), dtype=np.float32)
    a[0, :, 0] = 1.0  # top row red
    a[..., 3] = 1.0
    img = heatmap.to_blender_image(a, "SALAD test image")
    assert tuple(img.size) == (20, 10)
    px = np.empty(20 * 10 * 4, dtype=np.float32)
    img.pixels.foreach_get(px)
    assert px.reshape(10, 20, 4)[-1, 0, 0] > 0.99  # Blender stores the bottom row first
    img2 = heatmap.to_blender_image(np.ones((6, 8, 4), dtype=np.float32), "SALAD test image")
    assert img2 == img and tuple(img.size) == (8, 6) and len(bpy.data.images) == 1
