"""What the code accepts: every settings class's environment variables, and the CLI's commands.

Read from the code itself (pydantic settings classes, the typer app), so the deployment files are
checked against the settings as they are today: env var = env_prefix + FIELD in upper case.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import typer
from pydantic_settings import BaseSettings

from headrace.cli import main as cli
from headrace.dev.local_pipeline import SERVICES
from headrace.runtime import registry

SETTINGS_MODULES = (
    "headrace.runtime.settings",
    "headrace.dev.infra.config",
    "headrace.audit.warehouse_metrics",
    *(f"services.{s}.config" for s in SERVICES),
)

# Variables the services read that are no headrace setting, and who reads them.
FOREIGN_ENV = {
    "PGPASSWORD": "libpq (DuckDB's postgres extension): the catalog password",
    "HOME": "DuckDB installs its extensions under $HOME/.duckdb",
}


@dataclass(frozen=True)
class Setting:
    cls: type[BaseSettings]
    field: str


def settings_classes() -> list[type[BaseSettings]]:
    found = []
    for name in SETTINGS_MODULES:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseSettings)
                and cls.__module__ == name
                and cls.model_config.get("env_prefix")
            ):
                found.append(cls)
    return found


def env_settings() -> dict[str, Setting]:
    """Every environment variable a settings class reads -> (class, field)."""
    return {
        f"{cls.model_config.get('env_prefix', '')}{field}".upper(): Setting(cls, field)
        for cls in settings_classes()
        for field in cls.model_fields
    }


def unknown_env(names: list[str]) -> list[str]:
    """The names that no settings class reads and that are not known foreign variables."""
    known = env_settings()
    return sorted(n for n in names if n not in known and n not in FOREIGN_ENV)


def check_values(env: dict[str, str]) -> None:
    """Build every settings class touched by `env` from it: a bad value raises."""
    known = env_settings()
    for cls in {known[n].cls for n in env if n in known}:
        prefix = cls.model_config.get("env_prefix", "")
        values: dict[str, Any] = {
            known[n].field: v for n, v in env.items() if n in known and n.startswith(prefix)
        }
        cls.model_validate(values)


def service_port(service: str, env: dict[str, str]) -> int:
    """The port a service listens on under `env` (its HEADRACE_<SERVICE>_PORT, else default)."""
    cls = env_settings()[f"HEADRACE_{service.upper()}_PORT"].cls
    given = env.get(f"HEADRACE_{service.upper()}_PORT")
    default = cls.model_fields["port"].default
    return int(given) if given is not None else int(default)


def service_default(service: str, field: str) -> Any:
    cls = env_settings()[f"HEADRACE_{service.upper()}_PORT"].cls
    return cls.model_fields[field].default


def cli_accepts(args: list[str]) -> bool:
    """Whether `headrace <args>` names a command (and, for `run`, a service) the CLI has."""
    group = typer.main.get_command(cli.app)
    assert hasattr(group, "commands")
    if not args or args[0] not in group.commands:
        return False
    if args[0] == "run":
        return len(args) == 2 and args[1] in registry.SERVICES
    return True
