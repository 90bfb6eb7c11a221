"""Every file a command can write after its prefix is recognised as a possibly stale output
of an earlier run (issue 22): the figures in every --figure-format, the two-trait .rg
figure, each association layout. The suffixes are read from the package's own source, so a
new output that the pattern misses fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bayeslmm
from bayeslmm.reports.formats import FIGURE_FORMATS
from bayeslmm.reports.writers import stale_outputs

PKG = Path(bayeslmm.__file__).parent


def _written_suffixes() -> tuple[set[str], set[str]]:
    """Literal suffixes after ``{prefix}`` in the package (tables) and the figure stems
    handed to the figure writer (``_figure(staged, f"{prefix}.rg", ...)``)."""
    tables, figures = set(), set()
    for f in PKG.rglob("*.py"):
        # the demo fileset's own generator, and the readers (io: f"{prefix}.annot" is an
        # input's name), are not a run's outputs
        if "datasets" in f.parts or "io" in f.parts:
            continue
        text = f.read_text()
        figures |= set(re.findall(r"_figure\(\s*\w+,\s*f\"\{prefix\}(\.[\w.-]+)\"", text))
        tables |= set(re.findall(r"f\"\{prefix\}(\.[\w.-]+)\"", text))
    # PREFIX.lock is the run's lock (writers.prefix_lock), gone when it ends; PREFIX.resume/
    # a folder a stopped run keeps on purpose (genotypes.passes): neither is an output file
    return tables - figures - {".lock", ".resume"}, figures


def test_the_source_names_the_outputs_we_know():
    tables, figures = _written_suffixes()
    assert {".hsq", ".indi.blp", ".posterior.nc", ".log"} <= tables
    assert {".h2", ".rg"} <= figures


def test_every_output_of_every_mode_is_recognised(tmp_path):
    tables, figures = _written_suffixes()
    names = {f"o{s}" for s in tables}
    names |= {f"o{s}.{fmt}" for s in figures | {".compare", ".sensitivity"}
              for fmt in FIGURE_FORMATS}
    names |= {f"o{t}{s}" for t in ("", ".exact", ".grammar", ".wald", ".lrt", ".score")
              for s in (".assoc.tsv", ".assoc.txt", ".mlma")}
    names |= {"o.loco-chr12.grm.bin", "o.grm.N.bin", "o.grm.id"}
    for n in names:
        (tmp_path / n).write_text("")
    found = {f.name for f in stale_outputs(tmp_path / "o", [])}
    assert found == names, sorted(names - found)


def test_what_is_not_an_output_of_this_prefix_is_not_named(tmp_path):
    for n in ("o.rg.png", "o.h2.svg", "o.notes.txt", "o.rg.jpg", "o.hsq.bak", "other.rg.png",
              "o2.h2.png", "o.rg"):
        (tmp_path / n).write_text("")
    written = [tmp_path / "o.h2.svg"]
    inputs = [tmp_path / "o.rg.png"]  # e.g. a file given as an input: never stale
    assert stale_outputs(tmp_path / "o", written, inputs) == []


@pytest.fixture(scope="module")
def grm(tmp_path_factory) -> Path:
    from bayeslmm.datasets import load_demo

    from helpers import run_cli

    d = tmp_path_factory.mktemp("stale_grm")
    assert run_cli(["grm", "--bfile", str(load_demo().bfile), "--out", str(d / "g"),
                    "--quiet"]) == 0
    return d / "g"


def test_a_one_trait_run_names_the_two_trait_figure_left_beside_it(grm, tmp_path):
    """The command line's side: an earlier two-trait .rg figure (and an SVG of another
    --figure-format) is named in the log of a later run on the prefix; the run's own .hsq
    is not."""
    from bayeslmm.datasets import load_demo

    from helpers import run_cli

    out = tmp_path / "o"
    for n in ("o.rg.png", "o.h2.svg", "o.mlma"):
        (tmp_path / n).write_text("old")
    assert run_cli(["reml", "--grm", str(grm), "--pheno", str(load_demo().pheno), "--out",
                    str(out), "--quiet"]) == 0
    log = Path(f"{out}.log").read_text()
    assert "3 file(s) with prefix" in log
    assert all(n in log for n in ("o.rg.png", "o.h2.svg", "o.mlma"))
    assert "o.hsq," not in log and not log.count("o.hsq ")
