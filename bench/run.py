"""`make bench`: run every benchmark, write bench/results.json, the plots and docs/benchmarks.md.

python -m bench.run            # the full run (about 9 minutes on 2 cores, the failover run included)
python -m bench.run --quick    # shorter runs, same outputs, for trying changes
python -m bench.run --only pacing lanes cold_start   # re-measure some sections into bench/results.json
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


SECTIONS = ("throughput", "cpu", "ddb", "pacing", "lanes", "csv", "cold_start", "failover", "api")


def run(
    *, quick: bool = False, only: tuple[str, ...] = SECTIONS, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every measurement (or those in `only`, the others kept from `previous`), one after the other."""

    def progress(line: str) -> None:
        print(line, flush=True)

    started = time.perf_counter()
    results: dict[str, Any] = {**(previous or {}), "machine": machine(), "quick": quick}
    # Seconds each section took (`make bench` has 10 minutes in all).
    sections: dict[str, float] = {}
    timing: list[Any] = [None, started]

    def lap(name: str | None) -> None:
        now = time.perf_counter()
        if timing[0] is not None:
            sections[timing[0]] = round(now - timing[1], 1)
        timing[:] = [name, now]

    lap("throughput" if "throughput" in only else None)
    if "throughput" in only:
        progress("throughput per worker (worker vs the seed consumer, interleaved)...")
        results["throughput"] = throughput.measure(rounds=1, seconds_per_run=1.0 if quick else 1.5, progress=progress)
    lap("cpu" if "cpu" in only else None)
    if "cpu" in only:
        progress("CPU per email...")
        results["cpu"] = cpu.measure(progress=progress)
    lap("ddb" if "ddb" in only else None)
    if "ddb" in only:
        progress("DynamoDB and SES requests per email (real adapters over moto)...")
        results["ddb"] = ddb.measure(emails=400 if quick else 500, progress=progress)
    lap("pacing" if "pacing" in only else None)
    if "pacing" in only:
        progress("pacing against a simulated SES account...")
        with quiet_logs():
            results["pacing"] = pacing.measure(progress=progress, quick=quick)
    lap("lanes" if "lanes" in only else None)
    if "lanes" in only:
        progress("lanes: bulk backlog and critical arrivals (discrete-event simulation)...")
        boto_cpu = max(
            0.0, (results["cpu"]["with_boto3"]["us_per_email"] - results["cpu"]["domain"]["us_per_email"]) / 1e6
        )
        with quiet_logs():
            results["lanes"] = lanes.measure(
                bulk=5_000 if quick else 50_000,
                critical_seconds=600.0 if quick else 1800.0,
                boto_cpu_per_email=boto_cpu,
                progress=progress,
            )
    if "pacing" in results and "lanes" in results:
        # Billed time per sent email as deployed: the lanes scenario models the event source's batching.
        results["pacing"]["billed_seconds_per_email"] = results["lanes"].get("billed_seconds_per_sent_email")
        results["pacing"]["billed_seconds_per_email_by_lane"] = results["lanes"].get("billed_seconds_per_email")
    lap("csv" if "csv" in only else None)
    if "csv" in only:
        progress("bulk sends from a CSV file, to the local stack in another process...")
        results["csv"] = csv_publish.measure(rows=5_000 if quick else 20_000, progress=progress)
    lap("cold_start" if "cold_start" in only else None)
    if "cold_start" in only:
        progress("cold start and asset size...")
        results["cold_start"] = cold_start.measure(progress=progress)
    lap("failover" if "failover" in only else None)
    if "failover" in only:
        progress("failover: an SES outage with a relay as the secondary (real time, moto, cdk.json's breaker)...")
        with quiet_logs():
            results["failover"] = outage.measure(quick=quick, progress=progress)
    lap("api" if "api" in only else None)
    if "api" in only:
        progress("producers' API: POST /v1/messages on loopback (4 threads, keep-alive)...")
        with quiet_logs():
            results["api"] = api.measure(requests=400 if quick else 2000, progress=progress)
    lap(None)
    results["section_seconds"] = {**results.get("section_seconds", {}), **sections}
    results["cost"] = cost.estimate(
        lanes=results["lanes"],
        throughput=results["throughput"],
        cpu=results["cpu"],
        ddb=results["ddb"],
        memory_mb=config().lanes["bulk"].memory_mb,
        retention_days=config().message_log_ttl_days,
        message_log_backups=config().message_log_backups,
    )
    co = results["cost"]
    progress(
        f"  cost: core {co['paced']['overhead_pct']}% of SES paced, {co['unpaced']['overhead_pct']}% unpaced; "
        f"default configuration {co['default_config_pct']}%"
    )
    elapsed = round(time.perf_counter() - started, 1)
    # `seconds` is the last full run's (the report says how long `make bench` takes); a partial one has its own.
    results["seconds" if set(only) == set(SECTIONS) else "partial_seconds"] = elapsed
    return results


def main(argv: list[str] | None = None) -> int:
    """Run, then write the results, plots and report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (not for the committed report)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from bench/results.json")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="measure only these, keep the rest of results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        if not RESULTS.is_file():
            print(f"no {RESULTS.relative_to(REPO)} yet: run `make bench` to write docs/benchmarks.md")
            return 0
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
    elif args.only:
        previous = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
        results = run(quick=args.quick, only=tuple(args.only), previous=previous)
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(REPO)} in {results.get('partial_seconds', results.get('seconds'))} s")
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
