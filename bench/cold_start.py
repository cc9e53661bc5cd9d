"""Cold start: import and initialisation of the send worker in fresh processes, and the size of its asset.

Each run is a new interpreter that does what Lambda's Init phase does: it
imports `mailwright.handlers.send_worker` and builds the container's service
(`send_worker.service()`, which the handler module calls at import in the
Lambda runtime) from a lane's environment, with dummy names and credentials
(building the clients makes no network call). "init" is that import plus that
build, wall clock, up to the service ready for its first batch: its settings
parsed and checked, the SES, DynamoDB, S3 and Secrets Manager clients built
(their service models loaded); the queue's client, which only retries and
deferrals use, is built on its first use. CPU time is reported too (the
machine is shared) with the load average.

As deployed: CPython 3.12 (the Lambda runtime's version; this machine's
when it has one), started isolated (`-I -S`: no site-packages, no PYTHON*
variables), whose path holds the asset and the AWS SDK alone, as Lambda's
does. The asset is what `infra.bundling.WorkerCodeBundler` builds, with
this machine's wheels instead of arm64 ones (native code must run here):
functions/requirements.txt and the package, compiled as the bundler
compiles them; the SDK is boto3 at the pinned version, precompiled as the
runtime's is. The function's environment is the deployed one (the lane's
variables and `infra.functions.runtime_environment`: with cdk.json's settings, tracing off, so
POWERTOOLS_TRACE_DISABLED is set and no X-Ray SDK is loaded). Two cases: the asset
with its bytecode (what synth ships with a CPython 3.12 at hand) and without
(what it ships otherwise: every cold start compiles the modules it imports,
`/var/task` being read-only). A third, with bytecode and X-Ray tracing on (the
`tracing` setting), shows what tracing costs. Without a CPython 3.12 the same two cases run
on this interpreter and this checkout's virtualenv (less faithful: many more
packages are installed there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO, config, lane_environment, median

PROBE = """
import json, time
t0, c0 = time.perf_counter(), time.process_time()
import mailwright.handlers.send_worker
t1, c1 = time.perf_counter(), time.process_time()
mailwright.handlers.send_worker.service()  # what the module's import runs in Lambda's Init phase
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "build_ms": (t2 - t1) * 1000, "cpu_ms": (c2 - c0) * 1000}))
"""


def _environment() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in ("PYTHONPYCACHEPREFIX",)
    }
    env.update(
        lane_environment(
            "standard", queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/mailwright-standard", prefix="cold"
        )
    )
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "cold-start",
            "AWS_SECRET_ACCESS_KEY": "cold-start",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "PYTHONPATH": f"{REPO / 'functions'}",
            "POWERTOOLS_SERVICE_NAME": "mailwright",
        }
    )
    return env


def _probe(env: dict[str, str], *extra: str) -> dict[str, float]:
    result = subprocess.run(  # noqa: S603
        [sys.executable, *extra, "-c", PROBE], env=env, capture_output=True, text=True, check=True, cwd=REPO
    )
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


# Packages the asset ships (compiled on every Lambda cold start); used when the asset cannot be built here.
ASSET_PACKAGES = (
    "mailwright",
    "aws_lambda_powertools",
    "pydantic",
    "pydantic_core",
    "jinja2",
    "markupsafe",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
    "wrapt",
    "aws_xray_sdk",
)


def _lambda_like_cache(env: dict[str, str], shipped: set[str], into: Path) -> None:
    """A bytecode cache holding what Lambda has compiled already (the standard library and the runtime's
    boto3 and botocore) and nothing the asset ships, which Lambda compiles at every cold start.
    """
    _probe(env, "-X", f"pycache_prefix={into}")
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for cached in [into / str(REPO / "functions").lstrip("/"), *(into / str(site).lstrip("/") / n for n in shipped)]:
        shutil.rmtree(cached, ignore_errors=True)
    for leftover in (into / str(site).lstrip("/")).glob("*.py*"):
        if leftover.name.split(".")[0] in shipped:
            leftover.unlink()


def init_times(runs: int = 10, shipped: set[str] | None = None) -> dict[str, Any]:
    """Median import and build times over `runs` fresh processes: with every module's bytecode cached,
    and as on Lambda today (the asset's modules compiled at each cold start).
    """
    env = _environment()
    _probe(env)  # fill this checkout's bytecode cache first
    warm = [_probe(env) for _ in range(runs)]
    cold = []
    with tempfile.TemporaryDirectory() as base:
        _lambda_like_cache(env, shipped or set(ASSET_PACKAGES), Path(base))
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as fresh:
                shutil.copytree(base, fresh, dirs_exist_ok=True)
                cold.append(_probe(env, "-X", f"pycache_prefix={fresh}"))

    def summary(samples: list[dict[str, float]]) -> dict[str, float]:
        return {
            "import_ms": round(median(s["import_ms"] for s in samples), 1),
            "build_ms": round(median(s["build_ms"] for s in samples), 1),
            "init_ms": round(median(s["import_ms"] + s["build_ms"] for s in samples), 1),
            "cpu_ms": round(median(s["cpu_ms"] for s in samples), 1),
        }

    return {"runs": runs, "bytecode_cached": summary(warm), "asset_compiled_at_start": summary(cold)}


def import_breakdown(top: int = 10, *, python: str | None = None) -> list[dict[str, Any]]:
    """Import time by top-level package (`python -X importtime`, each module's own time summed per package).

    With `python` (a CPython 3.12): that interpreter, isolated, on the asset and the SDK alone, as Lambda runs
    it (tracing as cdk.json sets it). Without: this interpreter and its virtualenv, whose many packages some
    imports scan (the X-Ray SDK's looks them up), so its figures overstate those imports.
    """
    env = _environment()
    command = [sys.executable, "-X", "importtime", "-c", "import mailwright.handlers.send_worker"]
    if python is not None:
        asset, _, sdk = emulated_asset(python)
        env = {**env, **_deployed_variables(), **_lambda_variables(asset)}
        env.pop("PYTHONPATH", None)
        probe = "import sys; sys.path[:0] = sys.argv[1:3]; del sys.argv[1:3]\nimport mailwright.handlers.send_worker"
        command = [python, "-I", "-S", "-B", "-X", "importtime", "-c", probe, str(asset), str(sdk)]
        subprocess.run(command, env=env, capture_output=True, check=True, cwd=REPO)  # noqa: S603 (page cache warm)
    result = subprocess.run(  # noqa: S603
        command,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    line = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")
    packages: dict[str, int] = {}
    for match in line.finditer(result.stderr):
        root = match.group(3).split(".")[0]
        packages[root] = packages.get(root, 0) + int(match.group(1))
    ordered = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "ms": round(us / 1000, 1)} for name, us in ordered]


def _dir_bytes(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _zip_bytes(path: Path) -> int:
    with tempfile.TemporaryDirectory() as out:
        target = Path(out) / "asset.zip"
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                archive.write(file, file.relative_to(path))
        return target.stat().st_size


def _synthesized_worker_asset() -> Path | None:
    """The send worker's asset directory in cdk.out, if a synth left one."""
    template = REPO / "cdk.out" / "Mailwright.template.json"
    if not template.is_file():
        return None
    resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Lambda::Function" and str(props.get("Handler", "")).endswith(
            "send_worker.handler"
        ):
            key = str(props.get("Code", {}).get("S3Key", ""))
            candidate = REPO / "cdk.out" / f"asset.{key.removesuffix('.zip')}"
            return candidate if candidate.is_dir() else None
    return None


def asset_size() -> dict[str, Any]:
    """Unzipped and zipped bytes of the worker's Lambda asset, built as `cdk synth` builds it."""
    from infra.bundling import WorkerCodeBundler  # imports the CDK (starts jsii): only here

    with tempfile.TemporaryDirectory() as out:
        WorkerCodeBundler().try_bundle(out, image=None)  # type: ignore[arg-type]
        unzipped, files = _dir_bytes(Path(out))
        zipped = _zip_bytes(Path(out))
        packages = sorted(p.name.split("-")[0] for p in Path(out).iterdir() if p.is_dir() and "." not in p.name)
        biggest = sorted(
            ((p.name, _dir_bytes(p)[0]) for p in Path(out).iterdir() if p.is_dir()), key=lambda kv: -kv[1]
        )[:6]
    result: dict[str, Any] = {
        "source": "infra.bundling.WorkerCodeBundler (what `cdk synth` runs), built now",
        "unzipped_bytes": unzipped,
        "zipped_bytes": zipped,
        "files": files,
        "largest_packages": [{"package": name, "bytes": size} for name, size in biggest],
        "packages": packages,
    }
    synthesized = _synthesized_worker_asset()
    if synthesized is not None:
        synth_unzipped, _ = _dir_bytes(synthesized)
        result["cdk_out"] = {"path": str(synthesized.relative_to(REPO)), "unzipped_bytes": synth_unzipped}
    return result


# -- as deployed: CPython 3.12, the asset and the SDK alone -------------------------------------

CACHE = REPO / ".cache" / "cold-start"
# Like the Lambda runtime's start: no site-packages, no PYTHON* variables; the asset, then the SDK.
ISOLATED_PROBE = "import sys; sys.path[:0] = sys.argv[1:3]; del sys.argv[1:3]\n" + PROBE


def _pip_target(python: str, target: Path, *requirements: str) -> None:
    """`pip install --target` for `python`'s version and this machine's platform (wheels only)."""
    version = subprocess.run(  # noqa: S603
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--only-binary=:all:", "--python-version", version, "--target", str(target), *requirements,
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603


def emulated_asset(python: str) -> tuple[Path, Path, Path]:
    """The asset (with its bytecode, and a copy without) and the AWS SDK, built for `python` on this machine."""
    import hashlib

    from infra.bundling import _prune_for_lambda, compile_bytecode

    requirements = REPO / "functions" / "requirements.txt"
    sources = sorted((REPO / "functions" / "mailwright").rglob("*.py"))
    boto3 = next(
        line.strip()
        for line in (REPO / "requirements-local.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith("boto3==")
    )
    digest = hashlib.sha256(f"{python}\0{boto3}\0".encode() + requirements.read_bytes())
    for source in sources:
        digest.update(source.read_bytes())
    root = CACHE / digest.hexdigest()[:16]
    asset, bare, sdk = root / "asset", root / "asset-without-bytecode", root / "aws-sdk"
    if (root / "complete").is_file():
        return asset, bare, sdk
    shutil.rmtree(root, ignore_errors=True)
    _pip_target(python, bare, "-r", str(requirements))
    _prune_for_lambda(bare)
    shutil.copytree(
        REPO / "functions" / "mailwright", bare / "mailwright", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    shutil.copytree(bare, asset)
    compile_bytecode(asset, python)
    _pip_target(python, sdk, boto3)
    compile_bytecode_tree(python, sdk)
    (root / "complete").touch()
    return asset, bare, sdk


def compile_bytecode_tree(python: str, tree: Path) -> None:
    """Compile a directory as the Lambda runtime's own packages are (its boto3 ships its bytecode)."""
    subprocess.run(  # noqa: S603
        [python, "-m", "compileall", "-q", "-j", "0", str(tree)], capture_output=True, text=True, check=False
    )


def _deployed_variables(*, tracing: bool | None = None) -> dict[str, str]:
    """What the stack sets on every function, tracing as cdk.json's settings have it unless `tracing` says."""
    from infra.functions import runtime_environment

    return runtime_environment(tracing=config().tracing if tracing is None else tracing)


def _lambda_variables(code: Path) -> dict[str, str]:
    """What Lambda sets: the tracer (when tracing is on) is on, and the X-Ray SDK samples locally as in Lambda."""
    return {
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_LAMBDA_FUNCTION_NAME": "mailwright-cold-start",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    }


def deployed_init_times(python: str, runs: int = 10) -> dict[str, Any]:
    """Median import and build times over `runs` isolated CPython 3.12 processes: with and without bytecode,
    and with bytecode and tracing on.
    """
    asset, bare, sdk = emulated_asset(python)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    deployed = {**_environment(), **_deployed_variables()}
    deployed.pop("PYTHONPATH", None)
    untraced = _deployed_variables(tracing=False).keys() - _deployed_variables(tracing=True).keys()
    traced = {key: value for key, value in deployed.items() if key not in untraced} | _deployed_variables(tracing=True)

    def probe(code: Path, env: dict[str, str] = deployed) -> dict[str, float]:
        env.update(_lambda_variables(code))
        # -B: nothing is written back (Lambda's /var/task is read-only), so a module without
        # bytecode is compiled at every start.
        result = subprocess.run(  # noqa: S603
            [python, "-I", "-S", "-B", "-c", ISOLATED_PROBE, str(code), str(sdk)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
        return data

    probe(asset)  # the page cache warm, as a Lambda host's is for the runtime
    shipped = [probe(asset) for _ in range(runs)]
    # The two other cases are for comparison: half as many runs keep `make bench` within its 10 minutes.
    compiled_at_start = [probe(bare) for _ in range(max(3, runs // 2))]
    with_tracing = [probe(asset, traced) for _ in range(max(3, runs // 2))]
    version = subprocess.run(  # noqa: S603
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        "runs": runs,
        "comparison_runs": len(compiled_at_start),
        "python": version,
        "load_average_at_start": load_at_start,
        "bytecode_shipped": _summary(shipped),
        "asset_compiled_at_start": _summary(compiled_at_start),
        "tracing": config().tracing,
        "bytecode_shipped_tracing_on": _summary(with_tracing),
    }


def _summary(samples: list[dict[str, float]]) -> dict[str, float]:
    return {
        "import_ms": round(median(s["import_ms"] for s in samples), 1),
        "build_ms": round(median(s["build_ms"] for s in samples), 1),
        "init_ms": round(median(s["import_ms"] + s["build_ms"] for s in samples), 1),
        "cpu_ms": round(median(s["cpu_ms"] for s in samples), 1),
    }


def measure(progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Asset size, init times and import breakdown."""
    try:
        asset: dict[str, Any] = asset_size()
        size = f"{asset['unzipped_bytes'] / 1e6:.1f} MB unzipped, {asset['zipped_bytes'] / 1e6:.1f} MB zipped"
        progress(f"  asset: {size}")
    except Exception as exc:  # e.g. no network to install the arm64 wheels on a fresh machine
        asset = {"error": f"{type(exc).__name__}: {exc}"}
        progress(f"  asset: could not be built: {asset['error']}")
    from infra.bundling import lambda_python

    python = lambda_python()
    if python is not None:
        deployed = deployed_init_times(python)
        progress(
            f"  cold start (CPython {deployed['python']}, the asset alone): "
            f"{deployed['bytecode_shipped']['init_ms']} ms with its bytecode, "
            f"{deployed['asset_compiled_at_start']['init_ms']} ms compiling it at start"
        )
        return {
            **deployed,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "method": "cpython-3.12-isolated-asset",
            "init_ms": deployed["bytecode_shipped"]["init_ms"],
            "import_breakdown": import_breakdown(python=python),
            "asset": asset,
        }
    shipped = set(asset.get("packages", ASSET_PACKAGES))
    times = init_times(shipped=shipped)
    progress(
        f"  cold start (no CPython 3.12 here: this interpreter's virtualenv): {times['bytecode_cached']['init_ms']} ms "
        f"with bytecode, {times['asset_compiled_at_start']['init_ms']} ms compiling the asset's modules at start"
    )
    return {
        "runs": times["runs"],
        "python": sys.version.split()[0],
        "bytecode_shipped": times["bytecode_cached"],
        "asset_compiled_at_start": times["asset_compiled_at_start"],
        "method": "this-interpreter-virtualenv",
        # The asset ships no bytecode without a CPython 3.12 at synth: each cold start compiles it.
        "init_ms": times["asset_compiled_at_start"]["init_ms"],
        "import_breakdown": import_breakdown(),
        "asset": asset,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
