"""The ``bayeslmm`` command line: parse -> load_inputs -> library -> reports."""

from bayeslmm.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
