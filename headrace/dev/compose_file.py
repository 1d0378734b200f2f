"""docker-compose.yml as data: its services, each one's environment and ports, with compose's
`${VAR:-default}` interpolation from the shell's environment.

PyYAML resolves the anchors and `<<` merge keys (the x-headrace-env block and its friends), so a
service's `environment` here is what compose gives the container.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

from headrace.runtime.errors import OperatorError
from headrace.runtime.paths import COMPOSE_FILE

Compose = dict[str, Any]
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def yaml_module() -> Any:
    """PyYAML (a dev dependency: the stack runs from a checkout); one line when it is missing."""
    try:
        return importlib.import_module("yaml")
    except ImportError:
        raise OperatorError("`headrace stack` reads YAML with PyYAML: pip install pyyaml") from None


def load(path: Path = COMPOSE_FILE) -> Compose:
    """The parsed compose file; one line when it or PyYAML is missing."""
    yaml = yaml_module()
    if not path.is_file():
        raise OperatorError(
            f"{path} not found: `headrace stack` runs from a checkout of the repository"
        )
    loaded: Compose = yaml.safe_load(path.read_text())
    return loaded


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """`${VAR}` and `${VAR:-default}` as compose reads them (an empty VAR takes the default)."""
    source = os.environ if env is None else env

    def one(match: re.Match[str]) -> str:
        return source.get(match[1]) or (match[2] or "")

    return _VARIABLE.sub(one, value).replace("$$", "$")


def environment(compose: Compose, service: str) -> dict[str, str]:
    """The container's environment of `service`, values as strings, variables interpolated."""
    raw = compose["services"][service].get("environment") or {}
    return {str(k): interpolate(str(v)) for k, v in raw.items()}


def published_ports(compose: Compose, service: str) -> dict[int, int]:
    """Container port -> host port of every `ports:` entry ("8081:8081") of `service`."""
    found: dict[int, int] = {}
    for entry in compose["services"][service].get("ports") or []:
        host, _, container = str(entry).rpartition(":")
        found[int(container)] = int(host or container)
    return found


def named_volumes(compose: Compose, service: str) -> dict[str, str]:
    """Container path -> volume name of the named volumes (not bind mounts) of `service`."""
    found: dict[str, str] = {}
    for entry in compose["services"].get(service, {}).get("volumes") or []:
        name, path = str(entry).split(":")[:2]
        if not name.startswith((".", "/")):
            found[path] = name
    return found
