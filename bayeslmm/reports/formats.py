"""The figure file formats and the default figure geometry, and the posterior commands' flags,
declared without numpy or matplotlib so that the command line's parser can offer them
(``--figure-format``, ``--dpi``, ``--draws`` ...) without loading the plotting stack."""

__all__ = ["FIGURE_DPI", "FIGURE_FORMATS", "FIGURE_SIZE", "posterior_flags"]

#: the file formats figures are written in
FIGURE_FORMATS = ("png", "svg", "pdf")
#: one panel in one column of a two-column paper (inches), legible when printed at that size
FIGURE_SIZE = (3.5, 2.6)
#: print resolution
FIGURE_DPI = 300


def posterior_flags(prior: bool = True, draws: int = 1000, tune: int = 1000, chains: int = 4,
                    seed: int | None = None, figures: bool = True) -> dict[str, dict]:
    """The flags of a command that samples a posterior (flag -> argparse keywords), with this
    command's defaults."""
    out: dict[str, dict] = {}
    if prior:
        out["--prior"] = dict(action="append", default=[], metavar="NAME=SPEC",
                              help="e.g. h2='Beta(1, 1)' or Vp='HalfNormal(2)'; repeatable")
    if figures:
        out["--figure-format"] = dict(choices=FIGURE_FORMATS, default="png",
                                      help="file type of the figures")
        out["--dpi"] = dict(type=int, default=FIGURE_DPI, help="figure resolution")
    return out | {
        "--draws": dict(type=int, default=draws, help="posterior draws per chain"),
        "--tune": dict(type=int, default=tune, help="warm-up draws per chain, discarded"),
        "--chains": dict(type=int, default=chains, help="independent chains"),
        "--seed": dict(type=int, default=seed,
                       help="random seed, an integer in [0, 2^32 - 1] (default: a fresh one)")}
