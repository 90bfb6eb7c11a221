"""Binary traits at scale: the augmented sampler of the threshold model against the Gaussian
posterior of the same 0/1 data, NUTS on the threshold model, the mouse command, large N, and
simulation-based calibration.

Run (each mode prints a markdown table; docs/binary.md records the results):
    python benchmarks/bench_binary_scale.py speed [--n 2000] [--nuts]
    python benchmarks/bench_binary_scale.py mouse
    python benchmarks/bench_binary_scale.py large [--n 20000] [--p 5000] [--chains 8]
    python benchmarks/bench_binary_scale.py exact [--n 1000] [--nuts-draws 2500]
    python benchmarks/bench_binary_scale.py sbc [--reps 200] [--n 500] [--related]

``speed``: N unrelated simulated samples (K = ZZ'/P, liability h2 0.5, prevalence 0.3,
free intercept ~ Normal(0, 1), h2 ~ Beta(1, 1)); in the same run, on the same kernel and
0/1 phenotype: the Gaussian posterior (``marginal_grm``, nutpie, 4 x 1,000), the threshold
model by the augmented sampler (4 x 1,000 draws of 4 sweeps) and, with ``--nuts``, by NUTS.
Wall time (model building and sampling; the eigendecomposition is shared and reported
apart) and bulk ESS(h2).

``mouse``: ``bayeslmm sample --model threshold --prevalence 0.2`` on GEMMA's HS mice
(N = 1,410 with phenotype 1, dichotomised at its 80th percentile), the whole command timed.

``large``: N samples from P < N simulated SNPs: the low-rank route (``threshold(y, Z=Z)``,
thin SVD) -- the decomposition and the sampler timed apart.

``exact``: N = 1,000 unrelated samples, fixed prevalence: the augmented sampler (4 x 2,500)
against a long NUTS run of the same model; difference of the posterior means in MCSE, ratio
of the SDs.

``sbc``: simulation-based calibration (Talts et al. 2018): per replicate h2 ~ Beta(1, 1)
and the intercept ~ Normal(0, 1) drawn from the prior, liabilities simulated, the posterior
sampled (2 chains x 400 draws of 4 sweeps, every 4th kept: 200 nearly independent) and the
rank of the true h2 among them recorded; ``--related`` uses random subsets of the HS mice GRM. A
chi-square test of uniform ranks (10 bins) is printed.
"""

from __future__ import annotations

import os

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import bayeslmm  # noqa: E402
from bayeslmm.bayes import sample  # noqa: E402
from bayeslmm.bayes.models.marginal import marginal_grm  # noqa: E402
from bayeslmm.bayes.models.threshold import threshold  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_threshold import mouse_grm, simulate, unpack_mouse  # noqa: E402


def ess_h2(idata) -> float:
    import arviz_stats as azs

    return float(azs.ess(idata["posterior"]["h2"].values, method="bulk"))


def timed(fn):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
    return out, time.perf_counter() - t0


def row(name, wall, idata) -> tuple:
    h2 = idata["posterior"]["h2"].values.reshape(-1)
    return name, wall, ess_h2(idata), h2.mean(), h2.std()


def table(rows, ref: float | None = None) -> None:
    print(f"\nOPENBLAS_NUM_THREADS={THREADS}; load average {os.getloadavg()[0]:.1f}\n")
    print("| run | wall s | ESS bulk h2 | ESS/s | wall / Gaussian | h2 mean | h2 sd |")
    print("|---|---|---|---|---|---|---|")
    for name, w, e, mu, sd in rows:
        rel = f"{w / ref:.1f}" if ref else "-"
        print(f"| {name} | {w:.1f} | {e:.0f} | {e / w:.2f} | {rel} | {mu:.3f} | {sd:.3f} |")


