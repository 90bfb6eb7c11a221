"""The several-kernel posterior: its density (``logp``, ``lowrank``), rays with the scale
integrated out (``rays``), the mode and quadrature grid (``grid``) and the samplers
(``sampling``)."""
