"""The package's layers point one way, and no private name crosses a module.

Folders are layers, in the direction the data flow: errors / labels / registry -> io ->
data -> genotypes -> inputs -> covariance -> likelihood -> estimation ->
blup -> bayes -> association / formula -> reports -> cli (BLUP follows a fit, and the
posterior is compared with it). Every import is read from the source
(function-level ones included, since a deferred import still makes a cycle); imports under
``if TYPE_CHECKING:`` are annotations only and are allowed in any direction. Inside
``bayes/``, the model families (``models/*``, ``compiled/*``, ``multikernel/``) are rooms of
their own: a family imports no other family, and ``bayes/sampling.py`` imports none (it finds
them in :mod:`bayeslmm.registry`).
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
    "bayeslmm.labels": 0,
    "bayeslmm.registry": 0,
    "bayeslmm.progress": 0,
    "bayeslmm.io": 1,
    "bayeslmm.data": 2,
    "bayeslmm.binary": 2,
    "bayeslmm.identifiability": 2,
    "bayeslmm.genotypes": 3,
    "bayeslmm.inputs": 4,
    "bayeslmm.datasets": 4,
    "bayeslmm.covariance": 5,
    "bayeslmm.likelihood": 6,
    "bayeslmm.estimation": 7,
    "bayeslmm.blup": 8,  # BLUE/BLUP/prediction from a fit: what the posterior is compared to
    "bayeslmm.bayes": 9,
    "bayeslmm.pymc": 9,  # the public name of bayes/pymc.py (the GRM term for any PyMC model)
    "bayeslmm.association": 10,
    "bayeslmm.formula": 10,
    "bayeslmm.reports": 11,
    "bayeslmm.cli": 12,
}

#: the model families inside bayes/: each a room that imports no other (the registry joins
#: them); the key is the family, the values the module prefixes that belong to it.
FAMILIES = {
    "linear": ("bayeslmm.bayes.models.marginal", "bayeslmm.bayes.compiled.marginal"),
    "multikernel": ("bayeslmm.bayes.models.multikernel", "bayeslmm.bayes.multikernel"),
    "multitrait": ("bayeslmm.bayes.models.multitrait", "bayeslmm.bayes.compiled.multitrait"),
    "threshold": ("bayeslmm.bayes.models.threshold", "bayeslmm.bayes.compiled.threshold",
                  "bayeslmm.bayes.augmented"),
    # the sparse priors share one room: one Gibbs kernel (bayes/sparse/kernel.py), two families
    "bayesc": ("bayeslmm.bayes.sparse",),
    "bayesr": ("bayeslmm.bayes.sparse",),
    "bslmm": ("bayeslmm.bayes.sparse",),
}


def _family(module: str) -> str | None:
    for fam, prefixes in FAMILIES.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return fam
    return None


def _layer(module: str) -> int:
    if module == "bayeslmm":
        return 12  # the front door: imports every library layer
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
        for t in _targets(dst, names):
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


def _targets(dst: str, names: list[str]) -> list[str]:
    """"from bayeslmm.x import y" where y is a submodule counts as importing bayeslmm.x.y."""
    return [f"{dst}.{n}" if (ROOT / Path(*dst.split(".")[1:], n)).exists()
            or (ROOT / Path(*dst.split(".")[1:], f"{n}.py")).exists() else dst
            for n in names] or [dst]


def test_families_import_no_other_family_and_sampling_imports_none():
    bad = []
    for src, dst, names, line in _imports():
        for t in _targets(dst, names):
            fs, ft = _family(src), _family(t)
            if ft is not None and fs is not None and fs != ft:
                bad.append(f"{src}:{line} (family {fs}) imports {t} (family {ft})")
            if src in ("bayeslmm.bayes.sampling", "bayeslmm.bayes.diagnostics",
                       "bayeslmm.bayes.model_info") and ft is not None:
                bad.append(f"{src}:{line} imports the family module {t}")
    assert not bad, "\n".join(bad)


def test_no_import_circle():
    """Module-level imports between modules of the package form no circle (a circle of
    deferred imports is caught by the layer rule above, and here too)."""
    graph: dict[str, set[str]] = {}
    for src, dst, names, _ in _imports():
        for t in _targets(dst, names):
            if t != src and not (src == "bayeslmm" or t.startswith(src + ".")):
                graph.setdefault(src, set()).add(t)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if state.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if state.get(n) is None:
            circle = visit(n)
            assert circle is None, "import circle: " + " -> ".join(circle)


def test_registry_knows_every_family_and_test():
    """Every family module registers itself, and the registry holds assoc's tests."""
    import bayeslmm.association  # noqa: F401
    import bayeslmm.bayes.models  # noqa: F401
    from bayeslmm.registry import ASSOC_TESTS, MODEL_FAMILIES

    assert set(MODEL_FAMILIES) == set(FAMILIES)
    assert all(f.build is not None for f in MODEL_FAMILIES.values())  # hooks attached
    assert {"exact", "grammar", "grammar-gamma"} <= set(ASSOC_TESTS)


def test_module_sizes():
    """No module over 800 lines; the command line under 900 lines in all."""
    sizes = {f: len(f.read_text().splitlines()) for f in ROOT.rglob("*.py")}
    big = {str(f.relative_to(ROOT)): n for f, n in sizes.items() if n > 800}
    assert not big, f"modules over 800 lines: {big}"
    cli = sum(n for f, n in sizes.items() if "cli" in f.relative_to(ROOT).parts[:1])
    assert cli < 900, f"the command line holds {cli} lines"


@pytest.mark.parametrize("src,dst", [("bayeslmm.estimation.reml", "bayeslmm.blup"),
                                     ("bayeslmm.io.plink", "bayeslmm.data"),
                                     ("bayeslmm.data", "bayeslmm.inputs"),
                                     ("bayeslmm.bayes.sampling", "bayeslmm.reports.plots")])
def test_the_layer_check_catches_a_back_edge(src, dst):
    """The rule itself, both directions: a back-edge is caught, a forward one is not."""
    assert _layer(dst) > _layer(src)
    assert not _layer(src) > _layer(dst)


def test_the_family_check_catches_a_cross_import():
    """Both directions: two families differ, a family's own floors do not."""
    assert _family("bayeslmm.bayes.models.threshold") != _family("bayeslmm.bayes.models.marginal")
    assert _family("bayeslmm.bayes.compiled.threshold") == \
        _family("bayeslmm.bayes.models.threshold")
    assert _family("bayeslmm.bayes.sampling") is None


def test_importing_the_package_leaves_matplotlib_alone():
    import subprocess
    import sys

    code = ("import matplotlib; b = matplotlib.get_backend(); "
            "import bayeslmm, bayeslmm.reports.plots;"
            "import matplotlib as m; print(b == m.get_backend() or m.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"MPLBACKEND": "svg", "PATH": ""}, check=True)
    assert out.stdout.strip() == "True", out.stdout + out.stderr


def test_bayes_names_are_functions_whichever_module_came_first():
    """``from bayeslmm.bayes import compare`` is the function even when the module of the
    same name was imported first; a non-Bayesian command does not load PyMC."""
    import subprocess
    import sys

    code = ("import bayeslmm.bayes.compare, bayeslmm.bayes.empirical_bayes, sys;"
            "from bayeslmm.bayes import compare, empirical_bayes;"
            "import bayeslmm.cli.app;"
            "print(callable(compare), callable(empirical_bayes), 'pymc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "True", "False"], out.stdout + out.stderr
