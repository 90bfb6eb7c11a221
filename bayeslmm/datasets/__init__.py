"""The embedded demo data set: a small PLINK fileset with a phenotype of known heritability.

400 samples in 80 nuclear families (2 founders + 3 children) x 3,000 SNPs on chromosomes
1-3, and a phenotype simulated with h2 = 0.5 (5 values missing). The files are made by the
seeded script :mod:`bayeslmm.datasets.make_demo`; see ``README.md`` in this folder.

Examples
--------
>>> from bayeslmm.datasets import load_demo
>>> demo = load_demo()
>>> demo.true_h2
0.5
>>> demo.bfile.with_suffix(".bed").exists()
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bayeslmm.errors import FileFormatError

__all__ = ["DemoData", "load_demo"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DemoData:
    """Paths and facts of the demo data set.

    Attributes
    ----------
    bfile : Path
        PLINK prefix (``bfile.with_suffix(".bed")`` etc. exist); pass as ``--bfile``.
    pheno : Path
        Phenotype file ``FID IID y`` with a header line (``NA`` = missing).
    true_h2 : float
        The heritability the phenotype was simulated with.
    n_samples, n_snps, n_families : int
    chromosomes : tuple of str
    seed : int
        Seed of :mod:`bayeslmm.datasets.make_demo`.
    """

    bfile: Path
    pheno: Path
    true_h2: float
    n_samples: int
    n_snps: int
    n_families: int
    chromosomes: tuple[str, ...]
    seed: int

    def phenotype_and_grm(self):
        """The phenotype and the GCTA GRM of the demo data, aligned by FID/IID.

        Returns
        -------
        (pandas.Series, xarray.DataArray)
            y (5 samples with a missing phenotype dropped) and K over the same samples.
        """
        from bayeslmm.data import align_samples
        from bayeslmm.genotypes.kinship import grm
        from bayeslmm.io import read_phenotype

        aligned = align_samples({"GRM": grm(self.bfile), "phenotype": read_phenotype(self.pheno)})
        return aligned["phenotype"], aligned["GRM"].K

    @property
    def description(self) -> str:
        return (f"{self.n_samples} samples in {self.n_families} families x {self.n_snps} SNPs, "
                f"simulated with seed {self.seed}")


def load_demo() -> DemoData:
    """Locate the demo files shipped inside the package.

    Returns
    -------
    DemoData

    Raises
    ------
    FileFormatError
        If a file is missing (a broken installation: regenerate with
        ``python -m bayeslmm.datasets.make_demo``).
    """
    from bayeslmm.datasets import make_demo as md

    bfile = HERE / "demo"
    pheno = HERE / "demo.phen"
    for f in (*(bfile.with_suffix(s) for s in (".bed", ".bim", ".fam")), pheno):
        if not f.exists():
            raise FileFormatError(f"demo file '{f}' is missing; regenerate it with "
                                  "'python -m bayeslmm.datasets.make_demo'")
    n_fam = md.N_FAMILIES
    return DemoData(bfile=bfile, pheno=pheno, true_h2=md.TRUE_H2,
                    n_samples=n_fam * (2 + md.CHILDREN),
                    n_snps=len(md.CHROMOSOMES) * md.SNPS_PER_CHROM, n_families=n_fam,
                    chromosomes=tuple(str(c) for c in md.CHROMOSOMES), seed=md.SEED)
