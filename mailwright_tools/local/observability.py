"""Keep the in-process workers' Powertools output out of the terminal: JSON logs and EMF metrics go to files.

In Lambda, each container prints its JSON log lines and, at the end of each
invocation (`@metrics.log_metrics`), one EMF blob to stdout, which CloudWatch
collects. Locally that would flood the terminal, so:

* the handlers' Powertools logger (the `mailwright` logger, which the
  domain's `mailwright.*` loggers propagate to) keeps its JSON formatter but
  writes to `logs/workers.log`;
* a handler module's `metrics` is replaced, while the stack runs, by
  `ContainerMetrics`: each emulated container (a poller thread) gets its own
  EMF metric set, flushed as one line to `logs/metrics.log` after every
  invocation, as `log_metrics` would. (Powertools' `Metrics` instances share
  one class-level metric set, which concurrent containers in one process
  would garble, and it prints every 100th value to stdout even when
  POWERTOOLS_METRICS_DISABLED is set.)
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

RUNTIME_LOGGER = "mailwright"


class ContainerMetrics:
    """Stands in for a handler module's Powertools `metrics`: one EMF metric set per thread, flushed to a file."""

    def __init__(self, *, namespace: str, service: str, sink: IO[str]) -> None:
        self._namespace = namespace
        self._service = service
        self._sink = sink
        self._local = threading.local()
        self._write_lock = threading.Lock()

    def _provider(self) -> AmazonCloudWatchEMFProvider:
        provider: AmazonCloudWatchEMFProvider | None = getattr(self._local, "provider", None)
        if provider is None:
            provider = AmazonCloudWatchEMFProvider(
                namespace=self._namespace,
                service=self._service,
                metric_set={},
                dimension_set={},
                metadata_set={},
                default_dimensions={},
            )
            self._local.provider = provider
        return provider

    def add_metric(self, name: str, unit: Any, value: float, resolution: Any = 60) -> None:
        """Add a value to this container's metric set."""
        self._provider().add_metric(name=name, unit=unit, value=value, resolution=resolution)

    def add_dimension(self, name: str, value: str) -> None:
        """Set a dimension of this container's metric set."""
        self._provider().add_dimension(name=name, value=value)

    def add_metadata(self, key: str, value: Any) -> None:
        """Add metadata to this container's metric set."""
        self._provider().add_metadata(key=key, value=value)

    def write_document(self, line: str) -> None:
        """Write one EMF document made elsewhere (the failover metrics, one per breaker change or state)."""
        with self._write_lock:
            self._sink.write(line + "\n")
            self._sink.flush()

    def flush(self) -> None:
        """Write this container's metrics as one EMF line and clear them (the end of an invocation)."""
        provider = self._provider()
        if provider.metric_set:
            blob = provider.serialize_metric_set()
            with self._write_lock:
                self._sink.write(json.dumps(blob, separators=(",", ":")) + "\n")
                self._sink.flush()
        provider.clear_metrics()


class WorkerOutput:
    """Routes the runtime's logs and metrics to `logs_dir` until `restore()`."""

    def __init__(self, logs_dir: Path, *, handler_modules: list[ModuleType]) -> None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = logs_dir / "workers.log"
        self.metrics_path = logs_dir / "metrics.log"
        self._log_file = self.log_path.open("a", encoding="utf-8")
        self._metrics_file = self.metrics_path.open("a", encoding="utf-8")
        self.metrics = ContainerMetrics(namespace="Mailwright", service="mailwright", sink=self._metrics_file)
        self._streams: list[tuple[logging.StreamHandler[Any], IO[str]]] = []
        self._modules: list[tuple[ModuleType, Any]] = []
        runtime = logging.getLogger(RUNTIME_LOGGER)
        for handler in runtime.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                previous = handler.setStream(self._log_file)
                if previous is not None:
                    self._streams.append((handler, previous))
        if not runtime.handlers:  # the handler modules were not imported: still keep the domain's logs
            fallback = logging.StreamHandler(self._log_file)
            fallback.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            runtime.addHandler(fallback)
        for module in handler_modules:
            if hasattr(module, "metrics"):
                self._modules.append((module, getattr(module, "metrics")))  # noqa: B009 - any handler module
                setattr(module, "metrics", self.metrics)  # noqa: B010

    def restore(self) -> None:
        """Put the original streams and metrics back and close the files."""
        for handler, stream in self._streams:
            handler.setStream(stream)
        for module, metrics in self._modules:
            setattr(module, "metrics", metrics)  # noqa: B010
        self._streams.clear()
        self._modules.clear()
        self._log_file.close()
        self._metrics_file.close()


def quiet_third_party(log_file: Path) -> logging.Handler:
    """Send werkzeug's request log and moto's errors (e.g. an API it lacks) to a file instead of stderr."""
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("werkzeug", "moto", "botocore", "mailwright_tools", "pika"):
        target = logging.getLogger(name)
        target.addHandler(handler)
        target.propagate = False
        if name == "werkzeug":
            target.setLevel(logging.WARNING)  # one line per request otherwise
        elif name in ("botocore", "pika"):
            target.setLevel(logging.WARNING)
        else:
            target.setLevel(logging.INFO)
    return handler


def unquiet_third_party(handler: logging.Handler) -> None:
    """Undo `quiet_third_party`."""
    for name in ("werkzeug", "moto", "botocore", "mailwright_tools", "pika"):
        target = logging.getLogger(name)
        target.removeHandler(handler)
        target.propagate = True
    handler.close()
