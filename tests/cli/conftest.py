"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayeslmm.datasets import load_demo

from helpers import run_cli


@pytest.fixture(scope="session")
def demo_grm(tmp_path_factory) -> Path:
    """The demo fileset's GRM written by ``bayeslmm grm`` once per test session (worker);
    tests read it and write their outputs elsewhere."""
    d = tmp_path_factory.mktemp("demo_grm")
    assert run_cli(["grm", "--bfile", str(load_demo().bfile), "--out", str(d / "demo"),
                    "--quiet"]) == 0
    return d / "demo"
