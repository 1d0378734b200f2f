"""The five services in one table: name, default port and consumer group, settings and entry.

Whatever starts, lists or inspects the services reads them here: `headrace run`, `python -m
services.<name>`, the local pipeline (demo, tests, fault suite), `headrace lag`, the configuration
reference, and the services' own settings classes (their default port and group). Every service
has the same shape: `services/<name>/config.py` holds its settings class and
`services/<name>/runner.py` its `main()`. They are named here by import path, not imported: this
module sits below the services, which import it for their defaults.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pydantic_settings import BaseSettings

from headrace.runtime import settings
from headrace.runtime.errors import OperatorError


@dataclass(frozen=True)
class Service:
    name: str
    port: int  # /healthz, /readyz, /metrics (and the producer's ingest, the summarizer's pages)
    group: str  # the default Kafka consumer group ("" for the producer, which consumes nothing)
    settings_class: str  # in services/<name>/config.py

    @property
    def package(self) -> str:
        return f"services.{self.name}"

    def settings(self) -> type[BaseSettings]:
        module = importlib.import_module(f"{self.package}.config")
        return cast("type[BaseSettings]", getattr(module, self.settings_class))

    def group_id(self) -> str:
        """The consumer group this service uses here: its settings' (the environment may say)."""
        return str(getattr(settings.load(self.settings()), "group_id", self.group))

    def main(self) -> Callable[[], None]:
        """The service's `main()`: load its settings, check, serve, run until SIGTERM."""
        module = importlib.import_module(f"{self.package}.runner")
        return cast("Callable[[], None]", module.main)


PRODUCER = Service("producer", 8081, "", "ProducerSettings")
STAGER = Service("stager", 8082, "headrace-stager", "StagerSettings")
VALIDATOR = Service("validator", 8083, "headrace-validator", "ValidatorSettings")
LOADER = Service("loader", 8084, "headrace-loader", "LoaderSettings")
SUMMARIZER = Service("summarizer", 8085, "headrace-summarizer", "SummarizerSettings")

# In pipeline order; a local pipeline starts them in this order.
SERVICES: dict[str, Service] = {
    s.name: s for s in (PRODUCER, STAGER, VALIDATOR, LOADER, SUMMARIZER)
}
NAMES = tuple(SERVICES)


def service(name: str) -> Service:
    try:
        return SERVICES[name]
    except KeyError:
        raise OperatorError(f"unknown service {name!r}; choose one of {', '.join(NAMES)}") from None
