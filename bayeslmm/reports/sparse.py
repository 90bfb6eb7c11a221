"""``bayeslmm sample --model bayesc|bayesr|bslmm``: a sparse SNP prior's posterior from the
genotypes (docs/sparse-priors.md, "From the command line"), written in GEMMA's ``-bslmm`` layouts

* ``PREFIX.param.txt``: ``chr rs ps n_miss alpha beta gamma`` per SNP, as GEMMA's
  ``BSLMM::WriteParam``: alpha the polygenic effect (0: these models have no GRM term), beta
  the posterior mean effect given inclusion, E(b_j | delta_j = 1, y), per copy of the counted
  (A1) allele, and gamma the posterior inclusion probability, each ``%.6e``;
* ``PREFIX.hyp.txt``: one row per kept draw (chains one after another) of GEMMA's
  hyperparameters that the model has, as ``BSLMM::WriteResult``: h (BayesC: GEMMA's
  h = x / (1 + x), x = trace_G P pi sigma_b2 / sigma_e2, trace_G the mean of diag(ZZ'/P)),
  pve, pi and n_gamma (rho and pge are BSLMM's, whose GRM term these models lack);
* ``--model bslmm`` (GEMMA's own model, :func:`bayeslmm.bayes.sparse.bslmm.bslmm`, sampled on
  GEMMA's genotype scale, the centred A1 allele counts, mean-imputed): the same ``.param.txt``
  with alpha the polygenic per-SNP effect, ``.hyp.txt`` with GEMMA's ``h pve rho pge pi
  n_gamma``, and ``PREFIX.bv.txt``, GEMMA's ``BSLMM::WriteBV``: E(u | y), one ``%.6e`` line
  per sample of the genotype fileset in its order, ``NA`` for those not analysed, no header;

beside the package's own ``PREFIX.posterior.nc`` (the whole DataTree, per-SNP summaries in its
``snp_summary`` group) and ``PREFIX.posterior.tsv`` (:func:`bayeslmm.bayes.summaries.
posterior_summary`).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.bayes.priors import parse_assignments
from bayeslmm.bayes.sparse.genotypes import per_allele, snp_matrix
from bayeslmm.bayes.sparse.spec import sparse_prior_kwargs
from bayeslmm.bayes.summaries import posterior_summary
from bayeslmm.errors import InputError
from bayeslmm.registry import genotype_source, model_family
from bayeslmm.reports.run_log import RESULTS
from bayeslmm.reports.writers import StagedOutputs, write_posterior

__all__ = ["SPARSE_SUFFIXES", "bv_text", "hyp_text", "param_text", "sample_sparse"]

log = logging.getLogger(__name__)
results = logging.getLogger(RESULTS)

SPARSE_SUFFIXES = (".param.txt", ".hyp.txt", ".bv.txt")
#: sample's flags of the REML/GRM route, which a sparse model would silently ignore
_GRM_ROUTE = ("grm", "mgrm", "engine", "ml", "no_constrain", "se_method", "grm_cutoff",
              "grm_bend")


def _e(x) -> str:
    return f"{float(x):.6e}"


def param_text(tree: xr.DataTree, Z: xr.DataArray) -> str:
    """GEMMA's ``.param.txt`` of a sparse posterior on the genotypes ``Z``
    (:func:`~bayeslmm.bayes.sparse.genotypes.snp_matrix`)."""
    snp = tree["snp_summary"]
    pip = snp["pip"].to_numpy()
    if "alpha" in snp:  # BSLMM, sampled on allele counts: GEMMA's alpha and beta as they are
        alpha, beta = snp["alpha"].to_numpy(), snp["beta"].to_numpy()
    else:
        given = np.divide(snp["effect_mean"].to_numpy(), pip, out=np.zeros_like(pip),
                          where=pip > 0)  # E(b_j | delta_j = 1, y) = E(b_j | y) / PIP_j
        alpha, beta = np.zeros_like(pip), per_allele(given, Z["p"].to_numpy())
    rows = [f"{c}\t{r}\t{p}\t{m}\t{_e(a)}\t{_e(b)}\t{_e(g)}" for c, r, p, m, a, b, g in zip(
        Z["chrom"].to_numpy(), Z["snp"].to_numpy(), Z["pos"].to_numpy(),
        Z["n_miss"].to_numpy(), alpha, beta, pip, strict=True)]
    return "\n".join(["chr\trs\tps\tn_miss\talpha\tbeta\tgamma", *rows]) + "\n"


def hyp_text(tree: xr.DataTree, trace_g: float) -> str:
    """GEMMA's ``.hyp.txt``: the draws of h (BayesC, BSLMM), pve, rho and pge (BSLMM), pi
    and n_gamma."""
    post = tree["posterior"]
    flat = {v: post[v].to_numpy().reshape(-1) for v in post.data_vars}
    cols = {}
    if "rho" in flat:  # BSLMM: GEMMA's own hyperparameters
        cols = {k: flat[k] for k in ("h", "pve", "rho", "pge")}
    elif "sigma_b2" in flat and "pi" in flat:  # GEMMA's h with rho = 1 (all effects sparse)
        P = tree.attrs["P"]
        x = trace_g * P * flat["pi"] * flat["sigma_b2"] / flat["sigma_e2"]
        cols["h"] = x / (1.0 + x)
    cols["pve"], cols["pi"] = flat["pve"], flat["pi"]
    lines = [" \t ".join([*cols, "n_gamma"])]
    n_gamma = flat["n_gamma" if "n_gamma" in flat else "n_included"].astype(np.int64)
    for i in range(n_gamma.size):
        lines.append("".join(f"{_e(c[i])}\t" for c in cols.values()) + f"{n_gamma[i]}\t")
    return "\n".join(lines) + "\n"


def bv_text(bv: pd.Series, fileset) -> str:
    """GEMMA's ``.bv.txt``: ``bv`` (by the analysed samples' labels) on every sample of the
    genotype fileset (``fileset``, labels in its order), ``NA`` where a sample was not
    analysed."""
    return "".join("NA\n" if np.isnan(v) else f"{_e(v)}\n" for v in bv.reindex(fileset))


def sample_sparse(args, load, staged: StagedOutputs, prefix: Path) -> Path:
    """The work of ``bayeslmm sample --model bayesc|bayesr|bslmm`` from its flags ``args``;
    ``load``
    reads the inputs (``load(args, kernel=False)``: :class:`bayeslmm.inputs.Inputs` with the
    genotypes and no kernel) once the flags are checked; files staged."""
    a = vars(args)
    for dest in _GRM_ROUTE:
        if a.get(dest) not in (None, False):
            raise InputError(f"--{dest.replace('_', '-')} is for the GRM route; --model "
                             f"{args.model} samples SNP effects from the genotypes alone")
    if a.get("method", "auto") != "auto":
        raise InputError(f"--method is REML's; --model {args.model} fits no REML")
    if genotype_source(a) is None:
        raise InputError(f"--model {args.model} samples SNP effects: give the genotypes "
                         "(--bfile, --pfile, --bgen or --vcf)")
    priors = sparse_prior_kwargs(parse_assignments(args.prior), args.model)
    inp = load(args, kernel=False)
    samples = pd.Index(inp.y.index).map(" ".join) if isinstance(
        inp.y.index, pd.MultiIndex) else pd.Index(inp.y.index)
    Z = snp_matrix(inp.ds, samples, maf=args.maf, geno=args.geno, chromosomes=args.chr,
                   progress=None if not args.quiet else False)
    G = Z.to_numpy()
    if args.model == "bslmm":  # GEMMA's scale: A1 counts, centred (as its -gk 1), mean-imputed
        G = G * np.sqrt(2.0 * Z["p"].to_numpy() * (1.0 - Z["p"].to_numpy()))
    importlib.import_module(f"bayeslmm.bayes.sparse.{args.model}")  # attaches the sampler
    tree = model_family(args.model).build(
        inp.y.to_numpy(), G, inp.X.to_numpy(), **priors, draws=args.draws,
        tune=args.tune, chains=args.chains, seed=args.seed)
    tree["snp_summary"] = tree["snp_summary"].to_dataset().assign_coords(
        snp=("variant", Z["snp"].to_numpy()))
    if "sample_summary" in tree.children:
        bv = tree["sample_summary"]["bv"].to_series().set_axis(samples.astype(str))
        tree["sample_summary"] = tree["sample_summary"].to_dataset().assign_coords(
            sample=bv.index.to_numpy())
        staged.write_text(f"{prefix}.bv.txt", bv_text(bv, inp.ds["sample"].to_numpy()))
    write_posterior(tree, f"{prefix}.posterior.nc", f"{prefix}.posterior.tsv", staged)
    staged.write_text(f"{prefix}.param.txt", param_text(tree, Z))
    trace_g = float(np.einsum("ij,ij->", Z.to_numpy(), Z.to_numpy())) / Z.size
    staged.write_text(f"{prefix}.hyp.txt", hyp_text(tree, trace_g))
    pip = tree["snp_summary"]["pip"].to_series().set_axis(Z["snp"].to_numpy())
    results.info("Posterior summary (%s, %d SNPs):\n%s\nHighest inclusion probabilities:\n%s",
                 args.model, Z.sizes["variant"], posterior_summary(tree).to_string(),
                 pip.sort_values(ascending=False).head(10).to_string())
    return prefix
