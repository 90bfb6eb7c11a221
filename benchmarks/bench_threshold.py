"""Benchmark and calibration of the threshold (probit) model of a case-control trait.

Run:
    OPENBLAS_NUM_THREADS=2 python benchmarks/bench_threshold.py speed [--n 2000] [--brms]
    OPENBLAS_NUM_THREADS=2 python benchmarks/bench_threshold.py coverage [--reps 200]

``speed``: simulate N samples (K = ZZ'/P from standardized genotypes, liability h2 = 0.5,
prevalence 0.3, population sample), fit the threshold model
(``bayeslmm.bayes.models.threshold`` + ``bayeslmm.bayes.sample(method="nuts")``: NUTS against
Stan's NUTS; the default augmented sampler is benchmarks/bench_binary_scale.py), nutpie,
4 chains x 1,000 draws after 1,000 tuning steps, model compilation included; free
intercept ~ Normal(0, 1), h2 ~ Beta(1, 1)) and report wall time, bulk ESS of h2 and
ESS(h2)/s. With ``--brms`` the same data go to R's brms (``bernoulli(link = "probit")``
with ``(1 | gr(id, cov = K))``, rstan, same priors, same chains and draws) in the same
run, and the ratio is printed.

``coverage``: on the GRM of the gemma-doc HS mice (/usr/share/doc/gemma/example), for each
setting in liability h2 {0.3, 0.6} x prevalence {0.1, 0.3} x {population, case-control}
and each replicate: simulate liabilities on a random subset of mice; "population" keeps
``--n`` mice with y = 1 above the threshold; "case-control" draws the liabilities of a
cohort (all 1,940 mice, or ``--cohort`` random ones) and keeps every case plus as many
controls (P = 0.5, the ascertained design); "case-control+unselected" fits the same cohort
with the unselected animals as what the design makes them, known controls (the design's
exact likelihood; the same seed gives the same cohort, liabilities and sample).
Fit REML (then Lee's transformation with the true K) and the threshold model (threshold
placed from K), and report the coverage of the 95% HDI, the mean posterior and the REML-Lee
bias. The summary is printed as a markdown table (and written as JSON with ``--json``).
"""

from __future__ import annotations

import os

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import bayeslmm  # noqa: E402
from bayeslmm.bayes import sample  # noqa: E402
from bayeslmm.bayes.compare import compare_liability  # noqa: E402
from bayeslmm.bayes.models.threshold import threshold  # noqa: E402

# run_brms (tests/bayes/test_threshold.py) and the peer helpers it imports (tests/peers.py)
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("bayes", "")]


def simulate(N: int, P: int, h2: float, prevalence: float, seed: int):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.5, P)
    G = rng.binomial(2, freq, size=(N, P)).astype(float)
    Z = (G - G.mean(0)) / G.std(0)
    K = Z @ Z.T / P
    liab = Z @ rng.normal(0, np.sqrt(h2 / P), P) + rng.normal(0, np.sqrt(1 - h2), N)
    y = (liab > stats.norm.isf(prevalence)).astype(float)
    return y, K


def ess_h2(idata) -> float:
    import arviz_stats as azs

    return float(azs.ess(idata["posterior"]["h2"].values, method="bulk"))


