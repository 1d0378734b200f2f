""".gitlab-ci.yml, offline: GitLab's schema, and the same test command as the project's CI."""

from __future__ import annotations

import json

import pytest

from tests.deploy import project_settings as code
from tests.deploy.prometheus_server import REPO, yaml

validators = pytest.importorskip("jsonschema.validators", reason="jsonschema is not installed")

SCHEMA = REPO / "tests" / "deploy" / "schemas" / "gitlab-ci.json"  # vendored; see README there


def pipeline() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text())
    return loaded


def test_matches_gitlabs_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(pipeline())]
    assert not errors


def test_runs_the_projects_own_test_entry_point() -> None:
    job = pipeline()["test"]
    assert isinstance(job, dict)
    assert job["script"] == ["bash .ci/run"]
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert job["image"].startswith("python:3.11.")  # the Python the project pins (Dockerfile)
    variables = pipeline()["variables"]
    assert isinstance(variables, dict)
    assert not code.unknown_env([v for v in variables if v.startswith("HEADRACE_")])
