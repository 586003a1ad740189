"""Mutation testing of the core modules with mutmut 3, one module at a time (developer command, not CI).

    python tools/mutation.py                      # every module, 20 min budget each; resumes the last run
    python tools/mutation.py editing --retest     # after adding tests: re-check only the survivors
    python tools/mutation.py attention retarget   # some modules
    python tools/mutation.py --list               # the modules and the tests each runs
    python tools/mutation.py --report             # scores of the last runs, no new run
    python tools/mutation.py editing --show       # the diff of each surviving mutant
    python tools/mutation.py editing --verify     # survivors against the whole test selection

Why per module: mutmut runs, for each mutant, the tests that cover the mutated function; the whole suite
takes minutes and spawns worker processes and Blender, so each module gets only its fast unit tests. Each
module runs in its own copy of the checkout (``build/mutation/<module>``, where mutmut writes ``mutants/``)
with a ``[tool.mutmut]`` section generated from the checked-in one in pyproject.toml plus the module's
``only_mutate`` and tests. Results: ``build/mutation/<module>/mutants/**.meta`` (mutmut's own format);
inspect a survivor with ``cd build/mutation/<module> && mutmut show <name>``.

Score = killed / (killed + survived + suspicious); timeouts count as killed (a mutant that loops forever is
detected), mutants no selected test reaches are listed separately. docs/testing.md has the last scores and
why each survivor is equivalent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut itself needs the toml package there
    import toml as tomllib

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "mutation"
COPY = ("salad_model", "salad_blender", "benchmarks", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Module:
    path: str  # the file to mutate
    tests: tuple[str, ...]  # pytest node ids / files: fast unit tests of that file
    functions: tuple[str, ...] = ()  # score only these functions (empty: all)
    # imported once in mutmut's fork server (a root conftest.py of the copy), not once per mutant: the
    # schedulers' lazy ``import diffusers`` alone takes 3-8 s on a loaded machine
    preload: tuple[str, ...] = ()


MODULES: dict[str, Module] = {
    "attention": Module("salad_model/runtime/attention.py", (
        "tests/salad_model/runtime/test_attention.py",
    )),
    "editing": Module("salad_model/runtime/editing.py", (
        "tests/salad_model/runtime/test_editing.py",
        "tests/salad_model/runtime/test_edit_modes.py",
        "tests/salad_model/runtime/test_sample_edit.py",
        "tests/salad_model/runtime/test_golden.py::test_refine_alignment_matches_reference_indices",
        "tests/salad_model/runtime/test_golden.py::test_refine_reindexes_source_columns_after_an_insertion",
    ), preload=("diffusers.schedulers.scheduling_ddim", "diffusers.schedulers.scheduling_dpmsolver_multistep")),
    "sampling": Module("salad_model/runtime/sampling.py", (
        "tests/salad_model/runtime/test_sampling.py",
        "tests/salad_model/runtime/test_sampler_steps.py",
        "tests/salad_model/runtime/test_golden.py::test_scheduler",
    ), preload=("diffusers.schedulers.scheduling_ddim", "diffusers.schedulers.scheduling_dpmsolver_multistep")),
    "features": Module("salad_model/motion/features.py", (
        "tests/salad_model/motion/test_features.py",
        "tests/salad_model/motion/test_features_unbatched.py",
        "tests/salad_model/runtime/test_golden.py::test_recover_from_ric",
        "tests/salad_model/runtime/test_golden.py::test_vae_encoder_decoder",
    )),
    "retarget": Module("salad_blender/retarget.py", ("tests/salad_blender/test_retarget.py",
                                                     "tests/salad_blender/test_retarget_math.py")),
    # the worker's field checks (check_fields) now delegate to runtime/requests: score them there
    "requests": Module("salad_model/runtime/requests.py", ("tests/salad_model/runtime/test_requests.py",
                                                           "tests/salad_model/runtime/test_request_messages.py")),
    # session 8: the code that landed in sessions 6-7
    # the tiny random model's tests only: the demo model's (behaviour on a real walk) take minutes per mutant
    "motion_prior": Module("salad_model/runtime/motion_prior.py", tuple(
        f"tests/salad_model/runtime/test_motion_prior.py::{t}" for t in (
            "test_long_clips_are_cleaned_in_windows", "test_long_clips_cross_fade_their_windows_and_cover_every_frame",
            "test_a_window_is_encoded_normalised_and_denoised_over_the_last_strength_share_of_the_steps",
            "test_bad_strength_is_a_clear_error", "test_too_short_motion_is_a_clear_error"))),
    "shot_text_blend": Module("salad_model/runtime/shot_text_blend.py", (
        "tests/salad_model/runtime/test_shot_text_blend.py",)),
    "shot_handover": Module("salad_model/runtime/shot_handover.py", (
        "tests/salad_model/runtime/test_shot_handover.py",)),
    # the two functions' own tests: every timeline test also calls them (minutes per mutant on a loaded machine)
    "seams": Module("salad_model/runtime/seams.py", (
        "tests/salad_model/runtime/test_shots.py::test_decoder_reach_is_exact_for_the_vae",
        "tests/salad_model/runtime/test_shots.py::test_smooth_seams_touches_only_the_join",
        "tests/salad_model/runtime/test_shots.py::test_smooth_seams_is_a_gaussian_blended_in_by_distance_from_the_seam")),
    # the step arithmetic's own tests and test_shots.py's inpainting ones (its timeline tests also call it:
    # minutes per mutant)
    "inpainting": Module("salad_model/runtime/inpainting.py", (
        "tests/salad_model/runtime/test_inpainting.py",
        "tests/salad_model/runtime/test_shots.py::test_inpainting_holds_frames_and_parts_exactly",
        "tests/salad_model/runtime/test_shots.py::test_inpainting_rejects_bad_masks_and_resampling_with_multistep",
        "tests/salad_model/runtime/test_shots.py::test_parse_parts_presets_names_indices_and_errors")),
    "foot_lock": Module("salad_model/motion/foot_lock.py", ("tests/salad_model/motion/test_foot_lock.py",)),
    "checkpoint_state": Module("salad_model/training/checkpoint_state.py", (
        "tests/salad_model/training/test_checkpoint_state.py",)),
    "balance": Module("salad_model/training/balance.py", ("tests/salad_model/training/test_balance.py",)),
    # the video clean-up: the cleaned body put back on the video's path (the rest of extract.py needs videos)
    "video_cleanup": Module("salad_model/video/extract.py", ("tests/salad_model/video/test_video_corrections.py",),
                            functions=("with_path_of", "clean_video_motion")),
    "rigify_ik": Module("salad_blender/rigify_ik.py", ("tests/salad_blender/test_rigify.py",
                                                       "tests/salad_blender/test_rigify_ik_math.py")),
    "live_preview": Module("salad_blender/live_preview.py", ("tests/salad_blender/test_live_preview.py",)),
    # the worker-free tests only: test_live_preview_blender.py / test_audit3.py generate with the tiny model's
    # worker (minutes per mutant)
    "preview_actions": Module("salad_blender/preview_actions.py", (
        "tests/salad_blender/test_preview_actions.py",
        "tests/salad_blender/test_audit5.py::test_a_preview_mark_that_says_no_protects_the_action",
        "tests/salad_blender/test_audit5.py::test_a_preview_mark_that_says_yes_is_a_preview")),
    # the scripted worker's tests only: test_shot_jobs.py runs the real worker (minutes per mutant)
    "shot_jobs": Module("salad_blender/shot_jobs.py", ("tests/salad_blender/test_shot_jobs_scripted.py",)),
    "shot_inputs": Module("salad_blender/shot_inputs.py", ("tests/salad_blender/test_shot_inputs.py",)),
    # session 11: the reliability code of session 10. The scripted worker's tests (test_worker_reliability.py,
    # a subprocess answering in milliseconds) and the fake-clock / in-memory-pipe unit tests
    "worker_watch": Module("salad_blender/worker_watch.py", ("tests/salad_blender/test_worker_watch.py",
                                                             "tests/salad_blender/test_worker_reliability.py")),
    "worker_streams": Module("salad_blender/worker_streams.py", (
        "tests/salad_blender/test_worker_streams.py",
        "tests/salad_blender/test_worker_reliability.py",
        "tests/salad_blender/test_audit5.py::test_a_corrupt_event_fails_its_job_and_the_client_keeps_reading")),
    # the re-queue after worker_stopped / worker_exited: only these functions of motion_job.py are run
    "requeue": Module("salad_blender/motion_job.py", ("tests/salad_blender/test_motion_job.py",
                                                      "tests/salad_blender/test_worker_reliability.py"),
                      functions=("_requeue", "requeuer", "restarter", "_worker_gone", "_worker_failed",
                                 "_begin_again")),
    # the client's side of it: the stuck check, dropping late answers of jobs failed here, closing with a reason
    "client_watch": Module("salad_blender/client.py", ("tests/salad_blender/test_client_watch.py",
                                                       "tests/salad_blender/test_worker_reliability.py"),
                           functions=("_check_alive", "_dispatch", "_forget", "_closed_event", "close",
                                      "unanswered_cancel")),
    "kept_channels": Module("salad_blender/kept_channels.py", ("tests/salad_blender/test_keep_channels.py",)),
    # session 12: part regeneration's kept joints (test_shots.py's part tests only: its timeline tests take minutes
    # per mutant) and the CFG halves on two threads
    "kept_parts": Module("salad_model/runtime/kept_parts.py", tuple(
        f"tests/salad_model/runtime/test_shots.py::{t}" for t in (
            "test_kept_parts_are_the_sources_joints_and_new_chains_hang_from_them",
            "test_a_kept_root_keeps_the_sources_path_in_world_space",
            "test_regenerate_parts_holds_the_other_parts"))),
    "halves": Module("salad_model/runtime/halves.py", ("tests/salad_model/runtime/test_halves.py",)),
}

KILLED = {1, 3}  # mutmut exit codes: a test failed, pytest error
TIMEOUT = {24, -24, 36, 152, 255}  # counted as killed, but listed: on a loaded machine some are only slow
SURVIVED = {0}
NO_TESTS = {5, 33}


def available() -> dict[str, Module]:
    return {k: m for k, m in MODULES.items()
            if (REPO / m.path).exists() and all((REPO / t.split("::")[0]).exists() for t in m.tests)}


def _copy_if_changed(src: str, dst: str) -> str:
    """copy2 only when the content differs: an unchanged file keeps its mtime, so mutmut keeps its mutants."""
    d = Path(dst)
    if not d.exists() or d.read_bytes() != Path(src).read_bytes():
        shutil.copy2(src, dst)
    return dst


def prepare(name: str, mod: Module, fresh: bool = False) -> Path:
    """The module's copy of the checkout, its pyproject carrying that module's mutmut config.

    An existing copy is refreshed, not replaced: mutmut keeps its verdicts in ``mutants/``, so an interrupted
    run resumes where it stopped and new tests are picked up. ``fresh`` starts over.
    """
    work = BUILD / name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "mutants")
    for item in COPY:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, work / item, ignore=ignore, dirs_exist_ok=True, copy_function=_copy_if_changed)
        else:
            _copy_if_changed(str(src), str(work / item))
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    top = mod.path.split("/", 1)[0]
    cfg = {**cfg, "source_paths": [top], "only_mutate": [mod.path],
           "also_copy": [p for p in cfg.get("also_copy", []) if p != top] + [p for p in ("salad_model",
                                                                                         "salad_blender") if p != top],
           "pytest_add_cli_args_test_selection": list(mod.tests)}
    if mod.preload:
        (work / "conftest.py").write_text('"""Generated by tools/mutation.py: imported before mutmut forks."""\n'
                                          + "".join(f"import {m}  # noqa: F401\n" for m in mod.preload))
        cfg["also_copy"] = [*cfg["also_copy"], "conftest.py"]
    text = (work / "pyproject.toml").read_text()
    start = text.index("[tool.mutmut]")
    end = text.find("\n[", start + 1)
    section = "[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items())
    (work / "pyproject.toml").write_text(text[:start] + section + (text[end + 1:] if end != -1 else ""))
    return work


def run(name: str, mod: Module, budget: float, children: int, fresh: bool = False, retest: bool = False) -> None:
    """Run (or resume) mutmut on one module; ``retest``: only re-check its survivors and uncovered mutants."""
    if retest:
        s = score(name, mod)
        again = [] if s is None else s["survived"] + s["other"] + s["no tests"]
        if not again:
            print(f"== {name}: nothing to re-test", flush=True)
            return
    work = prepare(name, mod, fresh=fresh)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    env.update(OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    names = again if retest else _function_patterns(name, mod) if mod.functions else []
    if mod.functions and not retest and not names:
        print(f"== {name}: every mutant of {', '.join(mod.functions)} has a verdict", flush=True)
        return
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names]
    print(f"== {name}: {mod.path} in {work} (budget {budget:.0f} s)", flush=True)
    # own process group: at the budget's end mutmut's fork server and test children stop with it
    proc = subprocess.Popen(["nice", "-n", "10", *cmd], cwd=work, env=env, start_new_session=True)
    try:
        proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        print(f"   {name}: budget exhausted; the score covers the mutants checked so far "
              f"(run it again to resume)", flush=True)


def _function_of(key: str) -> str:
    """The function a mutant key belongs to: ``pkg.mod.x_name__mutmut_3`` → ``name``, a method's
    ``pkg.mod.xǁClassǁname__mutmut_3`` → ``name``."""
    mangled = key.rpartition(".")[2].partition("__mutmut_")[0]
    return mangled.rpartition("ǁ")[2] if "ǁ" in mangled else mangled.removeprefix("x_")


def _function_patterns(name: str, mod: Module) -> list[str]:
    """mutmut ``run`` arguments that restrict a run to ``mod.functions``: on the first run patterns (they also
    select the functions' tests), then the exact names of the mutants still without a verdict (mutmut re-runs
    every mutant it is named, so naming all of them again would not resume)."""
    meta = BUILD / name / "mutants" / (mod.path + ".meta")
    if meta.exists():
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        return [k for k, v in codes.items() if v is None and _function_of(k) in mod.functions]
    return [p for f in mod.functions for p in (f"*.x_{f}", f"*.x_{f}__mutmut_*", f"*ǁ{f}", f"*ǁ{f}__mutmut_*")]


def score(name: str, mod: Module) -> dict | None:
    """Counts and survivors of a module's last run (None when it never ran)."""
    meta = BUILD / name / "mutants" / (mod.path + ".meta")
    if not meta.exists():
        return None
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    if mod.functions:
        codes = {k: v for k, v in codes.items() if _function_of(k) in mod.functions}
    out = {"killed": [], "timeout": [], "survived": [], "no tests": [], "not checked": [], "other": []}
    verified = BUILD / name / "verified.json"
    whole = set(json.loads(verified.read_text())) if verified.exists() else set()
    codes = {k: (1 if k in whole and v in SURVIVED else v) for k, v in codes.items()}
    for key, code in sorted(codes.items()):
        bucket = ("killed" if code in KILLED else "timeout" if code in TIMEOUT else "survived"
                  if code in SURVIVED else "no tests" if code in NO_TESTS else "not checked" if code is None
                  else "other")
        out[bucket].append(key)
    caught = len(out["killed"]) + len(out["timeout"])
    judged = caught + len(out["survived"]) + len(out["other"])
    out["score"] = caught / judged if judged else float("nan")
    return out


