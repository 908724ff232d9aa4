"""scripts/setup-venv: two set-ups at once (`scripts/demo &` then `scripts/test`) both end with a working .venv.

The runs are real runs of the script in a temporary copy of the project; ``$PYTHON`` points at a stand-in
for python3 whose ``-m venv`` makes a .venv that has no pip until the test lets it finish, and whose pip
only records what it was asked to install (no network).
"""

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

from bot.config import PACKAGE_DIR

FAKE_PYTHON3 = f"""#!{sys.executable}
# Stands in for python3: `-m venv DIR` makes DIR/bin/python, then holds until ./release exists; pip comes last.
import pathlib, shutil, sys, time
venv = pathlib.Path(sys.argv[3])
(venv / "bin").mkdir(parents=True)
shutil.copy(pathlib.Path(__file__).with_name("fake-venv-python"), venv / "bin" / "python")
deadline = time.monotonic() + 30
while not pathlib.Path("release").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
(venv / "pip-installed").touch()
"""

FAKE_VENV_PYTHON = f"""#!{sys.executable}
# Stands in for .venv/bin/python: fails like a half-made venv until pip is there; pip records its arguments.
import pathlib, sys
venv = pathlib.Path(__file__).resolve().parent.parent
if not (venv / "pip-installed").exists():
    sys.exit(".venv/bin/python: No module named pip")
if sys.argv[1:3] == ["-m", "pip"]:
    with open(venv / "pip.log", "a") as log:
        log.write(" ".join(sys.argv[3:]) + "\\n")
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def waiting_for_lock(lock: Path) -> bool:
    """Whether some process is blocked on a flock of ``lock`` (Linux's /proc/locks marks waiters with ->)."""
    if not lock.exists():
        return False
    inode = f":{lock.stat().st_ino} "
    return any("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines())


def wait_until(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_two_setups_at_once_both_install_their_requirements(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(PACKAGE_DIR / "scripts" / "setup-venv", tmp_path / "scripts" / "setup-venv")
    (tmp_path / "requirements.txt").write_text("# runtime\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\n")
    executable(tmp_path / "fake-venv-python", FAKE_VENV_PYTHON)
    env = {**os.environ, "PYTHON": str(executable(tmp_path / "fake-python3", FAKE_PYTHON3))}

    def setup(requirements):
        command = [str(tmp_path / "scripts" / "setup-venv"), requirements]
        return subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)

    demo = setup("requirements.txt")
    wait_until(lambda: (tmp_path / ".venv" / "bin" / "python").exists() or demo.poll() is not None)
    test = setup("requirements-dev.txt")
    wait_until(lambda: test.poll() is not None or waiting_for_lock(tmp_path / ".venv.lock"))
    (tmp_path / "release").touch()
    _, demo_err = demo.communicate(timeout=30)
    _, test_err = test.communicate(timeout=30)

    assert (demo.returncode, test.returncode) == (0, 0), demo_err + test_err
    installed = (tmp_path / ".venv" / "pip.log").read_text().splitlines()
    assert [line.split()[-1] for line in installed if "-r" in line.split()] == [
        "requirements.txt",
        "requirements-dev.txt",
    ]
    assert (tmp_path / ".venv" / ".installed-requirements.txt").exists()
    assert (tmp_path / ".venv" / ".installed-requirements-dev.txt").exists()


def test_a_venv_left_without_pip_is_made_again(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(PACKAGE_DIR / "scripts" / "setup-venv", tmp_path / "scripts" / "setup-venv")
    (tmp_path / "requirements.txt").write_text("# runtime\n")
    executable(tmp_path / "fake-venv-python", FAKE_VENV_PYTHON)
    (tmp_path / "release").touch()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(tmp_path / "fake-venv-python", tmp_path / ".venv" / "bin" / "python")  # an interrupted venv: no pip
    env = {**os.environ, "PYTHON": str(executable(tmp_path / "fake-python3", FAKE_PYTHON3))}

    done = subprocess.run(
        [str(tmp_path / "scripts" / "setup-venv"), "requirements.txt"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "-r requirements.txt" in (tmp_path / ".venv" / "pip.log").read_text()
