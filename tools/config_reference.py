"""docs/configuration.md, generated from the settings classes: `python -m tools.config_reference`.

Every setting is one environment variable (pydantic-settings, a prefix per class); its type,
default and description come from the class, so the reference cannot say what the code does not.
tests/unit/test_config_reference.py fails when the file and the classes drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from headrace.audit.warehouse_metrics import WarehouseMetricsSettings
from headrace.dev.infra.config import InfraSettings
from headrace.dev.stack_config import StackSettings
from headrace.runtime.settings import CommonSettings
from services.loader.config import LoaderSettings
from services.producer.config import ProducerSettings
from services.stager.config import StagerSettings
from services.summarizer.config import SummarizerSettings
from services.validator.config import ValidatorSettings

REPO = Path(__file__).resolve().parents[1]  # a tool of the checkout: it writes into docs/
OUTPUT = REPO / "docs" / "configuration.md"

# (title, class, who reads it), in the order an operator meets them.
SECTIONS: tuple[tuple[str, type[BaseSettings], str], ...] = (
    ("Shared", CommonSettings, "every service and every `headrace` command"),
    ("Producer", ProducerSettings, "the producer (`headrace replay` and the HTTP endpoint)"),
    ("Stager", StagerSettings, "the stager"),
    ("Validator", ValidatorSettings, "the validator"),
    ("Loader", LoaderSettings, "the loader"),
    ("Summarizer", SummarizerSettings, "the summarizer"),
    ("Warehouse metrics", WarehouseMetricsSettings, "the loader and the summarizer"),
    ("Local infrastructure", InfraSettings, "`headrace infra` and `make demo` (not production)"),
    ("Local compose stack", StackSettings, "`headrace stack` and `make stack` (not production)"),
)

INTRO = """\
# Configuration

Every setting is an environment variable; nothing else configures a service. Each service reads
the shared settings and its own (prefix `HEADRACE_<SERVICE>_`); a value that does not parse
stops the service at start with one line naming the variable. Sizes left at 0 are derived from
`HEADRACE_MEMORY_BUDGET_MB` (docs/operations.md, "Resources").

This page is generated from the settings classes (`python -m tools.config_reference`); a test
fails when it and the code disagree.
"""


def render() -> str:
    parts = [INTRO]
    for title, cls, readers in SECTIONS:
        prefix = cls.model_config.get("env_prefix", "")
        parts.append(f"\n## {title}\n\nRead by {readers}.\n")
        parts.append("\n| variable | default | what |\n|---|---|---|\n")
        for name, field in cls.model_fields.items():
            variable = f"{prefix}{name}".upper()
            parts.append(f"| `{variable}` | {_default(field)} | {_cell(field.description)} |\n")
    return "".join(parts)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "computed"  # the host name, a home folder: not the same on every machine
    value: Any = field.default
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, Path):
        value = _portable(value)
    if isinstance(value, bool):
        value = str(value).lower()
    return f"`{value}`" if str(value) != "" else '`""`'


def _portable(path: Path) -> str:
    """A path default as the reader's machine will see it (relative to the checkout or ~)."""
    for root, shown in ((REPO, ""), (Path.home(), "~/")):
        if path.is_absolute() and path.is_relative_to(root):
            return shown + str(path.relative_to(root))
    return str(path)


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def main() -> None:
    text = render()
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if OUTPUT.read_text() == text else 1)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