def report(names: list[str]) -> None:
    for name in names:
        s = score(name, MODULES[name])
        if s is None:
            print(f"{name:14s} not run")
            continue
        print(f"{name:14s} score {s['score']:.1%}  killed {len(s['killed'])}  timeout {len(s['timeout'])}  "
              f"survived {len(s['survived'])}  "
              f"suspicious {len(s['other'])}  no tests {len(s['no tests'])}  not checked {len(s['not checked'])}")
        for key in s["survived"] + s["other"]:
            print(f"    survived: {key}")


def verify(name: str, mod: Module) -> None:
    """Run the module's WHOLE test selection against each survivor; record the ones it kills.

    mutmut runs per mutant only the tests it saw calling the mutated function, and it credits a call made
    while a module- or session-scoped fixture is built to the first test that asked for the fixture
    only; a survivor can therefore be killed by a test mutmut did not pick. Those go to ``verified.json``
    beside ``mutants/`` and count as killed.
    """
    s = score(name, mod)
    if s is None:
        return
    work = BUILD / name
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    env.update(OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    path = work / "verified.json"
    killed = set(json.loads(path.read_text())) if path.exists() else set()
    for key in s["survived"] + s["other"]:
        if key in killed:
            continue
        out = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                              "-p", "no:randomly", *mod.tests], cwd=work / "mutants", capture_output=True,
                             env={**env, "MUTANT_UNDER_TEST": key}, check=False)
        verdict = {0: "survived", 1: "killed", 3: "killed"}.get(out.returncode, f"rc {out.returncode}")
        print(f"   {key}: {verdict} by the whole selection", flush=True)
        if out.returncode in (1, 3):
            killed.add(key)
            path.write_text(json.dumps(sorted(killed), indent=0))