def speed(args) -> None:
    import threading

    y, K = simulate(args.n, args.p, 0.5, 0.3, seed=1)
    # Centred genotypes leave K singular (rank N - 1); brms needs a positive-definite K, so
    # both models get K + 1e-4 I (a negligible ridge) and fit exactly the same kernel.
    K = K + 1e-4 * np.eye(args.n)
    brms_out: dict = {}
    if args.brms:
        # brms runs alongside (same data, same machine, same load): at N = 2,000 it takes
        # far longer than bayeslmm, and a shared machine's load drifts between runs.
        from test_threshold import run_brms

        tmp = tempfile.mkdtemp()
        bc, bd = args.brms_chains or args.chains, args.brms_draws or args.draws

        def _brms():
            try:
                brms_out["result"] = run_brms(y, K, Path(tmp), chains=bc, draws=bd,
                                              timeout=args.brms_timeout)
            except Exception as err:  # reported below; bayeslmm's row is printed anyway
                brms_out["error"] = err

        thread = threading.Thread(target=_brms)
        thread.start()
    t0 = time.perf_counter()
    dec = bayeslmm.decompose(K)
    t_dec = time.perf_counter() - t0
    # free intercept ~ Normal(0, 1), h2 ~ Beta(1, 1): the model brms fits (see --brms)
    m = threshold(y, dec, store_g=False)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = sample(m, draws=args.draws, tune=args.draws, chains=args.chains, seed=1,
                       progressbar=False, method="nuts")  # NUTS against Stan's NUTS
    wall = time.perf_counter() - t1
    post = idata["posterior"]
    samp = float(post.attrs.get("sampling_time", np.nan))
    ess = ess_h2(idata)
    h2 = post["h2"].values.reshape(-1)
    ss = idata["sample_stats"]
    rows = [(f"bayeslmm threshold (nutpie, {args.chains} x {args.draws})", wall, samp, ess,
             h2.mean(), h2.std())]
    print(f"N = {args.n}, eigendecomposition {t_dec:.1f} s, max R-hat "
          f"{post.attrs['max_rhat']:.3f}, divergences {post.attrs['n_divergences']}; "
          f"tree depth {float(ss['depth'].mean()):.2f}, step size "
          f"{float(ss['step_size'].mean()):.3f}, leapfrog steps per draw "
          f"{float(ss['n_steps'].mean()):.1f}; load average {os.getloadavg()[0]:.1f}")
    print(f"bayeslmm: wall {wall:.1f} s, sampling {samp:.1f} s, ESS(h2) {ess:.0f}, ESS/s "
          f"{ess / wall:.3f}, h2 {h2.mean():.3f} +/- {h2.std():.3f}", flush=True)
    if args.brms:
        thread.join()
        shutil.rmtree(tmp, ignore_errors=True)
        if "error" in brms_out:
            print(f"brms did not finish: {brms_out['error']}")
        else:
            draws, (bwall, bsamp, bess) = brms_out["result"]
            rows.append((f"brms probit + gr(cov = K) (rstan, {bc} x {bd})", bwall, bsamp,
                         bess, draws["h2"].mean(), draws["h2"].std()))
    print(f"\nOPENBLAS_NUM_THREADS={THREADS}; load average {os.getloadavg()[0]:.1f}\n")
    print("| model | wall s (incl. compile) | sampling s | ESS bulk h2 | ESS/s (wall) | "
          "h2 mean | h2 sd |")
    print("|---|---|---|---|---|---|---|")
    for name, w, s, e, mu, sd in rows:
        print(f"| {name} | {w:.1f} | {s:.1f} | {e:.0f} | {e / w:.3f} | {mu:.3f} | {sd:.3f} |")
    if len(rows) == 2:
        ratio = (rows[0][3] / rows[0][1]) / (rows[1][3] / rows[1][1])
        print(f"\nESS(h2)/s (wall) ratio bayeslmm / brms: {ratio:.1f}")


def unpack_mouse(tmp: Path) -> Path:
    """gemma-doc's HS mice fileset decompressed into ``tmp``; returns its prefix."""
    src = Path("/usr/share/doc/gemma/example")
    for ext in ("bed", "bim", "fam"):
        with gzip.open(src / f"mouse_hs1940.{ext}.gz", "rb") as fi, \
                open(tmp / f"mouse_hs1940.{ext}", "wb") as fo:
            shutil.copyfileobj(fi, fo)
    return tmp / "mouse_hs1940"


def mouse_grm() -> np.ndarray:
    import bed_reader

    tmp = Path(tempfile.mkdtemp())
    with bed_reader.open_bed(f"{unpack_mouse(tmp)}.bed") as bed:
        G = bed.read(dtype="float32").astype(np.float64)
    shutil.rmtree(tmp)
    mean, sd = np.nanmean(G, 0), np.nanstd(G, 0)
    ok = sd > 0
    Z = (G[:, ok] - mean[ok]) / sd[ok]
    Z[np.isnan(Z)] = 0.0
    K = Z @ Z.T / Z.shape[1]
    return K / np.mean(np.diag(K))


