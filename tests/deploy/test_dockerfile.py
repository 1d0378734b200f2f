"""The Dockerfile, offline: pinned multi-stage build, non-root, and a build context that has
every file the image copies (what `docker build` would fail on first)."""

from __future__ import annotations

import fnmatch
import re

from tests.deploy import project_settings as code
from tests.deploy.prometheus_server import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def ignored(path: str) -> bool:
    patterns = [
        p.strip()
        for p in (REPO / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_multi_stage_from_a_pinned_slim_base() -> None:
    steps = instructions()
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    bases = [a.split()[0] for w, a in steps if w == "FROM"]
    assert len(bases) >= 2, "a builder stage and a runtime stage"
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        name, _, tag = image.partition(":")
        assert name == "python" and re.fullmatch(r"\d+\.\d+\.\d+-slim-\w+", tag), image


def test_runs_as_a_non_root_user_with_headrace_as_entry_point() -> None:
    steps = instructions()
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
    users = [a for w, a in final if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["headrace"]') in final
    for _, value in [(w, a) for w, a in final if w == "ENV"]:
        names = re.findall(r"\b(HEADRACE_\w+)=", value)
        assert not code.unknown_env(names)


def test_every_copied_file_is_in_the_build_context() -> None:
    for word, rest in instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _ = rest.split()
        for source in sources:
            assert (REPO / source).exists(), source
            assert not ignored(source), f"{source} is excluded by .dockerignore"


def test_duckdb_extensions_are_installed_from_their_packages_and_loaded_at_build() -> None:
    text = DOCKERFILE.read_text()
    pinned = (REPO / "constraints.txt").read_text()
    assert "pip install -c constraints.txt" in text
    for ext in ("ducklake", "sqlite", "postgres", "httpfs"):
        assert re.search(rf"^duckdb[_-]extension[_-]{ext}==", pinned, re.M | re.I), ext
        assert f"'{ext}'" in text, f"the build does not load the {ext} extension"
