"""The package's layers point one way, and no private name crosses a module.

io -> data -> spectral -> covariance -> likelihood -> fitting (reml, ols, bayes) ->
blup / assoc -> reports / plots -> cli. Every import is read from the source (function-level
ones included, since a deferred import still makes a cycle); imports under
``if TYPE_CHECKING:`` are annotations only and are allowed in any direction.
"""

import ast
from pathlib import Path

import pytest

import bayeslmm

ROOT = Path(bayeslmm.__file__).parent

#: layer of each module (prefix match, longest first); an import may go to its own layer or
#: below, never above.
LAYERS = {
    "bayeslmm.errors": 0,
    "bayeslmm.io.reports": 8,  # writers of result objects: above the results they write
    "bayeslmm.io.multitrait_reports": 8,
    "bayeslmm.io": 1,
    "bayeslmm.data": 2,
    "bayeslmm.identifiability": 2,
    "bayeslmm.filters": 2,
    "bayeslmm.genotypes": 2,
    "bayeslmm.spectral": 3,
    "bayeslmm.kernel_remedies": 3,
    "bayeslmm.genotype_operator": 3,
    "bayeslmm.lowrank": 3,
    "bayeslmm.krylov": 5,
    "bayeslmm.engines": 6,
    "bayeslmm.ldak": 6,  # LDAK-weighted GRMs and the profile likelihood of alpha (fits)
    "bayeslmm.assoc_krylov": 7,
    "bayeslmm.covariance": 4,
    "bayeslmm.likelihood": 5,
    "bayeslmm.multitrait_likelihood": 5,
    "bayeslmm.multitrait": 6,
    "bayeslmm.multitrait_plots": 8,
    "bayeslmm.ols": 6,
    "bayeslmm.reml": 6,
    "bayeslmm.liability": 6,
    "bayeslmm.binary": 2,
    "bayeslmm.summaries": 6,
    "bayeslmm.bayes": 6,
    "bayeslmm.models": 6,
    "bayeslmm.blup": 7,
    "bayeslmm.assoc": 7,
    "bayeslmm.datasets": 8,
    "bayeslmm.formula": 8,  # a front door over data frames: fits (reml) and models (bayes)
    "bayeslmm.plots": 8,
    "bayeslmm.cli": 9,
    "bayeslmm.cli_checks": 9,
    "bayeslmm.interrupts": 9,
}


def _layer(module: str) -> int:
    if module == "bayeslmm":
        return 9  # the front door: imports every library layer, is used by the CLI
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    raise AssertionError(f"module {module} has no layer in tests/test_layers.py")


def _modules():
    for f in sorted(ROOT.rglob("*.py")):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, f


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                ids.update(id(n) for n in ast.walk(sub))
    return ids


def _imports():
    for name, f in _modules():
        tree = ast.parse(f.read_text())
        skip = _type_checking_nodes(tree)
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join([*base, mod] if mod else base)
                if mod.startswith("bayeslmm"):
                    yield name, mod, [a.name for a in node.names], node.lineno
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("bayeslmm"):
                        yield name, a.name, [], node.lineno


def test_every_import_points_down_the_layers():
    bad = []
    for src, dst, names, line in _imports():
        # "from bayeslmm.x import y" where y is a submodule counts as importing bayeslmm.x.y
        targets = [f"{dst}.{n}" if (ROOT / Path(*dst.split(".")[1:], n)).exists()
                   or (ROOT / Path(*dst.split(".")[1:], f"{n}.py")).exists() else dst
                   for n in names] or [dst]
        for t in targets:
            if src == t or t.startswith(src + ".") and src != "bayeslmm":
                continue  # a package importing its own submodules
            if _layer(t) > _layer(src):
                bad.append(f"{src}:{line} imports {t} (layer {_layer(src)} -> {_layer(t)})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_private_name_crosses_a_module():
    bad = [f"{src}:{line} imports {n} from {dst}"
           for src, dst, names, line in _imports() for n in names
           if n.startswith("_") and not n.startswith("__") and dst != src]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("src,dst", [("bayeslmm.reml", "bayeslmm.blup"),
                                     ("bayeslmm.io.plink", "bayeslmm.data")])
def test_the_layer_check_catches_a_back_edge(src, dst):
    """The rule itself, both directions: a back-edge is caught, a forward one is not."""
    assert _layer(dst) > _layer(src)
    assert not _layer(src) > _layer(dst)


def test_importing_the_package_leaves_matplotlib_alone():
    import subprocess
    import sys

    code = ("import matplotlib; b = matplotlib.get_backend(); import bayeslmm, bayeslmm.plots;"
            "import matplotlib as m; print(b == m.get_backend() or m.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"MPLBACKEND": "svg", "PATH": ""}, check=True)
    assert out.stdout.strip() == "True", out.stdout + out.stderr
