"""Build the documentation: the pages in docs/*.md and the API reference from docstrings.

Run: python docs/build.py [--out docs/_build]   (or `make docs`)
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{max-width:52em;margin:2em auto;font-family:sans-serif;line-height:1.5}}
pre{{background:#f4f4f4;padding:.6em;overflow:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .5em}}</style>
<script>MathJax={{tex:{{inlineMath:[['$','$'],['\\(','\\)']]}}}};</script>
<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>
</head><body>{body}</body></html>
"""


def build(out: Path) -> list[Path]:
    import markdown2
    import pdoc

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for md in sorted(HERE.glob("*.md")):
        text = md.read_text()
        body = markdown2.markdown(text.replace(".md)", ".html)"),
                                  # code-friendly: _ and * inside equations stay as
                                  # they are for MathJax, not emphasis
                                  extras=["fenced-code-blocks", "tables", "code-friendly"])
        title = html.escape(text.splitlines()[0].lstrip("# "))
        target = out / f"{md.stem}.html"
        target.write_text(PAGE.format(title=title, body=body))
        written.append(target)
    pdoc.render.configure(docformat="numpy", search=False)
    # the packages by layer (pdoc documents their modules too)
    modules = ["bayeslmm", "bayeslmm.errors", "bayeslmm.labels", "bayeslmm.registry",
               "bayeslmm.io", "bayeslmm.data", "bayeslmm.binary", "bayeslmm.identifiability",
               "bayeslmm.genotypes", "bayeslmm.inputs", "bayeslmm.covariance",
               "bayeslmm.likelihood", "bayeslmm.estimation", "bayeslmm.blup", "bayeslmm.bayes",
               "bayeslmm.association", "bayeslmm.formula", "bayeslmm.reports", "bayeslmm.cli",
               "bayeslmm.datasets", "!bayeslmm.datasets.make_demo", "!bayeslmm.cli.__main__"]
    pdoc.pdoc(*modules, output_directory=out / "api")
    written.append(out / "api" / "bayeslmm.html")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "_build")
    args = ap.parse_args(argv)
    for p in build(args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
