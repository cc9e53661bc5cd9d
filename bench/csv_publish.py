"""CSV bulk sends: how fast `mailwright send --csv` checks and publishes rows to the local stack.

    python -m bench.csv_publish --rows 50000

A CSV file of `rows` welcome emails is checked (schema and templates, as
`send --csv` does) and published through the SDK (`mailwright_tools.bulk`,
what `send --csv` runs) to the local stack as a user runs it: `mailwright
local up` in its own process (moto on loopback, with
`mailwright_tools.local.moto_speedups`), its lanes paused (`mailwright lanes
pause`) so the workers do not compete for the CPU. What is measured is the
producer's side, SendMessageBatch calls to the real moto server included.
Every row must be on the standard queue afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO

DEFAULT_ROWS = 50_000


def write_rows(path: Path, rows: int) -> None:
    """A CSV of `rows` welcome emails, all to distinct addresses."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,user_name,login_link\n")
        for i in range(rows):
            out.write(f"bulk{i}@example.com,User {i},https://example.com/login/{i}\n")


def _cli(state: Path, *args: str, wait: bool = True) -> subprocess.Popen[str]:
    """`mailwright --state-dir STATE ARGS` in a child process, as a user would run it."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-c", "from mailwright_tools.cli import main; main()", "--state-dir", str(state)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        [*command, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if wait and process.wait(timeout=120) != 0:
        raise RuntimeError(f"mailwright {' '.join(args)} failed: {process.communicate()[1]}")
    return process


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process used so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(rows: int = DEFAULT_ROWS, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Check and publish `rows` rows to a local stack in another process; the rates and the queue depth after."""
    from mailwright.constants import LANES
    from mailwright.sdk import Publisher, template_priorities
    from mailwright_tools.bulk import parse_mapping, publish_rows, read_csv
    from mailwright_tools.queues import queue_depth
    from mailwright_tools.request_checks import KnownTemplates
    from mailwright_tools.state import StateDir, live_local_stack
    from mailwright_tools.target import local_target

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mailwright-csv-bench-") as tmp:
        root = Path(tmp)
        path = root / "bulk.csv"
        write_rows(path, rows)
        state = StateDir(root / "state")
        server = _cli(state.root, "local", "up", "--json", wait=False)
        try:
            deadline = time.monotonic() + 120
            while (recorded := live_local_stack(state)) is None:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mailwright local up did not start: {server.communicate()[1]}")
                time.sleep(0.2)
            for lane in LANES:
                _cli(state.root, "lanes", "pause", lane)
            target = local_target(recorded)
            server_cpu_before = _cpu_seconds(server.pid)
            client_cpu_before = time.process_time()
            started = time.perf_counter()
            plan = read_csv(
                path,
                template="welcome_email",
                mapping=parse_mapping(["email=recipient_email"]),
                templates=KnownTemplates.read(REPO / "templates"),
            )
            checked = time.perf_counter()
            assert not plan.problems, plan.problems[:3]
            publisher = Publisher(
                queue_urls=target.queues,
                template_priorities=template_priorities(REPO / "templates"),
                session=target.session(),
            )
            report = publish_rows(plan.rows, publisher)
            published = time.perf_counter()
            client_cpu = time.process_time() - client_cpu_before
            server_cpu_after = _cpu_seconds(server.pid)
            depth = queue_depth(target.session().client("sqs"), target.queues["standard"])
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    check_s, publish_s, total_s = checked - started, published - checked, published - started
    server_cpu = (
        server_cpu_after - server_cpu_before if server_cpu_after is not None and server_cpu_before is not None else None
    )
    # On a machine where each process has a core of its own, the busier of the two sets the pace.
    busiest = max(client_cpu, server_cpu or 0.0)
    result = {
        "rows": rows,
        "published": report.total,
        "failed": len(report.failed),
        "queued": depth,
        "check_seconds": round(check_s, 2),
        "publish_seconds": round(publish_s, 2),
        "total_seconds": round(total_s, 2),
        "rows_per_second": round(rows / total_s),
        "publish_rows_per_second": round(rows / publish_s),
        # CPU seconds each side used for the whole run (check and publish): what the rate costs, load aside.
        "client_cpu_seconds": round(client_cpu, 2),
        "server_cpu_seconds": None if server_cpu is None else round(server_cpu, 2),
        "rows_per_second_one_core_each": round(rows / busiest) if busiest else None,
        "load_average_at_start": round(load, 2),
        "target": "mailwright local up in another process (moto on loopback), lanes paused",
    }
    progress(
        f"  csv: {rows} rows checked in {check_s:.1f} s and published in {publish_s:.1f} s: "
        f"{result['rows_per_second']} rows/s overall ({result['publish_rows_per_second']} rows/s publishing); "
        f"{depth} queued; CPU: client {client_cpu:.1f} s, local stack {server_cpu or 0:.1f} s "
        f"(one core each: {result['rows_per_second_one_core_each']} rows/s)"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the measurement alone and print it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
