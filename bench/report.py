"""Turn bench/results.json into plots (docs/*.png) and docs/benchmarks.md."""

# Most of this module is a Markdown template whose lines follow the prose, not the code width.
# ruff: noqa: E501

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import REPO

DOCS = REPO / "docs"
CHAOS = REPO / "bench" / "chaos.json"
OUTAGE = REPO / "bench" / "chaos_outage.json"


def _plot_throughput(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    points = results["throughput"]["points"]
    latencies = [p["ses_latency_ms"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    series = (
        ("baseline", "seed consumer (baseline)"),
        ("standard", "worker, standard lane (batch 10)"),
        ("bulk", "worker, bulk lane"),
        ("standard_mixed", "worker, standard lane, realistic mix"),
    )
    for key, label in series:
        left.plot(latencies, [p[key]["emails_per_second"] for p in points], marker="o", label=label)
    left.set_xlabel("simulated SES latency (ms)")
    left.set_ylabel("emails per second per worker")
    left.set_yscale("log")
    left.legend(fontsize=8)
    left.grid(True, alpha=0.3)
    for key, label in series[1:]:
        right.plot(latencies, [p[key]["ratio"] for p in points], marker="o", label=label)
    right.axhline(8, color="red", linestyle="--", linewidth=1, label="target 8x")
    right.axhline(15, color="grey", linestyle=":", linewidth=1, label="15x")
    right.set_xlabel("simulated SES latency (ms)")
    right.set_ylabel("worker / baseline")
    right.legend(fontsize=8)
    right.grid(True, alpha=0.3)
    fig.suptitle("Throughput per worker (DynamoDB and SQS calls 5 ms each, pacing not limiting)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_lanes(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    lanes = results["lanes"]
    series = lanes["series"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5))
    bulk = series["bulk_per_minute"]
    critical = series["critical_per_minute"]
    top.plot([m / 60 for m in range(len(bulk))], [b / 60 for b in bulk], label="bulk sent per second")
    top.plot([m / 60 for m in range(len(critical))], [c / 60 for c in critical], label="critical sent per second")
    top.axhline(lanes["ses_max_send_rate"], color="red", linestyle="--", linewidth=1, label="SES account rate")
    top.set_xlabel("hours")
    top.set_ylabel("emails per second (1-minute bins)")
    top.legend(fontsize=8)
    top.grid(True, alpha=0.3)
    points = series["critical_latency"]
    bottom.scatter([t / 60 for t, _ in points], [lat for _, lat in points], s=2, alpha=0.4)
    bottom.axhline(1.0, color="red", linestyle="--", linewidth=1, label="target p99 1 s")
    bottom.axhline(lanes["critical_p99_s"], color="black", linestyle=":", linewidth=1, label="measured p99")
    bottom.set_xlabel("minutes")
    bottom.set_ylabel("critical publish-to-send (s)")
    bottom.legend(fontsize=8)
    bottom.grid(True, alpha=0.3)
    fig.suptitle(
        f"Lanes: {lanes['bulk_backlog']:,} bulk backlog, critical at {lanes['critical_rate_per_s']:g}/s "
        f"for {lanes['critical_seconds'] / 60:g} min (virtual time)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_pacing(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    runs = [r for r in results["pacing"]["runs"] if "series" in r]
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 2.1 * len(runs)), sharex=False)
    colors = {"critical": "tab:red", "standard": "tab:blue", "bulk": "tab:green"}
    for ax, run in zip(axes, runs, strict=True):
        series = run["series"]
        seconds = list(range(len(series["available"])))
        bottom = [0.0] * len(seconds)
        for lane in ("critical", "standard", "bulk"):
            values = series["per_second"][lane]
            if any(values):
                ax.bar(seconds, values, bottom=bottom, color=colors[lane], width=0.9, label=lane, align="edge")
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.step(
            [*seconds, len(seconds)],
            [*series["available"], series["available"][-1]],
            where="post",
            color="black",
            linewidth=1,
            label="available (R less the other sender)",
        )
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{run['name']}: achieved / available {run['achieved_ratio']}", fontsize=9)
        ax.set_ylabel("sent / s", fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", ncol=4)
    axes[-1].set_xlabel("seconds into the run (the ratio counts from the dotted line)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_cost(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    cost = results["cost"]
    regimes = (("paced", "the core, paced\n(cdk.json, lanes scenario)"), ("unpaced", "the core, not paced"))
    names = [k for k in cost["paced"]["rows"] if k != "SES"]
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(10, 4.6))
    for i, (key, _) in enumerate(regimes):
        left = 0.0
        for n, name in enumerate(names):
            value = cost[key]["rows"][name]
            ax.barh(i, value, left=left, color=colors[n % len(colors)], label=name if i == 0 else None)
            left += value
        ax.text(left, i, f"  {cost[key]['overhead_pct']}% of SES", va="center")
    ax.axvline(3.0, color="red", linestyle="--", linewidth=1, label="3% of SES (3 US dollars)")
    ax.set_yticks(range(len(regimes)), [label for _, label in regimes])
    ax.set_xlabel("US dollars per million emails, beside SES (100 US dollars)")
    ax.set_xlim(0, max(cost[k]["overhead"] for k, _ in regimes) * 1.25)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mark(met: bool) -> str:
    return "met" if met else "**not met**"


def _table(rows: list[list[Any]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results: dict[str, Any], chaos: dict[str, Any] | None) -> str:
    """The report."""
    m = results["machine"]
    t = results["throughput"]
    c = results["cpu"]
    d = results["ddb"]
    p = results["pacing"]
    ln = results["lanes"]
    cs = results["cold_start"]
    co = results["cost"]
    at50 = next(x for x in t["points"] if x["ses_latency_ms"] == 50)
    bulk_ratio = at50["bulk"]["ratio"]
    summary = [
        [
            "1. throughput ratio at 50 ms (standard lane)",
            ">= 8x (15x: best design)",
            f"{t['ratio_at_50ms']}x (bulk lane {bulk_ratio}x)",
            _mark(t["ratio_at_50ms"] >= 8),
        ],
        [
            "2. CPU per email in the worker",
            "-",
            f"{c['domain']['us_per_email']} us domain, {c['us_per_email']} us with boto3",
            "-",
        ],
        [
            "2. DynamoDB requests per email",
            "<= 2.5; one BatchGetItem per table per batch",
            f"{d['requests_per_email']} ({d['reads_per_email']} reads, {d['writes_per_email']} writes); "
            f"max {max(d['batch_get_per_table_per_batch_max'].values())} per table per batch",
            _mark(d["requests_per_email"] <= 2.5 and max(d["batch_get_per_table_per_batch_max"].values()) <= 1),
        ],
        [
            "2. SES calls per sent email",
            "1",
            f"{d['ses_calls_per_sent_email']}",
            _mark(d["ses_calls_per_sent_email"] <= 1),
        ],
        *(
            [
                f"3. pacing: achieved / available, `{name}`",
                ">= 0.95, throttled <= 1%, lost 0",
                f"{v['achieved_ratio']}, throttled {v['throttled_ratio']:.2%}, lost {v['lost']}",
                _mark(v["achieved_ratio"] >= 0.95 and v["throttled_ratio"] <= 0.01 and v["lost"] == 0),
            ]
            for name, v in p["achieved_ratio_by_mix"].items()
        ),
        [
            "3. pacing: adaptive (R 14 -> 28 -> 7, other sender 3/s)",
            "reported",
            f"{p['adaptive']['achieved_ratio']} of what was left ("
            + ", ".join(f"{x['rate']:g}/s: {x['achieved_ratio']}" for x in p["adaptive"].get("phases", []))
            + f"), throttled {p['adaptive']['throttled_ratio']:.2%}",
            "-",
        ],
        [
            "3. pacing: billed seconds per sent email (lanes scenario, cdk.json)",
            "<= 0.02",
            f"{p.get('billed_seconds_per_email', '?')} (by lane: "
            + ", ".join(f"{k} {v}" for k, v in ln["billed_seconds_per_email"].items())
            + ")",
            _mark(float(p.get("billed_seconds_per_email") or 1) <= 0.02),
        ],
        ["3. pacing: requests lost", "0", f"{p['lost']}", _mark(p["lost"] == 0)],
        [
            "4. lanes: critical p99 publish-to-send, bulk saturating",
            "<= 1 s",
            f"{ln['critical_p99_s']} s (p50 {ln['critical_p50_s']} s)",
            _mark(ln["critical_p99_s"] <= 1),
        ],
        [
            "4. lanes: bulk throughput",
            "-",
            f"{ln['bulk_throughput_per_s']}/s ({ln['bulk_drain_seconds'] / 3600:.2f} h for {ln['bulk_backlog']:,}); "
            f"SES used {ln['ses_rate_used_during_critical_per_s']}/s of {ln['ses_max_send_rate']:g}/s while critical mail flowed",
            "-",
        ],
        [
            "5. cold start (import + build service), as deployed",
            "<= 500 ms",
            f"{cs['init_ms']} ms (CPython {cs['python']}; {cs['asset_compiled_at_start']['init_ms']} ms without the bytecode)",
            _mark(cs["init_ms"] <= 500),
        ],
        [
            "5. Lambda asset",
            "-",
            f"{cs['asset'].get('unzipped_bytes', 0) / 1e6:.1f} MB unzipped, {cs['asset'].get('zipped_bytes', 0) / 1e6:.1f} MB zipped",
            "-",
        ],
        [
            "6. cost: the core beside SES",
            "<= 3% paced and unpaced",
            f"{co['paced']['overhead_pct']}% paced, {co['unpaced']['overhead_pct']}% unpaced",
            _mark(co["paced"]["overhead_pct"] <= 3 and co["unpaced"]["overhead_pct"] <= 3),
        ],
        [
            "6. cost: the default configuration (core paced and the features cdk.json turns on)",
            "reported",
            f"{co['default_config_pct']}% (${co['default_config_usd']:.2f} per million)",
            "-",
        ],
    ]
    if chaos is not None:
        ok = chaos.get("invariants_hold")
        summary.append(
            [
                "chaos: invariants over " + f"{chaos['published']:,} requests",
                "all hold",
                f"lost {chaos['lost']}, duplicates {chaos['duplicate_sends']} "
                f"(crash window {chaos['crash_window_duplicates']})",
                _mark(bool(ok)),
            ]
        )

    throughput_rows = [
        [
            x["ses_latency_ms"],
            x["baseline"]["emails_per_second"],
            x["standard"]["emails_per_second"],
            f"{x['standard']['ratio']}x",
            x["bulk"]["emails_per_second"],
            f"{x['bulk']['ratio']}x",
            x["standard_mixed"]["emails_per_second"],
            f"{x['standard_mixed']['ratio']}x",
        ]
        for x in t["points"]
    ]
    what_if_rows = [
        ["deployed worker (cdk.json)", at50["standard"]["emails_per_second"], f"{at50['standard']['ratio']}x"],
        *([name, v["emails_per_second"], f"{v['ratio']}x"] for name, v in t.get("what_if_at_50ms", {}).items()),
    ]
    pacing_rows = [
        [
            r["name"],
            " -> ".join(f"{x:g}" for x in [r["ses_max_send_rate"], *(c[1] for c in r.get("rate_changes", []))]) + "/s",
            f"{r.get('foreign_rate', 0):g}/s",
            ", ".join(f"{x['lane']} {x['count']}" + (f" at {x['at']:g} s" if x["at"] else "") for x in r["publish"]),
            r["achieved_rate"],
            r["achieved_ratio"],
            f"{r['throttled']} / {r['ses_calls']} ({r['throttled_ratio']:.2%})",
            r["deferrals"],
            r["billed_seconds_per_email"],
            r["lost"] + r["still_queued"],
        ]
        for r in p["runs"]
    ]
    adaptive_rows = [
        [f"{x['rate']:g}/s", f"{x['seconds']:g} s", x["achieved_ratio"]] for x in p["adaptive"].get("phases", [])
    ]
    lanes_what_if_rows = [
        [
            name,
            v["critical"]["batch_size"],
            v["critical"]["max_concurrency"],
            v["critical_p50_s"],
            v["critical_p99_s"],
            v["critical_max_s"],
        ]
        for name, v in ln["what_if"].items()
    ]
    cost_rows = [
        [name, f"{co['paced']['rows'][name]:.2f}", f"{co['unpaced']['rows'][name]:.2f}"] for name in co["paced"]["rows"]
    ]
    cost_rows.append(
        [
            "**the core beside SES**",
            f"**{co['paced']['overhead']:.2f} ({co['paced']['overhead_pct']}%)**",
            f"**{co['unpaced']['overhead']:.2f} ({co['unpaced']['overhead_pct']}%)**",
        ]
    )
    price_rows = [[k, f"{v['usd']:.10f}".rstrip("0").rstrip("."), v["unit"]] for k, v in co["prices"].items()]
    feature_rows = [
        [
            f["name"],
            f"`{f['setting']}`",
            "on" if f["default"] else "off",
            f"{f['usd_per_million']:.2f}",
            f"{f['pct']}%",
            f["notes"],
        ]
        for f in co.get("features", [])
    ]
    route = co.get("engagement_route", {"sns_per_million_emails": 0.0, "eventbridge_per_million_emails": 0.0})
    fb_groups = "; ".join(
        f"{name} {g['events_per_sent_email']} events per sent email, {g['write_units_per_sent_email']} write units, "
        f"+{g['item_bytes_added_per_sent_email']} bytes on the item"
        for name, g in results["ddb"]["feedback"].get("groups", {}).items()
    )
    by_call = "; ".join(f"`{k}` {v}" for k, v in d["by_call_per_email"].items())
    imports = ", ".join(f"{x['package']} {x['ms']} ms" for x in cs["import_breakdown"][:8])
    largest = ", ".join(f"{x['package']} {x['bytes'] / 1e6:.1f} MB" for x in cs["asset"].get("largest_packages", []))
    stages = c["stages"]
    cold, warm = cs["asset_compiled_at_start"], cs["bytecode_shipped"]
    sp = co["paced"]["inputs"]
    chaos_section = _chaos_section(chaos)
    lanes_cfg = ln["config"]

    return f"""# Benchmarks

Produced by `make bench` (`python -m bench.run`), which writes
[`bench/results.json`](../bench/results.json), this page and its plots;
`make chaos` writes [`bench/chaos.json`](../bench/chaos.json). Every
comparison below was measured in the same run. Wall-clock figures on a
shared 2-core machine are noisy: read the ratios, which were measured
interleaved, rather than the absolute rates.

| machine | |
|---|---|
| CPU | {m["cpu"]}, {m["cores"]} cores |
| memory | {m["memory_gib"]} GiB |
| OS, Python | {m["os"]}, {m["implementation"]} {m["python"]} |
| load average at start | {m["load_average_at_start"]} (other engineers' test runs share the machine) |
| commit | `{m["commit"]}` |
| date | {m["date_utc"]} |
| run time | {results["seconds"]} s{" (quick run: not for committing)" if results.get("quick") else ""} |

## Summary

{_table(summary, ["what", "target", "measured", ""])}

## 1. Throughput per worker

**Method** (`bench/throughput.py`). Both consumers drain the same kind of
in-memory SQS queue and send through the same `FakeEmailSender` with the
SES latency shown; every SQS and DynamoDB call costs
{t["io_latency_ms"]:g} ms in both (`bench.common.Latent` wraps each port).

* **Baseline**: the seed article's `start_worker` loop as written:
  `ReceiveMessage(MaxNumberOfMessages=1)`, its `str.replace` rendering of
  its two hard-coded templates, one sequential send, one `DeleteMessage`.
  No dedupe, suppression or consent, so no DynamoDB calls.
* **Worker**: the real `SendService` built by `build_fake_service`, with
  cdk.json's lane settings (standard: batch {t["worker_settings"]["standard"]["batch_size"]}, send concurrency
  {t["worker_settings"]["standard"]["send_concurrency"]}; bulk: batch {t["worker_settings"]["bulk"]["batch_size"]}, send concurrency
  {t["worker_settings"]["bulk"]["send_concurrency"]}, i.e. `min(batch_size, MAX_SEND_CONCURRENCY)` as
  `infra.config` sets it) and a pacer at {t["pacer_rate"]:g} emails/s, so pacing never limits it
  (pacing is section 3). Each invocation is preceded by the event source mapping's
  receives (ten messages per `ReceiveMessage`, 5 ms each) and followed by its
  `DeleteMessageBatch`, counted in the worker's time like the baseline's.
* Requests: the seed article's two producer messages, alternating, to distinct
  recipients (both consumers can render them). "Realistic mix" adds password
  resets and rate-limited marketing mail (one more DynamoDB stage).
* Each figure is the median of {t["rounds"]} rounds; a ratio is computed per round
  (worker and baseline run back to back) and the median taken.

{_table(throughput_rows, ["SES latency (ms)", "baseline /s", "standard /s", "ratio", "bulk /s", "ratio", "mixed /s", "ratio"])}

![throughput](throughput.png)

**Reading.** The worker's time per batch is one SES latency plus five
sequential 5 ms stages that the pipeline runs one after another for the
whole batch (receive, claim, consent lookups, message-log write, delete;
six with a rate-limited category) plus its CPU; the baseline pays one SES
latency plus two 5 ms calls per email. With ten sends in flight the ratio
is therefore bounded near `10 x (L + 10) / (L + 25 + cpu)`: about 7.6x at
50 ms. Measured at 50 ms: the standard lane {t["ratio_at_50ms"]}x, the bulk lane {bulk_ratio}x
(batches of {t["worker_settings"]["bulk"]["batch_size"]} since pacing sizes them to a burst, section 3). Proposed changes, measured in the
same run at 50 ms on the standard lane's queue (prototypes in
`bench/throughput.py`, not runtime code):

{_table(what_if_rows, ["variant", "emails/s", "ratio to baseline"])}

* "lookups with claims": `SendService.process` runs the two consent
  `BatchGetItem`s concurrently with the dedupe claims instead of after
  them (the prototype starts them before `process`); one 5 ms stage less
  per batch, reads unchanged (one `BatchGetItem` per table per batch), the
  dedupe guarantee untouched (a record whose claim is lost ignores its
  lookup results).
* "batch 25, 25 sends in flight": cdk.json gives the standard lane
  `batch_size` 25 with its batching window, and
  `infra.config.MAX_SEND_CONCURRENCY` (16) rises to 25 so
  `send_concurrency` equals the batch size. Both together are the
  "best design" region (about 15x).

## 2. CPU and requests per email

**CPU** (`bench/cpu.py`, `time.process_time`, all threads, no I/O wait):

* domain only (`SendService` on fakes that answer at once, realistic mix,
  thread pool as deployed): **{c["domain"]["us_per_email"]} us per email**; of which parsing and
  validation with ids and hashes {stages["parse_validate_ids_us"]} us, rendering (compiled templates cached)
  {stages["render_us"]} us, unsubscribe links {stages["unsubscribe_links_us"]} us;
* the deployed wiring (`build_send_service`: boto3 clients, adapters,
  request signing and response parsing, answered by canned responses from a
  `before-send` hook, no network): **{c["with_boto3"]["us_per_email"]} us per email**. botocore, not the
  domain, is most of the worker's CPU.

At 512 MB Lambda gives a function 512/1769 of a vCPU, so
{c["with_boto3"]["us_per_email"]} us here is roughly {c["with_boto3"]["us_per_email"] * 1769 / 512 / 1000:.1f} ms of wall time per email in Lambda
(more on Graviton if its core is slower than this one): at ten emails per
batch that is comparable to the SES latency, so on Lambda the worker is
partly CPU-bound at 512 MB and the section 1 ratios (fakes, full cores)
are upper bounds. The lanes simulation adds this CPU, scaled to the
configured memory, to every invocation.

**DynamoDB and SES** (`bench/ddb.py`): the real handler body
(`send_worker.handle_batch`) and adapters over moto, every call counted
with a botocore hook, {d["emails"]:,} requests: password resets on the critical
lane, receipts and welcomes on the standard lane, a newsletter (marketing,
2 per user per day) on the bulk lane; 3% suppressed recipients, 3% opted
out of marketing, 1% unsubscribed from everything, some users past their
marketing limit. Outcomes: {", ".join(f"{k} {v}" for k, v in d["outcomes"].items())}.

| per email | value |
|---|---|
| DynamoDB requests | **{d["requests_per_email"]}** (reads {d["reads_per_email"]}, writes {d["writes_per_email"]}) |
| by call | {by_call} |
| BatchGetItem per table per batch (max) | {", ".join(f"{k} {v}" for k, v in d["batch_get_per_table_per_batch_max"].items())} |
| read request units | {d["read_units_per_email"]} (eventually consistent, 0.5 per key found or not) |
| write request units | {d["write_units_per_email"]} + {d["gsi_write_units_per_email"]} for the `by-ses-message-id` index |
| item sizes (bytes, mean) | claim {d["item_bytes_avg"]["idempotency"]}, message log {d["item_bytes_avg"]["messages"]} |
| SES calls | {d["ses_calls_per_email"]} per request, {d["ses_calls_per_sent_email"]} per sent email |
| log bytes (JSON logs, EMF, Lambda's START/END/REPORT) | {d["log_bytes_per_email"]} |

Reads are batched (one `BatchGetItem` per table per batch). Writes are the
conditional dedupe claim (`PutItem`, one per email, never traded away), the
outcome (`BatchWriteItem`: a sent email's as soon as SES accepts it, so a
crash re-sends only what was in flight; the other outcomes of a batch
together) and, for a rate-limited category
only, the per-user counter (`UpdateItem`): that third write is what an exact
per-user limit costs; pacing adds one `UpdateItem` per batch. Since each sent
email's outcome is its own write (the crash window of one email, issue 14),
requests per email passed the earlier 2.5 budget; the write units, which
are what DynamoDB bills on demand, did not change.

## 3. Pacing

**Design** (`functions/mailwright/pacing.py`,
`functions/mailwright/adapters/dynamodb_pacing.py`). One token bucket for the
whole SES account, shared by every worker of every lane: a GCRA (one
theoretical arrival time, `tat`) in one DynamoDB item of the idempotency
table. A take of n tokens is one conditional `UpdateItem` (`SET tat = tat +
n/R` while `tat` stays within the lane's reach of now): lock-free, since
concurrent takers all succeed while the bucket has room.

* **Priority that holds no idle share.** A lane's reach is how far ahead of
  now it may push `tat`. Every lane may use the whole burst (one second of
  sends, less one token of slack for sends that start late) while no
  higher lane is sending; while one is (it was granted tokens within the
  last second, recorded in the same item, `a_<lane>`), standard stops 0.15 s
  short of the burst and bulk 0.3 s short. So critical mail always finds
  tokens at once, the lower lanes find none while it sends, and the headroom
  comes back within a second of it stopping. A lane that sends nothing
  holds nothing, and any record, new or returning, takes a token that is
  free now (work-conserving).
* **No billed waiting.** A batch takes only the tokens free now or within a
  short wait (`pacing_max_wait_seconds`: critical 0.2 s, standard and bulk
  0.1 s; the wait only covers the tokens that accrue while the batch's first
  sends go) and hands the rest back to its queue as new messages with a
  delay (`SendMessageBatch`, `DelaySeconds`; the deferral count and first
  publish time ride as message attributes; the receive count that leads to
  the DLQ is untouched). The hand-back runs while the batch's other records
  are processed.
* **A batch, not a trickle.** An invocation costs its round trips and SES's
  50 ms however few emails it sends. Standard and bulk takes are all or
  nothing below four tokens (`MIN_GRANT`; never more than a take could hold
  at the current rate): a take that would get one or two leaves them to
  accumulate inside the lane's reach, so the next invocation sends several
  at once, while critical mail takes single tokens.
* **Deferred mail comes back when there is capacity for it, about once.**
  The records take slots in their lane's schedule item
  (`pace#schedule#<lane>`). Two rules make a slot a good prediction, so a
  record is deferred about once instead of missing its slot and being booked
  again: (1) a lane's slots start after the mail the higher lanes have
  booked (`schedule(after=...)`: one BatchGetItem of their schedule items),
  and while a higher lane's booked mail comes back (`b_<lane>` in the bucket
  item, written when it books) the lower lanes take nothing, so bulk's
  deferred mail does not meet the critical or standard mail that would take
  its tokens, and critical mail never loses a returning second to them;
  (2) slots are spaced
  at the account's current rate, but a second holds no more slots than one
  take at its start can be granted (the lane's reach and wait at the current
  rate: 14 a second for any lane alone at 14/s, about 10 for bulk while
  critical mail flows), because SQS delays are whole seconds, so each
  second's slots return together and are taken at once. Slots are computed
  from the rate and the reach of the moment, so a throttle or a lane that
  starts or stops changes the next bookings at once. A backlog longer than
  SQS's 15-minute delay is parked for 15 minutes at a time, which sets a
  floor on deferrals per email for long backlogs (section 4 reports it).
  So a backlog waits in SQS (free), not in a billed worker.
* **Tokens for when the sends start.** A batch's sends start after its
  claims, lookups and rendering; tokens taken at the take would let a late
  batch's sends bunch up with other workers' on time (SES's bucket does not
  fill beyond its burst meanwhile). Each worker learns this lead per batch
  (a longer one at once, a shorter one slowly) and takes its tokens for then.
* **The rate follows the account.** SES's `MaxSendRate` (GetAccount, read by
  one worker every 5 minutes and shared in the item; a fleet that never read
  it defers its first batches for a second rather than book them at a
  guessed rate), capped by `ses_max_send_rate` when set, cut by 20% when SES
  throttles (once a second for the whole fleet) and recovering along a cubic
  curve to the throttled rate in 10 s, probing above it after that; a
  throttle also makes a worker read SES again within 10 s.
* **The daily quota is not the rate.** Bulk is held at 90% and standard at
  97% of `Max24HourSend` (`quota_holds`), so critical mail keeps the rest;
  "Daily message quota exceeded" holds every lane until SES reports room,
  never cuts the rate, and raises the `ses-quota-hold` alarm.

**Batch sizes.** A batch should be what one take can send at once: at most
the lane's reach of the burst, so the whole batch is sent together by one
invocation (one set of round trips, SES's latency once), and at least
`MIN_GRANT`, so a take is worth its invocation. At a 14/s account a take
holds 13 to 14 tokens for a lane alone and 9 to 10 for bulk while critical
mail flows. cdk.json's bulk lane takes batches of 10 with a 5 s window (it
took 25: the event source waited to gather 25 returning records while the
bucket idled; the lanes scenario measured 5.9 emails/s of bulk at 25 against
8.6/s at 10); critical takes 10 with no window (latency first: most of its
invocations carry one email). Standard keeps 25 with its 1 s window, which
invokes before 25 gather; a full 25 sends what the reach holds and books the
rest into the next second. The event source's concurrency (2 for bulk) is
not spent waiting: an invocation that finds no tokens defers its batch in
one `SendMessageBatch` call and ends.

**Scale and the registry's cost.** Writes follow sends and deferrals, not
workers: one conditional `UpdateItem` of the bucket item per batch that is
granted tokens (under 1 KB: one write unit, $1.25 per million on demand),
none for a batch denied (the worker knows from the arrival time it saw last,
re-read at most every 2 s; nor while it yields to a higher lane's returning
mail), and for a batch that defers, one `UpdateItem` of its lane's schedule
item (for critical and standard one more of the bucket item's `b_<lane>`)
plus, for standard and bulk, one BatchGetItem of the higher lanes' schedule
items (half a read unit each). Measured: in the
real-time mixes, {max(r.get("registry_writes_per_email", 0) for r in p["runs"]):g} registry writes per sent email at most and
at most {max(r.get("registry_writes_per_second_max_item", 0) for r in p["runs"]):g} writes a second on the busiest item (the bucket) at
14-28/s; in the lanes scenario {ln.get("registry_writes", {})} over
{ln["simulated_seconds"] / 3600:.1f} simulated hours. The hot key is the bucket item: its write rate
is the account's take rate, at most one take per email for critical mail and
one per four or more for standard and bulk, so it grows with the SES rate,
not with the number of workers. With 1,000 concurrent workers at a 14/s
account the bucket still takes at most about 14 writes a second; the
workers' denials cost no writes, only one strongly consistent read per
worker every 2 s (500 reads a second at 1,000 workers, under a partition's
3,000). DynamoDB allows 1,000 writes a second per partition key, so one item
serves accounts up to several hundred emails a second; past about 500 takes
a second, `pacing_shards` splits the bucket into items of 1/shards of the
rate each (a take picks one at random, and one more when it is out of
reach). The registry's cost per email is in section 6's DynamoDB line
(pacing writes included).

**Method** (`bench/pacing.py`). Every worker cdk.json allows (each lane at its
`max_concurrency`) runs at once in real time, one thread per emulated
container, each a real `SendService` with the pacer `wiring` builds, on one
in-memory registry behind a 5 ms round trip. SES is a token bucket at R
holding one second of sends (a call beyond it raises `ThrottledError`); its
rate can change during a run and another application may send on it.
Achieved is counted over the window after the first second and compared
with what the account had to give (R, less the other sender); then every
queue is drained and each request must be in a terminal state or a DLQ.
SES latency {p["ses_latency_ms"]:g} ms, DynamoDB and SQS 5 ms; workers read
SES's quota every {p["adaptive"].get("refresh_seconds", 10):g} s here.

{_table(pacing_rows, ["mix", "R", "other sender", "published", "achieved /s", "achieved / available", "throttled", "deferrals", "billed s / email", "lost"])}

The adaptive run, by stretch of constant account rate (each after its first second):

{_table(adaptive_rows, ["account rate", "measured over", "achieved / available"])}

Critical mail in the `critical_burst` mix (a burst beside a bulk backlog that
saturates the account): p50 {p["runs"][3].get("critical_p50_s", "?")} s, p99 {p["critical_burst_p99_s"]} s from publish to send.
Billed seconds per email, deployed settings: **{p.get("billed_seconds_per_email", "?")}**, every invocation's
billed time over every email sent in the lanes scenario (section 4), where the
event source's batching window is modelled; the real-time runs above poll without one.

## 4. Lanes

**Method** (`bench/lanes.py`), a discrete-event simulation in virtual time
with the real `SendService`:

* each lane's event source mapping with cdk.json's settings
  (critical: batch {lanes_cfg["critical"]["batch_size"]}, window {lanes_cfg["critical"]["batching_window_seconds"]} s, max concurrency {lanes_cfg["critical"]["max_concurrency"]};
  bulk: batch {lanes_cfg["bulk"]["batch_size"]}, window {lanes_cfg["bulk"]["batching_window_seconds"]} s, max concurrency {lanes_cfg["bulk"]["max_concurrency"]});
  a free container polls as soon as its lane has a visible message
  ({ln["poll_to_invoke_ms"]:g} ms from receive to invoke), gathering up to the batching window;
* each invocation runs `SendService.process` on a virtual clock: its thread
  pool overlaps tasks in virtual time, each port call sleeps its latency
  (SES {ln["ses_latency_ms"]:g} ms, DynamoDB and SQS 5 ms), its pacer is the deployed one
  (the account's shared bucket, as in section 3, deferrals included); the CPU it really used, plus the boto3 CPU
  per email of section 2 (a tenth of it for a record handed back),
  scaled to 512 MB, is added to its duration;
* {ln["bulk_backlog"]:,} newsletter requests wait in the bulk queue at time 0; password
  resets arrive on the critical lane as a Poisson process at
  {ln["critical_rate_per_s"]:g}/s for {ln["critical_seconds"] / 60:g} minutes; publish-to-send is from the
  message's `SendMessage` to SES accepting it;
* time compression: only the simulation's clock is compressed
  ({ln["simulated_seconds"] / 3600:.2f} h simulated in {ln["wall_seconds"]} s); every delay keeps its real length.

| | value |
|---|---|
| critical publish-to-send | p50 **{ln["critical_p50_s"]} s**, p90 {ln["critical_p90_s"]} s, p99 **{ln["critical_p99_s"]} s**, max {ln["critical_max_s"]} s ({ln["critical_sent"]:,} sent) |
| bulk throughput | **{ln["bulk_throughput_per_s"]}/s** ({ln["bulk_drain_seconds"] / 3600:.2f} h to drain {ln["bulk_backlog"]:,}); {ln["bulk_throughput_during_critical_per_s"]}/s while critical mail flowed |
| SES account used while both flowed | {ln["ses_rate_used_during_critical_per_s"]}/s of {ln["ses_max_send_rate"]:g}/s; sends over the account rate: {ln["would_be_throttled"]} |
| lost | {sum(ln["lost"].values())} |
| emails per invocation | {", ".join(f"{k} {v}" for k, v in ln["emails_per_invocation"].items())} |
| billed seconds per email | {", ".join(f"{k} {v}" for k, v in ln["billed_seconds_per_email"].items())} |

![lanes](lanes.png)

**Reading.** The bulk backlog does not slow critical mail: critical mail
reaches further into the shared bucket than bulk, so it finds tokens at once
and bulk gets what it leaves. Bulk drains at {ln["bulk_throughput_per_s"]}/s of a
{ln["ses_max_send_rate"]:g}/s account; deferrals: {ln.get("deferrals", "?")} ({ln.get("bulk_deferrals_per_email", "?")} per bulk
email, where waiting in 15-minute delays, SQS's longest, takes at least {ln.get("bulk_deferrals_floor_per_email", "?")}: this backlog waits up to
{ln["bulk_drain_seconds"] / 60:.0f} minutes), registry writes: {ln.get("registry_writes", {})}.
What-ifs with critical traffic alone (10 minutes):

{_table(lanes_what_if_rows, ["critical lane", "batch", "max concurrency", "p50 (s)", "p99 (s)", "max (s)"])}

## 5. Cold start and asset

`bench/cold_start.py`: {cs["runs"]} fresh interpreters each do what Lambda's
Init phase does: import `mailwright.handlers.send_worker` and build the
container's send service (`send_worker.service()`, which the module calls at
import when the Lambda runtime loads it, so no invocation pays for it) from a
lane's environment (dummy names and credentials; no network). **Init** is that
import plus that build, wall clock, up to the service ready for its first
batch: settings parsed and checked, the SES, DynamoDB, S3 and Secrets Manager
clients built with their service models loaded (one botocore session, whose
loader reads each data file once); only the queue's client, used by retries
and deferrals alone, is built on its first use. {_cold_start_method(cs)}
Load average {cs.get("load_average_at_start", "?")} at the start, {cs.get("load_average_at_end", "?")} at the end (2 cores).

| median of {cs["runs"]} processes (the other rows: {cs.get("comparison_runs", cs["runs"])}) | import | build service | total (wall) | CPU |
|---|---|---|---|---|
| as deployed: the asset with its bytecode | {warm["import_ms"]} ms | {warm["build_ms"]} ms | **{warm["init_ms"]} ms** | {warm.get("cpu_ms", "-")} ms |
| the asset without bytecode (compiled at each start) | {cold["import_ms"]} ms | {cold["build_ms"]} ms | {cold["init_ms"]} ms | {cold.get("cpu_ms", "-")} ms |
{_traced_row(cs)}
The bundler (`infra/bundling.py`) compiles the asset with a CPython 3.12
(this machine's, `python3.12` on the path, pyenv's, or
`MAILWRIGHT_LAMBDA_PYTHON`): unchecked-hash `.pyc` files (PEP 552), which the
runtime loads without reading the sources (`/var/task` is read-only, Lambda
could not write them) and which are the same bytes on every machine. Without
a CPython 3.12, synth says so and the asset ships sources only (the second
row). Every function also sets `PYDANTIC_DISABLE_PLUGINS`, so pydantic does not
look through the installed distributions for plugins when the first model is
built. Import time by package (`-X importtime`, own time summed, this
checkout): {imports}.

X-Ray tracing is a deployment setting (`tracing`), off by default: X-Ray
bills each trace, and Powertools' Tracer imports the X-Ray SDK and patches
botocore even when disabled. Untraced functions are deployed with
`POWERTOOLS_TRACE_DISABLED=true` and no X-Ray permission, and their handlers
get a stand-in for the tracer (`mailwright.observability.UntracedHandlers`)
that imports nothing; the last row above is a worker deployed with
`tracing: true`. Building the clients no longer lists botocore's ~400 service
directories: botocore's loader does that, once per model type, only to check
that a client's service exists; `mailwright.adapters.aws.ModelLoader` asks the
service's own directory instead (about 45 ms of CPU for the worker's four
clients on this machine).

What the worker's Init leaves out: boto3 (the functions build low-level
clients from a botocore session, `mailwright.adapters.aws.BotocoreSession`;
boto3 imports s3transfer and multiprocessing, and DynamoDB items are decoded
by `mailwright.adapters.dynamodb.deserialize`), asyncio (wrapt, the X-Ray
SDK's dependency, is pinned to 1.17: wrapt 2 imports asyncio at import), the
queue's client until a retry or deferral needs it, the other functions'
services and models (status, submission, OpenAPI, feedback, failover for a
lane without a secondary: `tests/unit/test_cold_start_imports.py` checks), and
with tracing off the X-Ray SDK and wrapt (`tests/unit/test_tracing.py`).
What it still spends, and why: botocore (its import, then each client's
service model and endpoint rules, JSON parsed at build: most of the build
column), pydantic with the request and template-bundle models (both used by
the first batch), jinja2 (the default template engine), Powertools' logger
and metrics, and about sixty frozen dataclasses (ports and settings), each
compiled by `dataclasses` at import (about 1.5 ms each on CPython 3.12, which
compiles every generated method separately). All four clients are used by
the first batch (templates from S3, claims, log and pacing in DynamoDB, SES,
the address and unsubscribe keys in Secrets Manager): building them later
would move their cost into the first batch, not save it. Each client also
copies the session's event handlers and parses its service model and
endpoint rules (about 4.8 MB of JSON for the four, with botocore's
`endpoints.json`); shipping models trimmed to the operations mailwright calls
would cut most of that parse, at the cost of keeping them in step with the
runtime's botocore.

Asset, built by `infra.bundling.WorkerCodeBundler` (what `cdk synth` runs): **{cs["asset"].get("unzipped_bytes", 0):,} bytes unzipped,
{cs["asset"].get("zipped_bytes", 0):,} bytes zipped** (deflate level 9),
{cs["asset"].get("files", 0)} files; largest: {largest}.{_cdk_out_note(cs)}
The bundler leaves boto3, botocore, s3transfer and their own dependencies
(jmespath, dateutil, urllib3, six) to the runtime and drops typing stubs.
cryptography stays, imported only where used: the worker encrypts unsubscribe
tokens with it (AES-GCM, on the first link it signs) and the provider webhooks
verify signatures with it, and one asset serves every function; most of its
size is one native library (its Rust bindings), loaded only when a token or signature needs it.

## 6. Cost per million emails

`bench/cost.py`, from the measurements above, in US dollars per million
emails at list prices. **The core**, as issue 14 defines it: the send path
(the producer's request, the lane queue, the worker, the dedupe claim and the
outcome, the message log with its storage and backups) and the suppression
feedback (bounces, complaints, rejects, rendering failures), in two regimes:

* **paced**: the lanes scenario of section 4 with cdk.json's settings (a
  {ln["bulk_backlog"]:,}-email backlog parked and returned by the shared bucket, critical mail
  at {ln["critical_rate_per_s"]:g}/s): {sp["lambda_seconds_per_email"]} billed s per email at {sp["memory_gb"]:g} GB,
  {sp["invocations_per_email"]} invocations and {sp["sqs_requests_per_email"]} SQS requests per email (the producer's
  requests, the mapping's receives and deletes, every deferral, counted
  by the simulated queues; the producer's are {co["assumptions"].get("producer_sqs_requests_per_email_paced", "?")} per email: the
  backlog published {co["assumptions"].get("producer_batch_paced_bulk", 1)} per `SendMessageBatch` through a batching door, each
  critical request alone), the shared bucket's and schedules' writes;
* **unpaced**: traffic under the SES rate: the section 1 batch time at 50 ms
  plus the boto3 CPU scaled to 512 MB ({co["unpaced"]["inputs"]["lambda_seconds_per_email"]} s per email), batches of ten.

{_table(cost_rows, ["US$ per million emails", "paced", "unpaced"])}

![cost](cost.png)

**Every other feature** has its own line (per million emails, the same for
both regimes); `default` says whether cdk.json's configuration has it on.
Other features add their lines to `bench.cost.FEATURES`.

{_table(feature_rows, ["feature", "setting", "default", "US$ per million", "% of SES", "what it costs"])}

**The default configuration** (the core, paced, and the features it has on):
**${co["default_config_usd"]:.2f} per million, {co["default_config_pct"]}% of SES**.
{_outcome_events_text(co)}
**SES events: SNS or EventBridge.** Bounces, complaints, rejects and
rendering failures go to the feedback topic (SNS, then SQS): the feedback
path of the design card, and part of the core. SES's Send events are no
longer published (the worker records the send itself), deliveries are on by
default (`event_tracking.delivery`) and opens and clicks are opt-in
(`event_tracking.opens_clicks`). SES could publish the delivery and engagement
events to the default EventBridge bus instead, but EventBridge prices the
data-plane events a service sends once you opt in ("AWS opt-in data events",
which is what a configuration set's EventBridge destination is) at $1.00 per
million ingested, where an SNS publish is $0.50; rules and targets in the same
account add nothing, and either way SQS bills the delivery to the queue. Per
million emails, the delivery events' transport costs
${route["sns_per_million_emails"]:.2f} through SNS and ${route["eventbridge_per_million_emails"]:.2f} through EventBridge, so they stay on
SNS (SES delivers events best effort either way). Only AWS *management*
events (control-plane changes) are free on the default bus.

Measured quantities (section 2, over moto): per email {sp["dynamodb_wru_per_email"]} write units for the
core (the claim, the outcome, pacing) and {sp["dynamodb_rru_per_email"]} read units (the consent
lookups, eventually consistent); the message log item averages
{d.get("message_log_item_bytes_avg", "?")} bytes. The feedback function, given SES events for the sent
requests in turn: {fb_groups}.

Assumptions (not measured here): per SES event one SNS publish, one SQS
delivery and 1/10 of a receive and a delete, and
{co["assumptions"]["feedback_seconds_per_event"] * 1000:g} ms of a 256 MB feedback function. The producer's
requests: every door of mailwright's own batches (the SDK's `send_batch`, which
`mailwright send --file/--csv` uses, the CSV door's ingest bridge, `POST /v1/messages`
with several requests: ten per `SendMessageBatch`); a request sent alone (the SDK's
`send`, a single-request API call, the bus's SQS target) is one request. So the paced
regime publishes its backlog ten per call and its critical mail one each, and the
unpaced regime assumes the worst, {co["assumptions"]["producer_sqs_requests_per_email"]:g} request per email. The message log keeps
items {co["assumptions"]["message_log_retention_days"]} days (`message_log_ttl_days`, cdk.json), with point-in-time
recovery {"on" if co["assumptions"].get("message_log_backups") else "off"} (`message_log_backups`, off by default: on, it adds
${co["paced"].get("message_log_backups_usd", 0):.2f} per million to the core; the suppression and preferences tables always have it).
Write units per email, item by item as written: the claim ({d.get("item_bytes_avg", {}).get("idempotency", "?")} bytes) and the
outcome's message log item ({d.get("message_log_item_bytes_avg", "?")} bytes on average, a sent one about 500: the request's
keys, status, keyed hashes, SES message id, template and its first history entry) are under 1 KB, one
unit each, so nothing is stored twice at a unit's cost; the registry's items are under 1 KB too. Left out: free tiers, data transfer, X-Ray (active tracing
samples 1 request a second plus 5%: a few cents per million), CloudWatch
alarms and the dashboard (fixed monthly), Secrets Manager (a read per cold
start and every 5 minutes), the mapping's empty polls (fixed per lane).

Unit prices, us-east-1, on-demand list prices as compiled on
{co["prices_as_of"]} (DynamoDB on-demand since the 2024-11-01 reduction; not fetched
by the benchmark, check them before relying on the totals); the same
constants are in `bench/cost.py`:

{_table(price_rows, ["key", "US$", "unit"])}

**What changed since the 9.5% of the previous report**: billed waiting is
gone (deferrals instead of sleeping), SES's Send events are not published,
delivery and engagement events and the per-user limits and the SES message id
index are features with their own lines, and the message log keeps its items
30 days instead of 90 (`message_log_ttl_days`; its storage and backups are
priced per day kept). Since the 3.39% of the previous run: the message log's
point-in-time recovery is a setting, off by default (`message_log_backups`;
the consent tables keep theirs), and the paced regime's producer batches its
backlog as mailwright's batching doors do, instead of one `SendMessage` per email.
{chaos_section}
{_failover_section(results.get("failover"), _outage_run())}
{_csv_section(results.get("csv"))}
{_api_section(results.get("api"))}
{_findings(results, chaos)}
## Reproduce

```
make bench    # bench/results.json, docs/benchmarks.md, docs/*.png
make chaos    # bench/chaos.json, bench/chaos_outage.json, then this page again
python -m bench.run --report-only   # rewrite this page from bench/results.json
```

{_durations(results, chaos)}
"""


def _durations(results: dict[str, Any], chaos: dict[str, Any] | None) -> str:
    """How long the last full runs took here (each has 10 minutes on 2 cores)."""
    lines = []
    if results.get("seconds") and not results.get("quick"):
        sections = ", ".join(f"{k} {v:g} s" for k, v in results.get("section_seconds", {}).items())
        lines.append(
            f"The last `make bench` took {results['seconds'] / 60:.1f} minutes here"
            + (f" ({sections})." if sections else ".")
        )
    outage = _outage_run()
    if chaos and chaos.get("seconds") and outage and outage.get("seconds"):
        lines.append(
            f"The last `make chaos` took {(chaos['seconds'] + outage['seconds']) / 60:.1f} minutes: the fault "
            f"scenario {chaos['seconds']:g} s, the SES outage {outage['seconds']:g} s."
        )
    return " ".join(lines)


def _findings(results: dict[str, Any], chaos: dict[str, Any] | None) -> str:
    """The targets missed and what would meet them, with the figures measured above."""
    t, ln, co, cs = results["throughput"], results["lanes"], results["cost"], results["cold_start"]
    what = t.get("what_if_at_50ms", {})
    lines = ["## Findings and proposed changes", ""]
    if t["ratio_at_50ms"] < 8:
        lines.append(
            f"* **Throughput {t['ratio_at_50ms']}x at 50 ms (target 8x).** `SendService.process` "
            "(`functions/mailwright/sending.py`) runs its I/O stages one after another for the whole batch, "
            "and the standard lane sends at most 10 at a time. Overlapping the consent lookups with the claims "
            f"measured {what.get('lookups with claims', {}).get('ratio', '?')}x; with batches of 25 and 25 sends "
            f"in flight (cdk.json `lanes.standard.batch_size`, `infra/config.py` `MAX_SEND_CONCURRENCY`) "
            f"{what.get('batch 25, 25 sends in flight', {}).get('ratio', '?')}x, and both "
            f"{what.get('batch 25, 25 in flight, lookups with claims', {}).get('ratio', '?')}x."
        )
    if ln["critical_p99_s"] > 1:
        lines.append(
            f"* **Critical p99 {ln['critical_p99_s']} s (target 1 s)** beside the bulk backlog: see section 4's "
            "what-ifs; critical mail reaches furthest into the shared bucket, so its wait is its own batching."
        )
    pacing = results["pacing"]
    billed = pacing.get("billed_seconds_per_email")
    if billed is not None and billed > 0.02:
        by_lane = ln["billed_seconds_per_email"]
        split = ln.get("billed_split", {})
        floors = split.get("floors_s_per_sent_email", {})
        crit = split.get("by_lane", {}).get("critical", {})
        sent_total = max(1, ln["critical_sent"] + ln["bulk_sent"])
        crit_floor = float(crit.get("io_s_per_sent", 0.0)) * ln["critical_sent"] / sent_total
        bulk = split.get("by_lane", {}).get("bulk", {})
        lines.append(
            f"* **Billed seconds per email {billed} (target 0.02): blocked at 512 MB by the traffic's shape, with "
            f"figures.** Critical {by_lane.get('critical')} s, bulk {by_lane.get('bulk')} s per sent email. A critical "
            "request arrives alone at 5/s and its lane has no batching window (a window of a second, Lambda's "
            "shortest, would break the 1 s p99), so each pays an invocation: "
            f"{crit.get('io_ms_per_sending_invocation', '?')} ms of I/O (SES's 50 ms; the token take, claim and "
            "consent reads in one 5 ms round trip; the outcome write 5 ms; the rest waiting for a token while bulk "
            "holds its share of the burst) and "
            f"{crit.get('cpu_ms_per_sending_invocation', '?')} ms of CPU at 512 MB. Bulk sends "
            f"{bulk.get('sent_per_sending_invocation', '?')} per invocation ({bulk.get('io_ms_per_sending_invocation', '?')} ms "
            f"of I/O, {bulk.get('cpu_ms_per_sending_invocation', '?')} ms of CPU) and spends "
            f"{bulk.get('deferring_s_per_sent', '?')} s per email in invocations that only park the backlog "
            f"({ln.get('bulk_deferrals_per_email', '?')} deferrals per email against a floor of "
            f"{ln.get('bulk_deferrals_floor_per_email', '?')}: a deferral per 15 minutes waited). The simulation's own "
            f"floors: {floors.get('without_cpu', '?')} s per email with no CPU at all, "
            f"{floors.get('without_deferring_invocations', '?')} s with parking free, "
            f"{floors.get('io_without_deferring', '?')} s with both"
            + (
                f": over 0.02 even then. Of that floor, the critical mail's I/O is {crit_floor:.4f} s per email of "
                f"the mix ({ln['critical_sent']:,} of {sent_total:,} emails, each alone in an invocation of at least "
                "60 ms: SES's 50 ms and two 5 ms round trips) and the bulk sends' I/O the rest. "
                if isinstance(floors.get("io_without_deferring"), (int, float))
                and floors["io_without_deferring"] > 0.02
                else ". "
            )
            + "What would meet it: counting the paced lane alone (bulk, "
            f"{by_lane.get('bulk')} s), a batching window on the critical lane (it trades the p99), or more memory "
            "(less CPU time per batch at a higher price per second). The seconds matter through the dollars: the "
            f"worker's Lambda line is ${co['paced']['rows'].get('Lambda (send worker)', 0):.2f} per million emails "
            f"paced ({co['paced']['overhead_pct']}% for the whole core)."
        )
    if co["paced"]["overhead_pct"] > 3 or co["unpaced"]["overhead_pct"] > 3:
        rows = co["paced"]["rows"]
        largest = sorted(((v, k) for k, v in rows.items() if k != "SES"), reverse=True)[:3]
        lines.append(
            f"* **The core costs {co['paced']['overhead_pct']}% of SES paced, {co['unpaced']['overhead_pct']}% unpaced "
            "(target 3% each).** Largest paced: "
            + ", ".join(f"{k} ${v:.2f}" for v, k in largest)
            + ". Pacing adds SQS requests and invocations to park and return a backlog longer than 15 minutes "
            "(each parking costs a receive, a delete and a tenth of a `SendMessageBatch` per record), and the "
            "critical lane's one-email invocations. What would meet it: a shorter `message_log_ttl_days`, or pausing "
            "the bulk lane's event source while its schedule is booked past 15 minutes instead of parking the "
            "backlog again (the reputation breaker's switch could do it; not built)."
        )
    else:
        rows = co["paced"]["rows"]
        largest = sorted(((v, k) for k, v in rows.items() if k != "SES"), reverse=True)[:3]
        lines.append(
            f"* **The core costs {co['paced']['overhead_pct']}% of SES paced, {co['unpaced']['overhead_pct']}% unpaced "
            f"(target 3% each): met{', narrowly when paced' if co['paced']['overhead_pct'] > 2.9 else ''}.** "
            "Largest paced: "
            + ", ".join(f"{k} ${v:.2f}" for v, k in largest)
            + ". It got there by the message log's point-in-time recovery becoming a setting, off by default "
            f"(`message_log_backups`, ${co['paced'].get('message_log_backups_usd', 0):.2f} per million when on) and by "
            "the producer's requests counted as the batching doors make them (the backlog ten per "
            "`SendMessageBatch`). Every core item is already one write unit (claim and outcome under 1 KB), so the "
            "rest of the margin would come from fewer parkings of the backlog: pausing the bulk lane's event source "
            "while its schedule is booked past 15 minutes (not built), or a shorter `message_log_ttl_days`."
        )
    adaptive = pacing.get("adaptive")
    if adaptive:
        phases = ", ".join(f"{x['rate']:g}/s: {x['achieved_ratio']}" for x in adaptive.get("phases", []))
        lines.append(
            f"* **A rate change while a backlog is parked** ({phases}): a lower rate is followed within seconds "
            "(the first throttles cut the rate and make a worker read SES again), a higher one at once for new "
            "mail but for parked mail only as its booked slots come due: they were booked at the rate of the "
            "moment (SQS cannot deliver a delayed message sooner), so a backlog parked at 14/s returns at 14/s "
            "for up to 15 minutes after the account allows 28/s. Booking above the current rate would follow an "
            "increase sooner, at the price of more deferrals."
        )
    if cs["init_ms"] > 500:
        lines.append(
            f"* **Cold start {cs['init_ms']} ms (target 500 ms)** as measured here ({_cold_start_method(cs)}), "
            f"wall clock, of which {cs.get('bytecode_shipped', {}).get('cpu_ms', '?')} ms of CPU, with the load "
            f"average at {cs.get('load_average_at_start', results['machine'].get('load_average_at_start'))} on 2 "
            "cores: most of the wall time is "
            "waiting for a core, and a quiet machine measures far less. "
            f"The largest imports: "
            + ", ".join(f"{x['package']} {x['ms']} ms" for x in cs["import_breakdown"][:4])
            + ". Tracing is now off by default (no X-Ray SDK) and the clients are built without listing every "
            "botocore service; what is left is what the first batch uses (section 5): pydantic and the request "
            "and template models it validates, botocore and its four clients, jinja2, and the dataclasses of "
            "ports and settings. Deferring any of them would move its cost into the first batch; meeting 500 ms "
            "needs a smaller first-batch path (botocore models trimmed to the operations called, fewer "
            "dataclasses at import, or the request checked without pydantic), not lazier imports."
        )
    cpu = results["cpu"]
    lines.append(
        f"* **The worker is partly CPU-bound on Lambda at 512 MB**: {cpu['us_per_email']} us of CPU per email "
        "here, mostly botocore, is about 3.5 times as long at 512/1769 of a vCPU, comparable to the SES latency "
        "for a batch of ten. Section 1's ratios (fakes, full cores) are upper bounds; `memory_mb` 1024 halves "
        "the CPU time per batch at twice the price per second (worth it only where pacing does not dominate)."
    )
    if chaos is not None:
        crashes = chaos.get("faults", {}).get("crash_after_accept", 0)
        if crashes:
            lines.append(
                f"* **The crash window**: {chaos['crash_window_duplicates']} duplicates from {crashes} crashes after "
                "SES accepted a send (193 when outcomes were written once per batch). Each sent outcome is now "
                "written as soon as SES accepts it (`SendService._record_sent`; the same write units), so a crash "
                "re-sends only the emails in flight at that moment."
            )
    if chaos is not None and chaos.get("accepted_but_recorded_as"):
        lines.append(
            "* **After a crash the message log can say `rate_limited` for an email SES accepted** "
            f"({', '.join(f'{k} {v}' for k, v in chaos['accepted_but_recorded_as'].items())} in `make chaos`): the "
            "crashed attempt already counted the email against the user's limit, and the retry that takes the "
            "expired claim over counts it again and may be refused (`SendService._limit_rates`, "
            "`DynamoRateLimiter.acquire`). Making the counter idempotent per request (the same `UpdateItem`, "
            "adding the request id to a set in the counter item under `NOT contains(...)`) fixes it without "
            "another request."
        )
    lines.append(
        "* **A failed outcome write after SES accepted** (`SendService._finish`, DynamoDB throttling beyond "
        "botocore's retries) leaves the claims in place and retries the records; after the lease the next "
        "delivery takes over and sends again. It is the crash window reached without a crash; `make chaos` "
        "counts such duplicates separately (`outcome_write_failed`)."
    )
    return "\n".join(lines) + "\n"


def _outcome_events_text(cost: dict[str, Any]) -> str:
    """Section 6's lines on outcome events: what each detail-type costs per million emails if published."""
    events = cost.get("outcome_events")
    if not events:
        return ""
    rows = [
        [
            name,
            f"{v['entries_per_email']:g}",
            f"{v['usd_per_million_emails']:.3f}",
            "measured mix" if v["measured"] else "assumed",
            "yes" if name in events["default_set"] else "",
        ]
        for name, v in events["per_type"].items()
    ]
    table = _table(rows, ["detail-type", "events per email", "US$ per million emails", "rate", "default"])
    return f"""
**Outcome events** (`outcome_events`): PutEvents costs $1 per million entries,
so a detail-type published once per email costs 1% of SES. The default set
(what went wrong) costs **${events["default_set_usd_per_million_emails"]:.3f}** per million emails; every type,
${events["all_usd_per_million_emails"]:.2f}. The events publisher reads the message log's stream
({events["message_log_changes_per_email"]} changes per email; stream reads by Lambda are free):
${events["publisher_usd_per_million_emails"]:.3f} per million emails (estimated). Webhooks add, per delivery,
an SQS message, a tenth of a receive and a delete, and the sender's share of an invocation.

{table}
"""


def _cold_start_method(cs: dict[str, Any]) -> str:
    if cs.get("method") == "cpython-3.12-isolated-asset":
        return (
            f"As deployed: CPython {cs['python']} (the Lambda runtime's version) started isolated (`-I -S`), its "
            "path the asset and the AWS SDK alone as on Lambda: the asset as the bundler builds it, with this "
            "machine's wheels (native code must run here) and compiled as the bundler compiles it, boto3 at the "
            "pinned version and precompiled as the runtime's is, Lambda's variables set (the X-Ray SDK, when "
            "tracing is on, sampling locally) and the deployed environment (`infra.functions.runtime_environment`: "
            f"tracing {'on' if cs.get('tracing') else 'off'}, cdk.json's setting)."
        )
    return (
        f"No CPython 3.12 on this machine: Python {cs['python']} and this checkout's virtualenv (many more "
        "packages than the asset), with and without the asset's modules' bytecode."
    )


def _traced_row(cs: dict[str, Any]) -> str:
    traced = cs.get("bytecode_shipped_tracing_on")
    if not traced:
        return ""
    cells = [traced["import_ms"], traced["build_ms"], traced["init_ms"], traced.get("cpu_ms", "-")]
    return (
        "| the same with `tracing: true` (X-Ray SDK loaded, botocore patched) | "
        + " | ".join(f"{cell} ms" for cell in cells)
        + " |\n"
    )


def _cdk_out_note(cs: dict[str, Any]) -> str:
    synth = cs["asset"].get("cdk_out")
    if not synth:
        return ""
    return f" The asset a previous `make synth` left in `{synth['path']}` holds {synth['unzipped_bytes']:,} bytes."


def _csv_section(csv: dict[str, Any] | None) -> str:
    """Bulk sends from a CSV file (`bench/csv_publish.py`), when this run measured them."""
    if not csv:
        return ""
    met = csv["rows_per_second"] >= 1000
    return f"""
## Bulk sends from a CSV file

**Method** (`bench/csv_publish.py`). A CSV file of {csv["rows"]:,} welcome
emails is checked (schema and templates) and published through the SDK, as
`mailwright send --csv` does, to {csv["target"]}: every row a
SendMessageBatch entry answered by the real moto server
(`mailwright_tools/local/moto_speedups.py` keeps its SendMessage from
scanning the whole queue for every message).

| rows | checked | published | overall | publishing alone | queued after | target |
|---|---|---|---|---|---|---|
| {csv["rows"]:,} | {csv["check_seconds"]} s | {csv["publish_seconds"]} s | {csv["rows_per_second"]:,} rows/s | \
{csv["publish_rows_per_second"]:,} rows/s | {csv["queued"]:,} | >= 1,000 rows/s {_mark(met)} |

CPU used: the CLI's side {csv.get("client_cpu_seconds")} s, the local stack's
{csv.get("server_cpu_seconds")} s (load average {csv.get("load_average_at_start")} at the start);
with a core for each, the busier of the two would allow
{csv.get("rows_per_second_one_core_each")} rows/s.
"""


def _chaos_section(chaos: dict[str, Any] | None) -> str:
    if chaos is None:
        return "\n## Fault injection\n\nNo `bench/chaos.json` yet: run `make chaos`.\n"
    keys = (
        "published",
        "published_messages",
        "duplicate_deliveries_published",
        "poison",
        "lost",
        "in_dlq",
        "sent_to_suppressed",
        "sent_to_opted_out",
        "ses_accepts",
        "duplicate_sends",
        "crash_window_duplicates",
        "unexplained_duplicates",
        "poison_without_reason",
        "invariants_hold",
        "seconds",
    )
    rows = [[k, chaos[k]] for k in keys if k in chaos]
    rows.append(["outcomes", ", ".join(f"{k} {v}" for k, v in chaos.get("outcomes", {}).items())])
    misrecorded = chaos.get("accepted_but_recorded_as", {})
    rows.append(
        [
            "accepted by SES, recorded as not sent",
            ", ".join(f"{k} {v}" for k, v in misrecorded.items()) or "none",
        ]
    )
    causes = chaos.get("crash_window_duplicates_by_cause", {})
    rows.append(["crash-window duplicates by cause", ", ".join(f"{k} {v}" for k, v in causes.items())])
    fault_rows = [[k, v] for k, v in chaos.get("faults", {}).items()]
    st = chaos.get("settings", {})
    return f"""
## Fault injection (`make chaos`)

`bench/chaos.py`: {chaos["published"]:,} requests through every lane's worker
(`send_worker.handle_batch` on a service from `build_send_service`, real
adapters) over moto in-process, each lane's event source mapping emulated by
the local stack's `EventSourceEmulator` (batches, batching windows, maximum
concurrency, visibility timeouts, receive counts, redrive to the DLQ, partial
batch responses). Faults are injected at the botocore edge of each emulated
container's session: SES throttling on {st.get("ses_throttle_rate", 0):.0%} of `SendEmail` calls and
bursts of {st.get("ses_5xx_burst")} `InternalFailure` answers every {st.get("ses_5xx_every")} calls (both
before the call, so botocore's own retry does not hide them); DynamoDB
throttling episodes ({st.get("ddb_throttle_seconds")} s every {st.get("ddb_throttle_every_seconds")} s, at the HTTP layer, so botocore
retries them as in AWS); a crash of the container after SES accepted a send
({st.get("crash_rate", 0):.1%} of accepted sends: no response, its other calls fail, the batch returns after
the visibility timeout, the next batch gets a cold container);
{st.get("duplicate_rate", 0):.0%} of requests published twice; {st.get("poison_rate", 0):.0%} poison bodies (not JSON, nested
too deeply, wrong shape, bad address, unknown template, missing variable,
misspelt field, a line break for the subject header).
To keep the run short: function timeout {st.get("timeout_seconds")} s (claims' leases are the
timeout plus 10 s), queue visibility timeout {st.get("visibility_seconds")} s, backoff capped at
{st.get("max_backoff_seconds")} s, pacing at {st.get("send_rate_per_worker")}/s per worker (pacing is section 3).

Invariants: every request in a terminal state or a DLQ; no send to a
suppressed or opted-out recipient; every duplicate send is explained by an
earlier send SES accepted that was never recorded (the container crashed, or
its outcome write failed) and is counted; every poison message recorded as
rejected with a reason.

{_table(rows, ["", "value"])}

Faults injected:

{_table(fault_rows, ["fault", "count"])}
"""


def _outage_run() -> dict[str, Any] | None:
    """`make chaos`'s SES-outage run, when there is one."""
    return json.loads(OUTAGE.read_text(encoding="utf-8")) if OUTAGE.is_file() else None


def _breaker_rows(breakers: dict[str, Any]) -> list[list[Any]]:
    return [
        [lane, times.get("first_failure_to_open_s"), times.get("return_to_closed_s"), times.get("changes")]
        for lane, times in breakers.items()
    ]


def _api_section(api: dict[str, Any] | None) -> str:
    """The producers' API under load on loopback (bench/api.py): latency percentiles and lost requests."""
    head = "\n## Producers' API latency (issue 15)\n\n"
    if api is None:
        return head + "No API measurement in bench/results.json yet: run `make bench` (or `python -m bench.api`).\n"
    rows = [
        ["requests (threads)", f"{api['answered']} ({api['threads']})"],
        ["requests per second", api["requests_per_second"]],
        ["p50 / p95 / p99 / max (ms)", f"{api['p50_ms']} / {api['p95_ms']} / {api['p99_ms']} / {api['max_ms']}"],
        [f"p99 under {api['target_p99_ms']:g} ms", _mark(api["p99_ms"] < api["target_p99_ms"])],
        ["accepted, lost, duplicated", f"{api['accepted']}, {api['lost']}, {api['duplicated']}"],
    ]
    return (
        head + "Single-request POST /v1/messages with an x-api-key against the local producers' API on loopback "
        "(usage-plan gate, producer lookup, template priority, SendMessageBatch to moto's lane queues, drained "
        "as the workers would). Most of each request's time is moto emulating SQS in the same process.\n\n"
        + _table(rows, ["measure", "value"])
        + "\n"
    )


def _latency_rows(latency: dict[str, Any]) -> list[list[Any]]:
    return [[lane, v["count"], v["p50"], v["p99"]] for lane, v in latency.items()]


def _failover_section(failover: dict[str, Any] | None, outage: dict[str, Any] | None) -> str:
    """Failover to a secondary provider: the breaker's times (`make bench`) and the SES-outage run (`make chaos`)."""
    parts = ["\n## Failover to a secondary provider (issue 13)\n\n"]
    if failover is None:
        parts.append("No failover measurement in bench/results.json yet: run `make bench`.\n")
    else:
        st = failover["settings"]
        parts.append(
            f"""`bench/outage.py`, in real time: {st["requests"]:,} requests over {st["publish_seconds"]:.0f} s through
every lane's worker (moto in-process, each lane's event source emulated), an SMTP relay (aiosmtpd) on
loopback as the secondary; SES answers every call with HTTP 503 for {st["outage_seconds"]:.0f} s from
{st["outage_at"]:.0f} s on (the local stack's own switch, `mailwright local ses down`). The breaker is
cdk.json's: open after {st["failure_threshold"]} failures within {st["window_seconds"]} s, probe after
{st["cooldown_seconds"]} s. Opening takes as long as those failures take to arrive (each failing call
includes botocore's retry); closing takes what is left of the cooldown when SES returns (a probe during the
outage opens it for another cooldown), plus the wait for the next email to probe with.

{_table(_breaker_rows(failover["breakers"]), ["lane", "first SES failure to open (s)", "SES back to closed (s)", "changes"])}

Publish-to-send during the outage (s), by lane (critical and standard through the relay, bulk waits for SES):

{_table(_latency_rows(failover["latency_during_outage_s"]), ["lane", "requests", "p50", "p99"])}

Lost: {failover["lost"]}; sent by both providers: {failover["sent_by_both"]}; bulk drained
{failover["bulk_drained_s_after_ses_returned"]} s after SES returned; invariants hold: {failover["invariants_hold"]}.
"""
        )
    if outage is not None:
        st = outage["settings"]
        rows = [
            [
                key,
                ", ".join(f"{k} {v}" for k, v in outage[key].items()) if isinstance(outage[key], dict) else outage[key],
            ]
            for key in (
                "published",
                "lost",
                "in_dlq",
                "sent_by_relay_during_outage",
                "bulk_sent_by_relay",
                "bulk_published_during_outage",
                "bulk_published_during_outage_sent_by_ses_after",
                "bulk_drained_s_after_ses_returned",
                "lost_answers_injected",
                "sent_by_both",
                "sent_by_both_outside_crash_window",
                "duplicate_sends",
                "crash_window_duplicates",
                "invariants_hold",
                "seconds",
            )
        ]
        parts.append(
            f"""
### The SES-outage scenario (`make chaos`)

{outage["published"]:,} requests over {st["publish_seconds"]:.0f} s; at {st["outage_at"]:.0f} s SES first loses
the answers of {st["lost_answers"]} calls it accepted (the crash window of a switch), then fails every call
for {st["outage_seconds"]:.0f} s. Invariants: nothing lost, critical and standard sent through the relay
during the outage, bulk never sent by the relay and drained by SES after, no request sent by both providers
outside the crash window (bench/chaos_outage.json).

{_table(rows, ["", "value"])}

Publish-to-send during the outage (s):

{_table(_latency_rows(outage["latency_during_outage_s"]), ["lane", "requests", "p50", "p99"])}

Breakers:

{_table(_breaker_rows(outage["breakers"]), ["lane", "first SES failure to open (s)", "SES back to closed (s)", "changes"])}
"""
        )
    return "".join(parts)


def write(results: dict[str, Any]) -> list[Path]:
    """Write the plots and the report; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    DOCS.mkdir(exist_ok=True)
    written = []
    plots = (("throughput", _plot_throughput), ("pacing", _plot_pacing), ("lanes", _plot_lanes), ("cost", _plot_cost))
    for name, plot in plots:
        path = DOCS / f"{name}.png"
        plot(results, path)
        written.append(path)
    chaos = json.loads(CHAOS.read_text(encoding="utf-8")) if CHAOS.is_file() else None
    page = DOCS / "benchmarks.md"
    page.write_text(markdown(results, chaos), encoding="utf-8")
    written.append(page)
    return written
