"""`make bench`: run every benchmark, write bench/results.json, the plots and docs/benchmarks.md.

python -m bench.run            # the full run (about 9 minutes on 2 cores, the failover run included)
python -m bench.run --quick    # shorter runs, same outputs, for trying changes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench import api, cold_start, cost, cpu, csv_publish, ddb, lanes, outage, pacing, report, throughput
from bench.common import REPO, config, machine, quiet_logs

RESULTS = REPO / "bench" / "results.json"


def run(*, quick: bool = False) -> dict[str, Any]:
    """Every measurement, in one process, one after the other."""

    def progress(line: str) -> None:
        print(line, flush=True)

    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    progress("throughput per worker (worker vs the seed consumer, interleaved)...")
    results["throughput"] = throughput.measure(
        rounds=1 if quick else 3, seconds_per_run=1.0 if quick else 1.5, progress=progress
    )
    progress("CPU per email...")
    results["cpu"] = cpu.measure(progress=progress)
    progress("DynamoDB and SES requests per email (real adapters over moto)...")
    results["ddb"] = ddb.measure(emails=400 if quick else 1200, progress=progress)
    progress("pacing against a simulated SES account...")
    with quiet_logs():
        results["pacing"] = pacing.measure(progress=progress, quick=quick)
    progress("lanes: bulk backlog and critical arrivals (discrete-event simulation)...")
    boto_cpu = max(0.0, (results["cpu"]["with_boto3"]["us_per_email"] - results["cpu"]["domain"]["us_per_email"]) / 1e6)
    with quiet_logs():
        results["lanes"] = lanes.measure(
            bulk=5_000 if quick else 50_000,
            critical_seconds=600.0 if quick else 1800.0,
            boto_cpu_per_email=boto_cpu,
            progress=progress,
        )
    progress("bulk sends from a CSV file, to the local stack in another process...")
    results["csv"] = csv_publish.measure(rows=5_000 if quick else 50_000, progress=progress)
    progress("cold start and asset size...")
    results["cold_start"] = cold_start.measure(progress=progress)
    progress("failover: an SES outage with a relay as the secondary (real time, moto, cdk.json's breaker)...")
    with quiet_logs():
        results["failover"] = outage.measure(quick=quick, progress=progress)
    progress("producers' API: POST /v1/messages on loopback (4 threads, keep-alive)...")
    with quiet_logs():
        results["api"] = api.measure(requests=400 if quick else 2000, progress=progress)
    results["cost"] = cost.estimate(
        lanes=results["lanes"],
        throughput=results["throughput"],
        cpu=results["cpu"],
        ddb=results["ddb"],
        memory_mb=config().lanes["bulk"].memory_mb,
    )
    progress(f"  cost: overhead beside SES {results['cost']['overhead_pct']}% of SES (paced)")
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run, then write the results, plots and report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (not for the committed report)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from bench/results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        if not RESULTS.is_file():
            print(f"no {RESULTS.relative_to(REPO)} yet: run `make bench` to write docs/benchmarks.md")
            return 0
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
    else:
        results = run(quick=args.quick)
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(REPO)} in {results['seconds']} s")
    written = report.write(results)
    for path in written:
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