def speed(args) -> None:
    y, K = simulate(args.n, args.p, 0.5, 0.3, seed=1)
    dec, t_dec = timed(lambda: bayeslmm.decompose(K))
    print(f"N = {args.n}, P = {args.p}: eigendecomposition {t_dec:.1f} s (shared)")
    rows = []
    idata, w = timed(lambda: sample(marginal_grm(y, dec), draws=1000, tune=1000, chains=4,
                                    seed=1, progressbar=False))
    rows.append(row("Gaussian posterior of the 0/1 data (nutpie, 4 x 1,000)", w, idata))
    gauss = w
    m = threshold(y, dec, store_g=False)
    idata, w = timed(lambda: sample(m, draws=1000, tune=1000, chains=4, seed=1,
                                    progressbar=False))
    rows.append(row("threshold, augmented sampler (4 x 1,000 draws of 4 sweeps)", w, idata))
    idata, w = timed(lambda: sample(m, draws=1000, tune=250, chains=4, seed=1, thin=1,
                                    progressbar=False))
    rows.append(row("threshold, augmented sampler (4 x 1,000 sweeps after 250, thin 1)", w,
                    idata))
    if args.nuts:
        idata, w = timed(lambda: sample(m, draws=1000, tune=1000, chains=4, seed=1,
                                        progressbar=False, method="nuts"))
        rows.append(row("threshold, NUTS (nutpie, 4 x 1,000)", w, idata))
    table(rows, gauss)


