"""Figures, their verdicts, the table printed at the end of a run and the JSON result.

A figure is one measured value next to the baseline measured in the same run. Absolute numbers
drift between runs and machines, so the ratio is what a target is usually set on; a
few targets are absolute (end-to-end events/s, freshness seconds, dashboard milliseconds).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Goal = Literal["ratio_at_least", "value_at_least", "value_at_most", "none"]


@dataclass
class Figure:
    key: str  # stable id, e.g. "stage.validator"
    label: str
    unit: str
    value: float | None = None
    baseline: float | None = None
    baseline_label: str = ""
    goal: Goal = "none"
    target: float | None = None
    notes: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        if self.goal == "ratio_at_least":
            return self.ratio is not None and self.ratio >= self.target
        if self.goal == "value_at_least":
            return self.value >= self.target
        if self.goal == "value_at_most":
            return self.value <= self.target
        return None

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        if self.goal == "ratio_at_least":
            return f"ratio >= {self.target:g}"
        sign = ">=" if self.goal == "value_at_least" else "<="
        return f"{sign} {_number(self.target)} {self.unit}"

    def as_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it rebuilds a Counter in `extra` from (key, value) pairs,
        # which counts the pairs as keys and breaks the JSON.
        return {
            **{k: getattr(self, k) for k in self.__dataclass_fields__},
            "extra": json.loads(json.dumps(self.extra, default=str)),
            "ratio": self.ratio,
            "passed": self.passed,
        }


def _number(v: float) -> str:
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.4f}"


def render(console: Console, figures: list[Figure], title: str) -> None:
    table = Table(title=title)
    for column in ("figure", "value", "baseline", "ratio", "target", "verdict"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for f in figures:
        if f.error is not None:
            table.add_row(f.label, "[red]error[/]", "", "", f.target_text(), f.error[:60])
            continue
        value = f"{_number(f.value)} {f.unit}" if f.value is not None else "-"
        base = f"{_number(f.baseline)} ({f.baseline_label})" if f.baseline else "-"
        ratio = f"{f.ratio:.3f}" if f.ratio is not None else "-"
        verdict = {True: "[green]pass[/]", False: "[red]miss[/]", None: "info"}[f.passed]
        table.add_row(f.label, value, base, ratio, f.target_text(), verdict)
    console.print(table)


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "mem_gib": round(mem_kb / 2**20, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def write_json(path: Path, figures: list[Figure], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**meta, "machine": machine(), "figures": [f.as_json() for f in figures]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, default=str) + "\n")
    tmp.replace(path)


def markdown(result: dict[str, Any]) -> str:
    """The result's figures as a Markdown table (for docs/performance.md)."""
    lines = [
        "| figure | value | baseline | ratio | target | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for f in result["figures"]:
        if f["error"]:
            lines.append(f"| {f['label']} | error: {f['error'][:80]} | | | | |")
            continue
        fig = Figure(**{k: f[k] for k in Figure.__dataclass_fields__})
        value = f"{_number(fig.value)} {fig.unit}" if fig.value is not None else "-"
        base = f"{_number(fig.baseline)} ({fig.baseline_label})" if fig.baseline else "-"
        ratio = f"{fig.ratio:.3f}" if fig.ratio is not None else "-"
        verdict = {True: "pass", False: "**miss**", None: "info"}[fig.passed]
        lines.append(
            f"| {fig.label} | {value} | {base} | {ratio} | {fig.target_text()} | {verdict} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
