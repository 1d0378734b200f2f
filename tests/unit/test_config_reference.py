"""docs/configuration.md says what the settings classes say."""

from __future__ import annotations

import os

import pytest

from tools import config_reference


def test_the_reference_matches_the_settings_classes() -> None:
    want = config_reference.render()
    got = config_reference.OUTPUT.read_text()
    assert got == want, "docs/configuration.md is stale: run `make docs` and commit it"


def test_every_variable_of_the_reference_is_read_by_its_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _, cls, _ in config_reference.SECTIONS:
        prefix = cls.model_config.get("env_prefix", "")
        name = next(n for n, f in cls.model_fields.items() if f.annotation in (int, float))
        variable = f"{prefix}{name}".upper()
        monkeypatch.setitem(os.environ, variable, "7")
        assert getattr(cls(), name) == 7, variable
