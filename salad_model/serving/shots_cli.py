"""Command line of shots (issue #13): ``compose``, ``continue``, ``inbetween`` and ``edit --parts``.

::

    python -m salad_model compose --segment "a person walks forward:4" --segment "a person waves:3" \
        --seed 0 --out shot.npz
    python -m salad_model continue walk.npz --prompt "a person runs" --seconds 3 --out more.npz
    python -m salad_model continue --source-prompt "a person walks" --source-seconds 4 --prompt "a person sits" ...
    python -m salad_model inbetween a.bvh b.npz --prompt "a person turns around" --seconds 2 --out ab.npz
    python -m salad_model edit "a person walks forward" --seconds 4 --seed 0 --parts arms \
        --to "a person waves" --out x.npz

Every command writes ``joints`` [T, 22, 3] (metres, Y up, 20 fps) like ``generate``, plus features, the
latent (so a result can be continued exactly) and the metadata JSON with the shot's recipe.
A source file is an .npz from these commands (its latent is reused exactly), any .npz with ``joints``, or a
.bvh (SMPL-22 / Bandai-Namco): real motion goes through the inversion path's encoder.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _shot_options(p: argparse.ArgumentParser, common: Callable[..., None]) -> None:
    """``python -m salad_model``'s common options (without one clip's length) and the windows' settings."""
    common(p, length=False)
    p.add_argument("--context", type=float, default=None,
                   help="seconds of motion each window is conditioned on (default: the measured 1 s)")
    p.add_argument("--resample", type=int, default=0, help="RePaint passes per step (ddim only; 0 = measured default)")


def add_shot_commands(sub, common: Callable[..., None]) -> None:
    """Add compose / continue / inbetween to the ``python -m salad_model`` sub-parsers."""
    c = sub.add_parser("compose", help="a timeline of prompts → one continuous motion (any length up to 300 s)")
    c.add_argument("--segment", action="append", required=True, metavar="PROMPT:SECONDS[:SEED]",
                   help="one segment; repeat in order (a segment's own seed re-rolls only it)")
    c.add_argument("--trim-last", action=argparse.BooleanOptionalAction, default=None,
                   help="on by default: end the last segment's window with the shot instead of generating its "
                        "spill (0.8 s on the demo model) and cutting it: its content is recognised more often "
                        "(model card, \"The last segment's window\"). The cost: a segment appended later changes "
                        "the formerly last one's motion; --no-trim-last keeps every frame when appending")
    _shot_options(c, common)
    k = sub.add_parser("continue", help="extend a motion (file or --source-prompt) by --seconds under --prompt")
    k.add_argument("source", type=Path, nargs="?", default=None, help=".npz or .bvh motion to continue")
    k.add_argument("--source-prompt", default=None, help="generate the source from this prompt instead")
    k.add_argument("--source-seconds", type=float, default=4.0)
    k.add_argument("--prompt", required=True, help="what happens next")
    k.add_argument("--seconds", type=float, required=True, help="how much to add")
    _shot_options(k, common)
    b = sub.add_parser("inbetween", help="fill a gap of --seconds between the end of A and the start of B")
    b.add_argument("a", type=Path, help=".npz or .bvh")
    b.add_argument("b", type=Path, help=".npz or .bvh")
    b.add_argument("--prompt", required=True, help="what happens in the gap")
    b.add_argument("--seconds", type=float, required=True, help="gap length")
    _shot_options(b, common)


def load_source(pipe, path: Path):
    """A shot source from a file: our .npz with a latent → the generation itself; else real joints."""
    from ..motion.motion_io import MotionFileError, load_motion
    from ..runtime.pipeline import Motion

    path = Path(path)
    joints = load_motion(path)  # a file that is no motion is refused here, by name
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if {"latent", "features", "joints"} <= set(data.files):
                import torch

                lat = torch.from_numpy(np.asarray(data["latent"], np.float32))
                if lat.dim() == 4 and lat.shape[-1] == pipe.denoiser.config.vae_dim:
                    try:
                        meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
                    except json.JSONDecodeError as exc:
                        raise MotionFileError(f"{path}: its 'meta' is not JSON ({exc})") from exc
                    return Motion(np.asarray(data["joints"]), np.asarray(data["features"]), meta, lat)
    return joints


def run_shot_command(pipe, args, progress, save_motion) -> list[Path]:
    """Run one shot command; returns the written paths."""
    from ..runtime.pipeline import InputError
    from ..runtime.shots import Segment, ShotDirector

    if args.command in ("compose", "continue", "inbetween"):
        ctx = {} if args.context is None else {"context_seconds": args.context}
        d = ShotDirector(pipe, resample=args.resample, guidance=args.guidance, steps=args.steps,
                         scheduler=args.sampler, trim_last=getattr(args, "trim_last", None), **ctx)
    else:  # edit --parts: the edit command's options
        d = ShotDirector(pipe, guidance=args.guidance, steps=args.steps, scheduler=args.sampler)
    if args.command == "compose":
        motion = d.compose([Segment.parse(s) for s in args.segment], seed=args.seed, callback=progress("composing"))
        for s in motion.meta["shot"]["segments"]:
            print(f"{s['start'] / pipe.fps:6.2f}–{s['end'] / pipe.fps:6.2f} s  seed {s['seed']}  {s['prompt']}")
    elif args.command == "continue":
        if (args.source is None) == (args.source_prompt is None):
            raise InputError("give either a motion file or --source-prompt to continue")
        if args.source is not None:
            src = load_source(pipe, args.source)
        else:
            src = pipe.generate(args.source_prompt, seconds=args.source_seconds, seed=args.seed,
                                guidance=d.guidance, steps=args.steps, scheduler=args.sampler,
                                callback=progress("source"))
        motion = d.continue_motion(src, args.prompt, args.seconds, seed=args.seed, callback=progress("continuing"))
    elif args.command == "inbetween":
        motion = d.inbetween(load_source(pipe, args.a), load_source(pipe, args.b), args.prompt, args.seconds,
                             seed=args.seed, callback=progress("in-between"))
    else:
        if not args.edit_prompt:
            raise InputError("--parts needs --to \"PROMPT\": what the regenerated parts should do")
        src = pipe.generate(args.source_prompt, frames=args.frames, seconds=args.seconds, seed=args.seed,
                            guidance=d.guidance, steps=args.steps, scheduler=args.sampler, callback=progress("source"))
        motion = d.regenerate_parts(src, args.edit_prompt, args.parts, seed=args.seed,
                                    callback=progress("regenerating " + args.parts), keep_path=args.keep_path)
        if args.source_out:
            save_motion(src, args.source_out, args.bvh, args.preview)
    return save_motion(motion, args.out, args.bvh, args.preview)
