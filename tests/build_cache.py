"""Directories that tests build once (venvs, `pip install --target` trees, wheels) and keep under .cache/tests/.

Each directory is named by a hash of everything that went into it (requirement pins, the
interpreter, source files), so a change to any of them builds a fresh one and reruns are fast.
A lock file serialises builders: two test sessions never see a half-built directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO / ".cache" / "tests"
# Bump when what goes into a cached directory changes without its inputs changing.
CACHE_FORMAT = "1"


def digest(*parts: str | bytes | Path) -> str:
    """A short hash of strings, bytes and files' contents (a Path counts by its bytes)."""
    hasher = hashlib.sha256(CACHE_FORMAT.encode())
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else part
        hasher.update(data if isinstance(data, bytes) else data.encode())
        hasher.update(b"\0")
    return hasher.hexdigest()[:20]


def interpreter_tag() -> str:
    """This interpreter and platform, e.g. cpython-311-x86_64-Linux: native code installed for it runs nowhere else."""
    return f"{sys.implementation.cache_tag}-{platform.machine()}-{platform.system()}"


def tree_files(root: Path, relative: Iterable[str]) -> list[Path]:
    """Every file under the given paths of `root`, sorted, bytecode caches left out."""
    found: list[Path] = []
    for name in relative:
        path = root / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        found += [p for p in candidates if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return found


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold the lock of cache entry `name` (exclusive, across processes)."""
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with (CACHE_ROOT / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached_dir(name: str, build: Callable[[Path], None]) -> Path:
    """`.cache/tests/<name>`, built by `build(path)` unless a complete one is there already.

    Built in place (a venv cannot be moved after it is made), under the entry's lock; a build that
    failed or was interrupted leaves no completion mark (beside the directory, not in it) and is started over.
    """
    path = CACHE_ROOT / name
    complete = CACHE_ROOT / f"{name}.complete"
    with locked(name):
        if not complete.is_file():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            build(path)
            complete.touch()
    return path


def run(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; AssertionError with its output when it fails (so the test report shows why)."""
    result = subprocess.run(  # noqa: S603 - our own commands
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def pip(*args: str, python: str = sys.executable) -> str:
    """`python -m pip ARGS`, quiet, no version check."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return run([python, "-m", "pip", *args, "--quiet"], env=env)


def pins(*requirements: Path) -> dict[str, str]:
    """The exact pins (`name==version`, extras dropped) in requirements files, following `-r` includes."""
    found: dict[str, str] = {}
    for file in requirements:
        for raw in file.read_text(encoding="utf-8").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("-r"):
                found.update(pins(file.parent / line[2:].strip()))
            elif "==" in line:
                name, version = line.split("==", 1)
                found[name.split("[", 1)[0].strip().lower()] = version.strip()
    return found