def one_replicate(K_all, dec_all, h2, prev, design, n, seed, draws, cores=None,
                  cohort=None):
    rng = np.random.default_rng(seed)
    N_all = K_all.shape[0]
    if design == "population":
        idx = np.sort(rng.choice(N_all, n, replace=False))
        Ks = K_all[np.ix_(idx, idx)]
        dec = bayeslmm.decompose(Ks)
        g = dec.U @ (np.sqrt(h2 * dec.S) * rng.standard_normal(dec.rank))
        y = (g + rng.normal(0, np.sqrt(1 - h2), n) > stats.norm.isf(prev)).astype(float)
    else:
        # The cohort: every mouse (cohort None) or a random subset, drawn first so that the
        # two case-control designs of one seed see the same cohort, liabilities and sample.
        if cohort is None or cohort >= N_all:
            K_c, dec_c = K_all, dec_all
        else:
            keep = np.sort(rng.choice(N_all, cohort, replace=False))
            K_c = K_all[np.ix_(keep, keep)]
            dec_c = bayeslmm.decompose(K_c)
        N_c = K_c.shape[0]
        g = dec_c.U @ (np.sqrt(h2 * dec_c.S) * rng.standard_normal(dec_c.rank))
        yall = (g + rng.normal(0, np.sqrt(1 - h2), N_c) > stats.norm.isf(prev))
        cases = np.flatnonzero(yall)
        controls = rng.choice(np.flatnonzero(~yall), cases.size, replace=False)
        if design == "case-control+unselected":
            # The same ascertained sample, with the unselected genotyped animals added as
            # what the design makes them: known controls (all cases were selected). The
            # selection then depends on recorded phenotypes only: the exact likelihood.
            y, dec = yall.astype(float), dec_c
        else:
            idx = np.sort(np.concatenate([cases, controls]))
            y = yall[idx].astype(float)
            dec = bayeslmm.decompose(K_c[np.ix_(idx, idx)])
    m = threshold(y, dec, prevalence=prev, store_g=False)
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = sample(m, draws=draws, tune=draws, chains=2, seed=seed, progressbar=False,
                       check=False, cores=cores, log_likelihood=False, log_prior=False)
    cpu = time.process_time() - t0
    fit = bayeslmm.reml(y, dec)
    tab = compare_liability(fit, idata, prev, true_h2=h2)  # the convention: 95% HDI
    th, rl = tab.loc["threshold posterior"], tab.loc["REML (Lee transform)"]
    # the equal-tailed interval too, whatever the package's convention (two coverages)
    eti = np.quantile(idata["posterior"]["h2"].values, [0.025, 0.975])
    return {"N": int(y.size), "P": float(y.mean()), "post_mean": float(th.h2),
            "post_sd": float(th.se), "hdi": [float(th.lower), float(th.upper)],
            "eti": [float(eti[0]), float(eti[1])],
            "covered": bool(th.lower <= h2 <= th.upper),
            "eti_covered": bool(eti[0] <= h2 <= eti[1]), "reml_lee": float(rl.h2),
            "reml_covered": bool(rl.lower <= h2 <= rl.upper),
            "rhat": float(idata["posterior"].attrs["max_rhat"]), "ess_h2": ess_h2(idata),
            "cpu_s": cpu}


