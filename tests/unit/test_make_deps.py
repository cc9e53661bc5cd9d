"""`make deps`: Debian packages the tests need cost nothing when present; a user who is not root is told the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.unit.conftest import REPO

MAKE = shutil.which("make") or "make"


def make(*args: str, as_user: str | None = None) -> subprocess.CompletedProcess[str]:
    """`make -s -C REPO ARGS`, as this user or (through runuser) another one."""
    command = [MAKE, "-s", "-C", str(REPO), *args]
    if as_user is not None:
        command = [shutil.which("runuser") or "runuser", "-u", as_user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)  # noqa: S603


def make_deps(*packages: str, as_user: str | None = None) -> subprocess.CompletedProcess[str]:
    """`make deps` with DEBIAN_PACKAGES replaced."""
    return make("deps", f"DEBIAN_PACKAGES={' '.join(packages)}", as_user=as_user)


def test_the_list_names_chromium_and_rabbitmq_server() -> None:
    result = make("--eval", "print-packages: ; @echo $(DEBIAN_PACKAGES)", "print-packages")

    assert result.returncode == 0, result.stderr
    assert {"chromium", "rabbitmq-server"} <= set(result.stdout.split())


def test_present_packages_cost_nothing() -> None:
    # Given packages every Debian machine has (and, elsewhere, commands on the PATH)
    started = time.monotonic()

    result = make_deps("coreutils", "sh")

    # Then nothing is installed, nothing printed, and it is quick
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert time.monotonic() - started < 5


def test_a_user_who_is_not_root_is_told_the_command_to_run() -> None:
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.fail("running as root without runuser: cannot run make deps as another user")
        user: str | None = "nobody"
    else:
        user = None

    result = make_deps("coreutils", "mailwright-no-such-package", "mailwright-nor-this-one", as_user=user)

    assert result.returncode != 0
    message = [line for line in result.stderr.splitlines() if line.startswith("make deps:")]
    assert message == [
        "make deps: the tests need mailwright-no-such-package mailwright-nor-this-one; "
        "run: sudo apt-get install -y mailwright-no-such-package mailwright-nor-this-one"
    ]
