"""The README and docs/ say what the code does: every flag named with a command exists in
that command's parser (and every value named for a flag with choices is one of them), every
output suffix in docs/cli.md's table is one its command writes and every file it writes is
named there, the posterior summary columns are those ``posterior_summary`` produces, the
default-priors table is ``DEFAULT_PRIORS``, the prior families by support are ``FAMILIES``,
the sensitivity thresholds are the code's, and every ``bayeslmm.x.y`` name and repository
path a page names exists.

The statements are parsed out of the markdown; nothing here repeats a list from the docs.
Each parser is also fed a made-up statement, which it must catch (the refused direction)."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _page(name: str) -> str:
    return (ROOT / name).read_text()


# ----------------------------------------------------------------------------- markdown
def code_snippets(text: str) -> list[tuple[int, str]]:
    """(line number, code) for every inline code span and every line of a fenced or
    indented (4 spaces) code block."""
    out, fenced = [], False
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith(("    ", "\t")):
            out.append((i, line.strip()))
            continue
        out += [(i, s) for s in line.split("`")[1::2]]
    return out


def table_rows(text: str, header: list[str]) -> list[list[str]]:
    """The body rows of the markdown table whose header cells are ``header`` (cells split on
    unescaped pipes, stripped)."""
    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and cells(line) == header:
            rows = []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append(cells(body))
            return rows
    raise AssertionError(f"no table with header {header}")


def spans(cell: str) -> list[str]:
    return cell.split("`")[1::2]


# ----------------------------------------------------------------------------- the parser
@pytest.fixture(scope="module")
def commands() -> dict[str, argparse.ArgumentParser]:
    from bayeslmm.cli.parser import build_parser

    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in parser._actions for o in a.option_strings}


_FLAG = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")
# the end of one command line: a shell comment, pipe, redirection or the next command
_END = re.compile(r"\s(?:#|\|(?=\s)|>|;|&&)|\bbayeslmm\s")


def invocations(snippet: str, names) -> list[tuple[str, str]]:
    """(command, its arguments) for each ``bayeslmm CMD ...`` in a code snippet, and for a
    snippet that starts ``CMD --`` or ``CMD|CMD --`` with CMD a command's name."""
    out = []
    for m in re.finditer(r"\bbayeslmm\s+([A-Za-z][\w-]*)", snippet):
        rest = snippet[m.end():]
        end = _END.search(rest)
        out.append((m.group(1), rest[:end.start()] if end else rest))
    m = re.match(r"([a-z]+(?:\|[a-z]+)*)\s+(--.*)", snippet)
    if m and all(c in names for c in m.group(1).split("|")):
        out += [(c, m.group(2)) for c in m.group(1).split("|")]
    return out