def coverage(args) -> None:
    K_all = mouse_grm()
    dec_all = bayeslmm.decompose(K_all)
    settings = [(d, h2, prev) for d in args.designs for h2 in args.h2
                for prev in args.prevalence]
    results: dict[str, list] = {f"{d} h2={h2} K={prev}": [] for d, h2, prev in settings}
    t0 = time.perf_counter()
    # Replicates outermost, so that a run stopped by --max-minutes still covers every setting.
    for r in range(args.start_rep, args.start_rep + args.reps):
        if time.perf_counter() - t0 > 60 * args.max_minutes:
            print(f"stopped after {r} replicates (--max-minutes {args.max_minutes})")
            break
        for design, h2, prev in settings:
            rep = one_replicate(K_all, dec_all, h2, prev, design, args.n, 1000 * r + 7,
                                args.draws, args.cores, args.cohort)
            results[f"{design} h2={h2} K={prev}"].append(rep)
            print(f"rep {r} {design} h2={h2} K={prev}: {rep} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if args.json:  # after every round, so that a stopped run keeps what it did
            Path(args.json).write_text(json.dumps(results, indent=1))
    for f in args.merge:
        for k, v in json.loads(Path(f).read_text()).items():
            results.setdefault(k, []).extend(v)
    results = {k: v for k, v in results.items() if v}
    n_reps = min(len(v) for v in results.values())
    print(f"\n{n_reps} replicates per setting, 2 chains x {args.draws} draws\n")
    print("| design | h2 | K | mean N | threshold: 95% HDI coverage | 95% ETI coverage | "
          "posterior mean - h2 | REML-Lee - h2 | REML-Lee Wald 95% coverage |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, reps in results.items():
        design, h2s, ks = key.split()
        h2 = float(h2s.split("=")[1])
        cov = np.mean([r["covered"] for r in reps])
        se = np.sqrt(cov * (1 - cov) / len(reps))
        # runs before the ETI was recorded have none: shown as "-"
        et = [r["eti_covered"] for r in reps if "eti_covered" in r]
        et_s = f"{np.mean(et):.3f} ({len(et)})" if et else "-"
        bias = np.mean([r["post_mean"] for r in reps]) - h2
        bse = np.std([r["post_mean"] for r in reps]) / np.sqrt(len(reps))
        rbias = np.mean([r["reml_lee"] for r in reps]) - h2
        rbse = np.std([r["reml_lee"] for r in reps]) / np.sqrt(len(reps))
        print(f"| {design} | {h2} | {ks.split('=')[1]} | {np.mean([r['N'] for r in reps]):.0f} "
              f"| {cov:.3f} +/- {se:.3f} | {et_s} | {bias:+.3f} +/- {bse:.3f} | {rbias:+.3f} +/- "
              f"{rbse:.3f} | {np.mean([r['reml_covered'] for r in reps]):.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--n", type=int, default=2000)
    s.add_argument("--p", type=int, default=5000)
    s.add_argument("--draws", type=int, default=1000)
    s.add_argument("--chains", type=int, default=4)
    s.add_argument("--brms", action="store_true", help="also fit brms on the same data")
    s.add_argument("--brms-chains", type=int, default=None, help="default: --chains")
    s.add_argument("--brms-draws", type=int, default=None,
                   help="default: --draws (brms is slow at N = 2,000: ESS/s is the fair ratio)")
    s.add_argument("--brms-timeout", type=float, default=4 * 3600, help="seconds")
    c = sub.add_parser("coverage")
    c.add_argument("--reps", type=int, default=200)
    c.add_argument("--n", type=int, default=500, help="samples per population replicate")
    c.add_argument("--draws", type=int, default=500)
    c.add_argument("--h2", type=float, nargs="+", default=[0.3, 0.6])
    c.add_argument("--prevalence", type=float, nargs="+", default=[0.1, 0.3])
    c.add_argument("--designs", nargs="+", default=["population", "case-control"],
                   choices=["population", "case-control", "case-control+unselected"])
    c.add_argument("--cohort", type=int, default=None,
                   help="case-control designs: ascertain from a random cohort of this many "
                        "mice in each replicate (default: all 1,940)")
    c.add_argument("--cores", type=int, default=1, help="chains run on this many cores")
    c.add_argument("--start-rep", type=int, default=0,
                   help="first replicate (seeds 1000 r + 7): continue an earlier run")
    c.add_argument("--merge", nargs="*", default=[],
                   help="JSON files of earlier runs to summarise together with this one")
    c.add_argument("--json", default=None)
    c.add_argument("--max-minutes", type=float, default=float("inf"),
                   help="stop starting new replicates after this long; summarise what ran")
    args = ap.parse_args()
    speed(args) if args.what == "speed" else coverage(args)


if __name__ == "__main__":
    main()
