"""The figure file formats and the default figure geometry, declared without numpy or
matplotlib so that the command line's parser can offer them (``--figure-format``, ``--dpi``)
without loading the plotting stack."""

__all__ = ["FIGURE_DPI", "FIGURE_FORMATS", "FIGURE_SIZE"]

#: the file formats figures are written in
FIGURE_FORMATS = ("png", "svg", "pdf")
#: one panel in one column of a two-column paper (inches), legible when printed at that size
FIGURE_SIZE = (3.5, 2.6)
#: print resolution
FIGURE_DPI = 300