def flag_problems(text: str, commands) -> list[str]:
    """What a page says about command-line flags that the parser does not hold."""
    problems = []
    for line, snippet in code_snippets(text):
        for cmd, rest in invocations(snippet, commands):
            if cmd not in commands:
                if not cmd.isupper():  # COMMAND, a placeholder
                    problems.append(f"line {line}: no command {cmd!r}: {snippet}")
                continue
            opts = _options(commands[cmd])
            for m in _FLAG.finditer(rest):
                flag = m.group(1)
                if flag not in opts:
                    problems.append(f"line {line}: {cmd} has no {flag}: {snippet}")
                    continue
                choices = opts[flag].choices
                value = re.match(r"\s+([a-z][\w-]*(?:\\?\|[a-z][\w-]*)*)(?=[\s\]]|$)",
                                 rest[m.end():])
                if choices and value:
                    bad = [v for v in re.split(r"\\?\|", value.group(1)) if v not in choices]
                    if bad:
                        problems.append(f"line {line}: {cmd} {flag} takes none of {bad}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_flag_named_with_a_command_is_in_its_parser(page, commands):
    assert flag_problems(page.read_text(), commands) == []


def test_a_made_up_flag_or_value_is_caught(commands):
    ok = "Run `bayeslmm reml --grm G --pheno F --out R` then `sample --figure-format svg`."
    assert flag_problems(ok, commands) == []
    assert flag_problems("    bayeslmm reml --grm G   # GCTA --reml-bivar rows", commands) == []
    made_up = ["Run `bayeslmm reml --grm G --made-up-flag 3`.",
               "`bayeslmm assoc --test wald|bogus`",
               "`assoc --format tsv\\|csv`",
               "```sh\nbayeslmm blup --draws 10\n```",
               "`bayeslmm fit --grm G`"]
    for text in made_up:
        assert len(flag_problems(text, commands)) == 1, text


def test_the_association_test_table_is_the_parsers_choices(commands):
    """docs/cli.md's `--test` table: each value is a choice of --test and each choice is in
    the table; the row marked (default) is what a run without --test does."""
    rows = table_rows(_page("docs/cli.md"),
                      ["`--test`", "what is fitted per SNP", "reference distribution", "peer"])
    named = [v for r in rows for v in spans(r[0]) if not v.startswith("-")]
    choices = set(_options(commands["assoc"])["--test"].choices)
    assert set(named) <= choices
    assert choices <= set(named)
    (default,) = [spans(r[0])[0] for r in rows if "(default)" in r[0]]
    from bayeslmm.cli.parser import build_parser

    help_text = _options(commands["assoc"])["--test"].help
    assert f"Default: {default}" in help_text  # the parser's default is decided by the command
    assert build_parser().parse_args(["assoc", "--bfile", "P", "--pheno", "F"]).test is None


# ----------------------------------------------------------------------------- outputs
def suffix_problems(text: str, command_outputs, names) -> list[str]:
    """docs/cli.md's command table against COMMAND_OUTPUTS: a suffix in the `writes` column
    that its command does not write, a suffix a command writes that the column does not name
    (as itself or as its end: `.assoc.tsv` covers `.wald.assoc.tsv`), a command missing."""
    rows = table_rows(text, ["command", "does", "writes"])
    problems, seen = [], set()
    for row in rows:
        cmd = re.search(r"bayeslmm\s+(\w+)", row[0]).group(1)
        seen.add(cmd)
        named = [s for s in spans(row[2]) if s.startswith(".") and "<" not in s]
        written = command_outputs.get(cmd, ())
        problems += [f"{cmd} does not write {s}" for s in named if s not in written]
        problems += [f"the {cmd} row does not name {s}" for s in written
                     if not any(s.endswith(n) for n in named)]
    problems += [f"no row for {c}" for c in set(names) - seen]
    return problems


def test_every_output_suffix_is_one_the_command_writes(commands):
    from bayeslmm.registry import COMMAND_OUTPUTS

    assert suffix_problems(_page("docs/cli.md"), COMMAND_OUTPUTS, commands) == []
    # what the commands' code writes is in COMMAND_OUTPUTS (a figure: under --figure-format
    # png): the f-string suffixes after the prefix in cli/commands.py and the figures'
    # stems in reports/posterior_files.py
    code = (ROOT / "bayeslmm/cli/commands.py").read_text()
    staged = set(re.findall(r'f"\{prefix\}(\.[\w.-]+)"', code))
    figures = re.findall(r'f"\{prefix\}(\.\w+)"', (ROOT / "bayeslmm/reports/"
                                                   "posterior_files.py").read_text())
    staged |= {f"{s}.png" for s in figures if s not in (".posterior",)}
    every = {s for v in COMMAND_OUTPUTS.values() for s in v}
    assert staged and staged <= every, staged - every


def test_a_suffix_the_command_does_not_write_is_caught(commands):
    outputs = {"reml": (".hsq",), "sample": (".hsq", ".rg.png")}
    table = ("| command | does | writes |\n|---|---|---|\n"
             "| `bayeslmm reml --grm P` | REML | `.hsq` |\n"
             "| `bayeslmm sample ...` | posterior | `.hsq`, `.rg.png` |\n")
    assert suffix_problems(table, outputs, ["reml", "sample"]) == []
    assert suffix_problems(table.replace("`.hsq` |\n| `bayeslmm s", "`.hsq`, `.posterior.nc`"
                                         " |\n| `bayeslmm s"), outputs, ["reml", "sample"]) \
        == ["reml does not write .posterior.nc"]
    assert suffix_problems(table.replace(", `.rg.png`", ""), outputs, ["reml", "sample"]) \
        == ["the sample row does not name .rg.png"]
    assert suffix_problems(table, outputs, ["reml", "sample", "demo"]) == ["no row for demo"]


# ----------------------------------------------------------------------------- summaries
def summary_column_lists(text: str) -> list[list[str]]:
    """Every code span that lists summary columns (comma-separated, naming ess_bulk)."""
    return [[c.strip() for c in s.split(",")] for _, s in code_snippets(text)
            if "," in s and "ess_bulk" in s]


@pytest.fixture
def tiny_posterior():
    from bayeslmm.bayes import summaries

    rng = np.random.default_rng(0)
    yield xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"h2": (("chain", "draw"), rng.beta(2, 5, (2, 200)))})})
    summaries.set_interval(0.95, "hdi")  # the default, restored for the other tests