def mouse(args) -> None:
    import shutil

    import pandas as pd

    tmp = Path(tempfile.mkdtemp())
    unpack_mouse(tmp)
    fam = pd.read_csv(tmp / "mouse_hs1940.fam", sep=r"\s+", header=None)
    y = pd.to_numeric(fam[5], errors="coerce")
    y[y == -9] = np.nan
    cut = np.nanquantile(y, 0.8)
    b = np.where(np.isnan(y), "NA", np.where(y > cut, "1", "0"))
    (tmp / "pheno.txt").write_text("".join(f"{f} {i} {v}\n" for f, i, v in
                                           zip(fam[0], fam[1], b, strict=True)))
    exe = Path(sys.executable).with_name("bayeslmm")  # the console script, as a user runs it
    cmd = [str(exe), "sample", "--bfile", str(tmp / "mouse_hs1940"),
           "--pheno", str(tmp / "pheno.txt"), "--model", "threshold", "--prevalence", "0.2",
           "--out", str(tmp / "out"), "--seed", "1"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(proc.stdout[-3000:])
    print(proc.stderr[-3000:])
    print(f"\n`bayeslmm sample --model threshold --prevalence 0.2` on the HS mice "
          f"(N = {int((b != 'NA').sum())}, {int((b == '1').sum())} cases): exit "
          f"{proc.returncode}, wall {wall:.1f} s; load average {os.getloadavg()[0]:.1f}")
    shutil.rmtree(tmp, ignore_errors=True)


def large(args) -> None:
    rng = np.random.default_rng(3)
    freq = rng.uniform(0.05, 0.5, args.p)
    G = rng.binomial(2, freq, size=(args.n, args.p)).astype(np.float64)
    Z = (G - G.mean(0)) / G.std(0)
    del G
    liab = Z @ rng.normal(0, np.sqrt(0.5 / args.p), args.p) + rng.normal(0, np.sqrt(0.5),
                                                                         args.n)
    y = (liab > stats.norm.isf(0.1)).astype(float)
    from bayeslmm.covariance.decomposition import decompose_genotypes

    dec, t_dec = timed(lambda: decompose_genotypes(Z))  # K = ZZ'/P
    m = threshold(y, dec, prevalence=0.1, store_g=False)
    # burn-in: 250 sweeps (there is nothing to adapt; R-hat checks the start is gone). At
    # this size a sweep is two reads of U (memory-bound): 8 chains cost what 4 do.
    idata, w = timed(lambda: sample(m, draws=args.draws, tune=250, chains=args.chains,
                                    seed=1, progressbar=False))
    print(f"N = {args.n}, P = {args.p} (rank {dec.rank}), prevalence 0.1, liability h2 0.5: "
          f"thin SVD {t_dec:.1f} s, augmented sampler {args.chains} x {args.draws} draws of 4 "
          f"sweeps after 250: {w:.1f} s (max R-hat "
          f"{idata['posterior'].attrs['max_rhat']:.3f}), total "
          f"{t_dec + w:.1f} s")
    table([row("threshold, augmented, low rank", w, idata)])


def exact(args) -> None:
    import arviz_stats as azs

    y, K = simulate(args.n, 5000, 0.5, 0.3, seed=4)
    dec = bayeslmm.decompose(K)
    m = threshold(y, dec, prevalence=0.3, store_g=False)
    runs = {}
    runs["augmented"], wa = timed(lambda: sample(m, draws=2500, tune=1000, chains=4, seed=1,
                                                 progressbar=False))
    runs["nuts"], wn = timed(lambda: sample(m, draws=args.nuts_draws, tune=1000, chains=4,
                                            seed=1, progressbar=False, method="nuts"))
    print(f"N = {args.n}, prevalence 0.3 fixed, h2 ~ Beta(1, 1)\n")
    print("| sampler | draws | wall s | ESS bulk h2 | h2 mean | MCSE | h2 sd |")
    print("|---|---|---|---|---|---|---|")
    st = {}
    for (k, idata), w in zip(runs.items(), (wa, wn), strict=True):
        h = idata["posterior"]["h2"]
        mc = float(azs.mcse(idata, var_names=["h2"])["h2"])
        st[k] = (float(h.mean()), mc, float(h.std()))
        print(f"| {k} | 4 x {h.sizes['draw']} | {w:.0f} | {ess_h2(idata):.0f} | "
              f"{st[k][0]:.4f} | {mc:.4f} | {st[k][2]:.4f} |")
    z = (st["augmented"][0] - st["nuts"][0]) / np.hypot(st["augmented"][1], st["nuts"][1])
    print(f"\ndifference of the means: {z:.2f} combined MCSE; SD ratio "
          f"{st['augmented'][2] / st['nuts'][2]:.3f}")


def sbc(args) -> None:
    rng = np.random.default_rng(args.seed)
    K_all = mouse_grm() if args.related else None
    ranks, rhat, t0 = [], [], time.perf_counter()
    for rep in range(args.reps):
        h2 = rng.uniform()
        mu = rng.normal()
        if K_all is not None:
            idx = np.sort(rng.choice(K_all.shape[0], args.n, replace=False))
            K = K_all[np.ix_(idx, idx)]
        else:
            Z = rng.standard_normal((args.n, 2 * args.n))
            K = Z @ Z.T / Z.shape[1]
        dec = bayeslmm.decompose(K)
        sg = h2 / (1 - h2)
        g = dec.U @ (np.sqrt(sg * dec.S) * rng.standard_normal(dec.rank))
        y = (mu + g + rng.standard_normal(args.n) > 0).astype(float)
        if y.min() == y.max():
            continue  # no cases or no controls: no model to fit (the prior allows it)
        m = threshold(y, dec, store_g=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = sample(m, draws=400, tune=200, chains=2, seed=rep, progressbar=False,
                           check=False, log_prior=False)
        d = idata["posterior"]["h2"].values[:, ::4].reshape(-1)  # 200 draws, 16 sweeps apart
        ranks.append(int(np.sum(d < h2)))
        rhat.append(idata["posterior"].attrs["max_rhat"])
        if (rep + 1) % 20 == 0:
            print(f"{rep + 1} replicates, {time.perf_counter() - t0:.0f} s", flush=True)
    ranks = np.asarray(ranks)
    L = 2 * 400 // 4
    counts = np.histogram(ranks, bins=10, range=(0, L + 1))[0]
    chi2 = stats.chisquare(counts)
    print(f"\nSBC, {'HS mice GRM subsets' if args.related else 'unrelated'}, N = {args.n}: "
          f"{ranks.size} replicates, rank bins (10) {counts.tolist()}, chi-square p = "
          f"{chi2.pvalue:.3f}; max R-hat median {np.median(rhat):.3f}; "
          f"{time.perf_counter() - t0:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--n", type=int, default=2000)
    s.add_argument("--p", type=int, default=5000)
    s.add_argument("--nuts", action="store_true")
    sub.add_parser("mouse")
    g = sub.add_parser("large")
    g.add_argument("--n", type=int, default=20000)
    g.add_argument("--p", type=int, default=5000)
    g.add_argument("--chains", type=int, default=8)
    g.add_argument("--draws", type=int, default=500)
    e = sub.add_parser("exact")
    e.add_argument("--n", type=int, default=1000)
    e.add_argument("--nuts-draws", type=int, default=2500)
    c = sub.add_parser("sbc")
    c.add_argument("--reps", type=int, default=200)
    c.add_argument("--n", type=int, default=500)
    c.add_argument("--related", action="store_true")
    c.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    {"speed": speed, "mouse": mouse, "large": large, "exact": exact, "sbc": sbc}[args.mode](
        args)


if __name__ == "__main__":
    main()
