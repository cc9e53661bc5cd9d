"""A private RabbitMQ broker for the tests: Debian's rabbitmq-server on its own node name, ports and directories.

`make deps` installs the `rabbitmq-server` package. The tests never touch a
broker the machine already runs: theirs has its own node name, AMQP port,
distribution port and epmd port (all free ports picked at start), its own
RABBITMQ_MNESIA_BASE and RABBITMQ_LOG_BASE, and its own Erlang cookie (HOME)
under a temporary directory. It is started detached and stopped with
`rabbitmqctl stop`, and its epmd with `epmd -kill` on its own port. When the
package is missing the tests fail (not skip), as the browser tests do without
Chromium: `make test` installs it first.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

# Debian's scripts that run as the calling user (the /usr/sbin wrappers switch to the rabbitmq user and drop the
# environment that points the broker at our directories).
DEBIAN_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT_SECONDS = 120.0


class BrokerUnavailableError(RuntimeError):
    """rabbitmq-server is not installed, or did not start."""


def _scripts() -> Path:
    override = os.environ.get("MAILWRIGHT_RABBITMQ_SCRIPTS")
    if override:
        return Path(override)
    if (DEBIAN_SCRIPTS / "rabbitmq-server").is_file():
        return DEBIAN_SCRIPTS
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise BrokerUnavailableError(
            "rabbitmq-server is not installed: run `make deps` (Debian's rabbitmq-server package), "
            "or point MAILWRIGHT_RABBITMQ_SCRIPTS at the directory holding rabbitmq-server and rabbitmqctl"
        )
    return Path(found).resolve().parent


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RabbitMQBroker:
    """One private broker: `start()`, then `url`; `stop()` ends it and its epmd."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._scripts = _scripts()
        self.port = free_port()
        self.node = f"mailwright-test-{os.getpid()}-{self.port}@localhost"
        self._epmd_port = free_port()
        self._env = {
            **os.environ,
            "HOME": str(root),  # the Erlang cookie lives there
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(self._epmd_port),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "broker.pid"),
            # No system config, no plugins (the management plugin would want another port).
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        }
        self._started = False

    @property
    def url(self) -> str:
        """The AMQP URL of the default virtual host, as the default guest user (allowed on loopback)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - the package's own script, our own arguments
            [str(self._scripts / "rabbitmqctl"), "-n", self.node, *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def answers(self) -> bool:
        """Whether a broker runs on this node name."""
        return self._ctl("status", timeout=30).returncode == 0

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def start(self) -> None:
        """Start the broker detached and wait until it runs and its AMQP port accepts connections."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        if self.answers():  # left over from an interrupted run under the same name: start from nothing
            self._ctl("stop")
        subprocess.run(  # noqa: S603 - the package's own script
            [str(self._scripts / "rabbitmq-server"), "-detached"],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self._started = True
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        waited = self._ctl("await_startup", "--timeout", str(int(START_TIMEOUT_SECONDS)), timeout=START_TIMEOUT_SECONDS)
        while not self._accepts():
            if time.monotonic() > deadline:
                self.stop()
                log = "\n".join(p.read_text(errors="replace")[-2000:] for p in (self.root / "log").glob("*.log"))
                raise BrokerUnavailableError(
                    f"rabbitmq-server did not accept AMQP on port {self.port}: {waited.stdout}{waited.stderr}\n{log}"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the broker and the epmd it started (on its own port); safe to call twice."""
        if not self._started:
            return
        self._started = False
        self._ctl("stop")
        epmd = shutil.which("epmd", path=f"{os.environ.get('PATH', '')}:/usr/lib/erlang/bin")
        if epmd is not None:
            subprocess.run(  # noqa: S603 - Erlang's own tool, on the port only this broker used
                [epmd, "-kill"], env=self._env, capture_output=True, text=True, timeout=30, check=False
            )