def test_posterior_summary_columns_are_those_named(tiny_posterior):
    from bayeslmm.bayes import summaries
    from bayeslmm.bayes.summaries import posterior_summary

    produced = list(posterior_summary(tiny_posterior).columns)
    lists = [c for p in PAGES for c in summary_column_lists(p.read_text())]
    assert lists, "no page names the summary columns"
    for cols in lists:
        assert cols == produced
    # a made-up column is caught
    assert summary_column_lists("`mean, sd, hdi_3%, ess_bulk`")[0] != produced
    # the convention's own example: `eti89_lower` after `set_interval(0.89, "eti")`
    examples = re.findall(r'`(\w+_lower)` after\s+`set_interval\(([\d.]+), "(\w+)"\)`',
                          _page("docs/cli.md"))
    assert examples
    for col, prob, kind in examples:
        summaries.set_interval(float(prob), kind)
        assert col in posterior_summary(tiny_posterior).columns
        assert "eti90_lower" not in posterior_summary(tiny_posterior).columns


# ----------------------------------------------------------------------------- priors
def prior_table(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for fam, qty, prior in table_rows(text, ["family", "quantity", "default prior"]):
        out.setdefault(spans(fam)[0], {})[spans(qty)[0]] = prior
    return out


def test_default_priors_table_is_the_codes():
    from bayeslmm.bayes.priors import DEFAULT_PRIORS, default_prior_table

    doc = prior_table(_page("docs/priors.md"))
    assert doc == {f: default_prior_table(f) for f in DEFAULT_PRIORS}
    wrong = _page("docs/priors.md").replace("| Beta(1, 1) |", "| Beta(2, 2) |", 1)
    assert prior_table(wrong) != doc


def prior_families(text: str) -> dict[str, set[str]]:
    """docs/priors.md's "Families: A, B and C for variances; ... for h2; ... for beta."."""
    m = re.search(r"Families:\s*(.*?)\.\n\n", text, flags=re.S)
    out = {}
    for part in " ".join(m.group(1).split()).split(";"):
        names, what = re.match(r"\s*(.*) for (\w+)$", part).groups()
        out[what] = set(re.split(r",\s*|\s+and\s+", names))
    return out


def test_prior_families_by_support_are_the_codes():
    from bayeslmm.bayes.priors import FAMILIES

    support = {"variances": "positive", "h2": "unit", "beta": "real"}
    code = {w: {n for n, f in FAMILIES.items() if f.support == s} for w, s in support.items()}
    assert prior_families(_page("docs/priors.md")) == code
    text = "Families: HalfNormal and Gamma for variances; Beta for h2; Flat for beta.\n\n"
    assert prior_families(text) != code


# ----------------------------------------------------------------------------- sensitivity
def _number_after(pattern: str, text: str) -> float:
    """The number that follows ``pattern`` (words separated by any whitespace) in ``text``."""
    words = r"\s+".join(map(re.escape, pattern.split()))
    return float(re.search(words + r"\s+([\d.]*\d)", text).group(1))


def sensitivity_thresholds(text: str) -> dict[str, float]:
    return {"psense": _number_after("`psense_prior` >=", text),
            "contraction": _number_after("prior tried is below", text),
            "spread": _number_after("posterior SDs, is above", text)}


def test_sensitivity_thresholds_are_the_codes():
    from bayeslmm.bayes import sensitivity as s

    text = _page("docs/sensitivity.md")
    code = {"psense": s.PSENSE_THRESHOLD, "contraction": s.CONTRACTION_THRESHOLD,
            "spread": s.SPREAD_THRESHOLD}
    assert sensitivity_thresholds(text) == code
    # "posterior SD above 0.71 of the prior's" is the contraction threshold restated
    ratio = _number_after("(posterior SD above", text)
    assert ratio == pytest.approx(np.sqrt(1 - s.CONTRACTION_THRESHOLD), abs=0.005)
    assert sensitivity_thresholds(text.replace(">= 0.05", ">= 0.1")) != code


# ----------------------------------------------------------------------------- names, paths
def dotted_names(text: str) -> set[str]:
    return {m.group(0).rstrip(".") for _, s in code_snippets(text)
            for m in re.finditer(r"\bbayeslmm(?:\.\w+)+\b\.?", s)}


def resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_bayeslmm_name_on_a_page_exists():
    names = set().union(*(dotted_names(p.read_text()) for p in PAGES))
    assert len(names) > 20
    assert sorted(n for n in names if not resolves(n)) == []
    assert not resolves("bayeslmm.bayes.multikernel_")
    assert not resolves("bayeslmm.reml_made_up")


_PACKAGE_DIRS = sorted(p.name for p in (ROOT / "bayeslmm").iterdir() if p.is_dir()
                       and not p.name.startswith("_"))


def missing_paths(text: str) -> list[str]:
    """Repository paths a page names (bayeslmm/..., benchmarks/..., tests/..., docs/...,
    examples/..., or a package folder such as bayes/models/x.py) that do not exist."""
    roots = "|".join(["bayeslmm", "benchmarks", "tests", "docs", "examples", *_PACKAGE_DIRS])
    out = []
    for m in re.finditer(rf"(?<![\w./-])((?:{roots})/[\w./-]*\w)", text):
        path = m.group(1)
        if "*" in path or path.startswith("docs/_build"):
            continue
        if not ((ROOT / path).exists() or (ROOT / "bayeslmm" / path).exists()):
            out.append(path)
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_a_page_names_exists(page):
    assert missing_paths(page.read_text()) == []


def test_a_missing_path_is_caught():
    assert missing_paths("see `bayeslmm/bayes/marginal_logp.py` and bayes/models/x.py") == [
        "bayeslmm/bayes/marginal_logp.py", "bayes/models/x.py"]
    assert missing_paths("see bayes/models/threshold.py and benchmarks/bench_reml.py") == []


# ----------------------------------------------------------------------------- counts
def corrupted_input_counts(text: str) -> list[int]:
    """The number of corrupted inputs a page says the bad-input suite checks."""
    return [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) corrupted\s+inputs", text)]


def test_the_bad_input_suite_has_the_cases_the_pages_count():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "_docs_bad_input", ROOT / "tests/cli/test_bad_input.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    counts = [n for p in PAGES for n in corrupted_input_counts(p.read_text())]
    assert counts and all(n == len(module.CASES) for n in counts), counts
    assert corrupted_input_counts("a suite of 1,000 corrupted\n inputs") == [1000]
