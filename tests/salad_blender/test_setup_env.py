"""salad_blender.setup_env: the environment set-up job (driven with harmless commands, never pip)."""

import sys
import time

import pytest

from salad_blender import setup_env
from salad_blender.setup_env import SetupError, Step


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# ------------------------------------------------------------------------------- environment set-up


def test_plan_runs_pip_only_inside_the_new_environment(tmp_path):
    venv = tmp_path / "venv"
    steps = setup_env.plan_steps(venv, base_python="/opt/blender/python/bin/python3.11", package="salad-blender",
                                 torch_index="cpu")
    vpy = str(setup_env.venv_python(venv))
    assert steps[0].argv == ["/opt/blender/python/bin/python3.11", "-m", "venv", str(venv)]
    pip_steps = [s for s in steps if "pip" in s.argv]
    assert len(pip_steps) == 3 and all(s.argv[0] == vpy for s in pip_steps)
    torch = next(s for s in steps if "torch" in s.argv)
    assert torch.argv[-2:] == ["--index-url", "https://download.pytorch.org/whl/cpu"]
    assert steps[-1].argv[0] == vpy and "salad_model.serving.worker" in steps[-1].argv[-1]
    with pytest.raises(SetupError, match="refusing to run pip outside"):
        setup_env.check_plan([Step("bad", [sys.executable, "-m", "pip", "install", "torch"])], venv)
    with pytest.raises(SetupError, match="refusing to run pip outside"):
        setup_env.start_setup(venv, online_access=True, steps=[Step("bad", [sys.executable, "-m", "pip"])])


def test_default_package_is_the_source_checkout_when_there_is_one(tmp_path):
    from pathlib import Path

    repo = Path(setup_env.__file__).resolve().parents[1]
    assert setup_env.default_package() == str(repo)  # this checkout: pip builds the model from it
    (tmp_path / "addon").mkdir()
    assert setup_env.default_package(tmp_path / "addon") == "salad-blender"  # nothing bundled: the name
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    assert setup_env.default_package(tmp_path / "addon") == "salad-blender"
    # an installed extension carries the model package as a wheel (tools/build_extension.py)
    (tmp_path / "addon" / "model").mkdir()
    (tmp_path / "addon" / "model" / "other_pkg-9.0-py3-none-any.whl").touch()
    assert setup_env.default_package(tmp_path / "addon") == "salad-blender"
    wheel = tmp_path / "addon" / "model" / "salad_blender-0.1.0-py3-none-any.whl"
    wheel.touch()
    assert setup_env.default_package(tmp_path / "addon") == str(wheel.resolve())


def test_offline_is_refused_with_directions(tmp_path):
    with pytest.raises(SetupError, match=r"Allow Online Access.*Preferences > System > Network"):
        setup_env.start_setup(tmp_path / "venv", online_access=False)
    with pytest.raises(SetupError, match="--offline-mode"):
        setup_env.check_online(False, overridden=True)
    assert not (tmp_path / "venv").exists()


def test_setup_job_runs_steps_in_order_with_progress(tmp_path):
    marker = tmp_path / "order.txt"
    steps = [Step(f"step {i}", py(f"import time; print('working on {i}'); time.sleep(0.1); "
                                  f"open({str(marker)!r}, 'a').write('{i}')")) for i in range(3)]
    job = setup_env.start_setup(tmp_path / "venv", online_access=True, steps=steps)
    statuses, progress = set(), []
    while not job.poll():
        statuses.add(job.status)
        progress.append(job.progress)
        time.sleep(0.02)
    assert job.state == "done" and job.progress == 1.0 and "ready" in job.message
    assert marker.read_text() == "012"
    assert progress == sorted(progress)
    assert any("working on 1" in s for s in statuses) or any("working on" in ln for ln in job.log)
    assert str(setup_env.venv_python(tmp_path / "venv")) in job.message


def test_failing_step_stops_and_explains(tmp_path):
    marker = tmp_path / "later.txt"
    steps = [Step("Installing torch", py("import sys; print('ERROR: No matching distribution found for "
                                         "torch'); sys.exit(3)")),
             Step("never", py(f"open({str(marker)!r}, 'w')"))]
    job = setup_env.SetupJob(steps).wait(30)
    assert job.state == "failed"
    assert "Installing torch failed (exit code 3)" in job.message and "No matching distribution" in job.message
    assert not marker.exists()
    missing = setup_env.SetupJob([Step("Creating", ["/nonexistent/python", "-m", "venv", "x"])])
    assert missing.state == "failed" and "could not start" in missing.message


def test_cancel_kills_the_running_step(tmp_path):
    job = setup_env.SetupJob([Step("slow", py("import time; print('start', flush=True); time.sleep(60)"))])
    while not any("start" in ln for ln in job.log):  # the step prints, then sleeps 60 s
        assert not job.poll(), job.message
        time.sleep(0.02)
    proc = job._proc
    job.cancel()
    assert job.state == "cancelled"
    assert proc.poll() is not None and proc.returncode != 0  # killed mid-sleep, not waited for
    assert job.poll() is True


def test_child_env_drops_blenders_python_variables(monkeypatch):
    monkeypatch.setenv("PYTHONHOME", "/blender/python")
    monkeypatch.setenv("PYTHONPATH", "/blender/scripts")
    env = setup_env._child_env()
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env and env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"