def show(name: str, mod: Module) -> None:
    """The diff of every surviving mutant of the module's last run (``mutmut show`` for each)."""
    s = score(name, mod)
    for key in [] if s is None else s["survived"] + s["other"]:
        out = subprocess.run([sys.executable, "-m", "mutmut", "show", key], cwd=BUILD / name, capture_output=True,
                             text=True, check=False)
        print(out.stdout.strip() or out.stderr.strip(), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", help=f"default: all available of {', '.join(MODULES)}")
    ap.add_argument("--budget", type=float, default=1200.0, help="seconds per module (default 1200)")
    ap.add_argument("--children", type=int, default=1, help="parallel mutants (default 1: shared CPU)")
    ap.add_argument("--list", action="store_true", help="print modules and their tests")
    ap.add_argument("--report", action="store_true", help="only print the scores of the last runs")
    ap.add_argument("--show", action="store_true", help="print the diffs of the last runs' survivors")
    ap.add_argument("--verify", action="store_true",
                    help="run each survivor against the module's whole test selection (see verify())")
    ap.add_argument("--fresh", action="store_true", help="discard the last run's verdicts (default: resume)")
    ap.add_argument("--retest", action="store_true",
                    help="re-check only the survivors and uncovered mutants of the last run (after adding tests)")
    args = ap.parse_args(argv)
    avail = available()
    names = args.modules or list(avail)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {unknown}; choose from {', '.join(MODULES)}")
    missing = [n for n in names if n not in avail]
    if missing:
        ap.error(f"{missing}: the module or its tests are not in this checkout")
    if args.list:
        for n in names:
            print(f"{n}: {MODULES[n].path}\n    " + "\n    ".join(MODULES[n].tests))
        return 0
    if args.verify:
        for n in names:
            verify(n, MODULES[n])
        report(names)
        return 0
    if args.show:
        for n in names:
            show(n, MODULES[n])
        return 0
    if not args.report:
        for n in names:
            run(n, MODULES[n], args.budget, args.children, fresh=args.fresh, retest=args.retest)
    report(names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
