"""Where local tooling keeps its files (`.mailwright/`), and the record of a running local stack."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "MAILWRIGHT_STATE_DIR"
DEFAULT_STATE_DIR = ".mailwright"


@dataclass(frozen=True)
class StateDir:
    """The state directory and the files and folders in it."""

    root: Path

    @classmethod
    def resolve(cls, explicit: Path | str | None = None) -> StateDir:
        """`explicit`, else $MAILWRIGHT_STATE_DIR, else `.mailwright` in the working directory."""
        chosen = explicit or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
        return cls(Path(chosen).expanduser().resolve())

    @property
    def local_json(self) -> Path:
        """The record of the running local stack."""
        return self.root / "local.json"

    @property
    def outbox(self) -> Path:
        """Every email the local stack sent, as .eml and .html, with index.html."""
        return self.root / "outbox"

    @property
    def logs(self) -> Path:
        """The workers' JSON logs and EMF metrics, and the local stack's own log."""
        return self.root / "logs"

    @property
    def preview(self) -> Path:
        """Where `templates preview` writes."""
        return self.root / "preview"

    def read_local(self) -> dict[str, Any] | None:
        """The recorded local stack, or None when there is no (readable) record."""
        try:
            data = json.loads(self.local_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_local(self, state: dict[str, Any]) -> None:
        """Record a running local stack (atomically: readers never see half a file)."""
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.local_json.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(self.local_json)

    def clear_local(self, *, pid: int) -> None:
        """Remove the record, if it is still the one process `pid` wrote."""
        state = self.read_local()
        if state is not None and state.get("pid") == pid:
            self.local_json.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def endpoint_answers(endpoint_url: str, *, timeout: float = 10.0) -> bool:
    """Whether a moto server answers at `endpoint_url`.

    A stopped stack refuses the connection at once; the timeout only bounds
    the wait for one that is running but busy (a demo draining under load can
    take seconds to answer), which must not be taken for no stack at all.
    """
    if not endpoint_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        return False  # the local stack only ever binds loopback
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=timeout) as response:  # noqa: S310
            return bool(response.status < 500)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def live_local_stack(state_dir: StateDir) -> dict[str, Any] | None:
    """The recorded local stack if it is running (its process alive and its endpoint answering), else None."""
    state = state_dir.read_local()
    if not state or not isinstance(state.get("pid"), int) or not isinstance(state.get("endpoint_url"), str):
        return None
    if not pid_alive(state["pid"]) or not endpoint_answers(state["endpoint_url"]):
        return None
    return state
