"""The CLI's progress (issue #16): a tqdm bar when stderr is a terminal (a real pseudo-terminal here), one line
per quarter when it is a log, and the "loading model" line first in both."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios


def generate(model, cwd, stderr):  # noqa: ANN001
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TERM": "xterm"}
    return subprocess.Popen([sys.executable, "-m", "salad_model", "generate", "a person walks", "--model",
                             str(model), "--seconds", "2", "--steps", "8", "--threads", "1", "--out", "w.npz"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr)


def test_terminal_gets_a_tqdm_bar(tiny_model_dir, tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    proc = generate(tiny_model_dir, tmp_path, slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=300) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert text.startswith(f"loading model {tiny_model_dir} …")
    assert "generating: 100%" in text and "8/8" in text and "step/s" in text  # tqdm's bar, rate and count
    assert "step 8/8 (" not in text  # not the log format


def test_log_gets_a_line_per_quarter(tiny_model_dir, tmp_path):
    proc = generate(tiny_model_dir, tmp_path, subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = err.decode().splitlines()
    assert lines[0] == f"loading model {tiny_model_dir} …"
    steps = [line.split(" (")[0] for line in lines if line.startswith("generating:")]
    assert steps == [f"generating: step {i}/8" for i in (2, 4, 6, 8)]
    assert "\r" not in err.decode()
