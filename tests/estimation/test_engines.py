"""reml_genotypes: engine choice (both directions), the eigen path equal to reml on the GRM,
and the passes on a real dask.distributed LocalCluster equal to the threaded scheduler's."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import bayeslmm
from bayeslmm.datasets import load_demo
from bayeslmm.errors import AlignmentError, InputError
from bayeslmm.estimation.engines import choose_engine, reml_genotypes
from bayeslmm.genotypes.operator import GenotypeOperator
from bayeslmm.io import read_plink
from bayeslmm.reports.hsq import hsq_text

GiB = 2**30


@pytest.mark.parametrize(("N", "P", "mem", "engine"), [
    (2_000, 50_000, 16 * GiB, "eigen"),
    (20_000, 5_000, 16 * GiB, "lowrank"),
    (20_000, 50_000, 16 * GiB, "krylov"),
    (200_000, 8_000, 16 * GiB, "krylov"),   # Z (N x P, 12 GiB) does not fit in half the memory
    (50_000, 20_000, 40 * GiB, "krylov"),   # 22 GiB at the peak (measured: 24 GiB)
    (50_000, 20_000, 48 * GiB, "lowrank"),
    (10_000, 50_000, 2 * GiB, "krylov"),    # 2.2 GiB of N x N matrices do not fit
])
def test_choose_engine(N, P, mem, engine):
    chosen, why = choose_engine(N, P, mem)
    assert chosen == engine
    assert f"N={N}" in why or f"P={P}" in why


def test_eigen_path_is_reml_on_the_grm(caplog):
    demo = load_demo()
    y, K = demo.phenotype_and_grm()
    with caplog.at_level(logging.INFO, logger="bayeslmm.estimation.engines"):
        fit = reml_genotypes(demo.bfile, y, progress=False)
    assert "chose 'eigen'" in caplog.text
    ref = bayeslmm.reml(y, K)
    assert fit.N == ref.N == 395
    assert abs(fit.h2 - ref.h2) < 1e-10 and abs(fit.loglik - ref.loglik) < 1e-9


def test_krylov_on_demo_close_to_eigen():
    demo = load_demo()
    y, K = demo.phenotype_and_grm()
    fit = reml_genotypes(demo.bfile, y, engine="krylov", n_probes=20, n_steps=15,
                         progress=False)
    ref = bayeslmm.reml(y, K)
    assert fit.info["passes"] == 16 and fit.info["bed_bytes_per_pass"] == 100 * 3000
    assert abs(fit.h2 - ref.h2) < 0.003 + 3 * fit.h2_mc_se
    assert "V(G)/Vp MC error" in hsq_text(fit)


def test_bad_input():
    demo = load_demo()
    y, _ = demo.phenotype_and_grm()
    with pytest.raises(InputError, match="engine must be one of"):
        reml_genotypes(demo.bfile, y, engine="fast")
    bad = y.copy()
    bad.index = [f"x{i}" for i in range(bad.size)]
    with pytest.raises(AlignmentError, match="not in the genotypes"):
        reml_genotypes(demo.bfile, bad)
    with pytest.raises(AlignmentError, match="give y with 'FID IID' labels"):
        reml_genotypes(demo.bfile, y.to_numpy())


@pytest.mark.slow
# 4 Lanczos steps keep it quick: the test compares schedulers, not the solve's convergence.
@pytest.mark.filterwarnings("ignore::bayeslmm.errors.ConvergenceWarning")
def test_distributed_local_cluster_equals_threads(monkeypatch):
    """Two worker processes, one thread each, 512 MiB each: the operator product and the
    Krylov REML equal the threaded scheduler's numbers to 1e-10, with the int8 cache on the
    workers and with the packed .bed read by them; a worker killed (SIGKILL) after the
    second pass is replaced by its nanny, the cache chunks it held are decoded again, and
    the run ends with the identical result."""
    import os
    import signal

    distributed = pytest.importorskip("distributed")
    demo = load_demo()
    y, _ = demo.phenotype_and_grm()
    ds = read_plink(demo.bfile)
    V = np.random.default_rng(0).standard_normal((ds.sizes["sample"], 5))
    local = GenotypeOperator(ds, chunk_size=1000, progress=False).matmat(V)
    kw = dict(engine="krylov", n_probes=6, n_steps=4, chunk_size=1000, progress=False)
    fit_threads = reml_genotypes(ds, y, **kw)
    packed_threads = reml_genotypes(ds, y, cache="packed", **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit="512MiB", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = GenotypeOperator(ds, chunk_size=1000, client=client, progress=False).matmat(V)
        fit_dist = reml_genotypes(ds, y, client=client, **kw)
        fit_packed = reml_genotypes(ds, y, client=client, cache="packed", **kw)
        assert len(client.scheduler_info()["workers"]) == 2
        killed = []
        compute = GenotypeOperator.compute

        def kill_after_two(self, *c):
            if self.stats.passes == 2 and not killed:
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return compute(self, *c)

        monkeypatch.setattr(GenotypeOperator, "compute", kill_after_two)
        fit_killed = reml_genotypes(ds, y, client=client, **kw)
        assert killed and fit_killed.info["cache"] == "int8"
        client.wait_for_workers(2, timeout=60)
        assert killed[0] not in client.run(os.getpid).values()  # replaced
    np.testing.assert_allclose(remote, local, rtol=0, atol=1e-10)
    assert fit_dist.info["scheduler"] == "distributed" and fit_packed.info["cache"] == "packed"
    for fit, ref in ((fit_dist, fit_threads), (fit_packed, packed_threads)):
        assert abs(fit.h2 - ref.h2) < 1e-10 and abs(fit.loglik - ref.loglik) < 1e-10
    assert fit_killed.h2 == fit_dist.h2 and fit_killed.loglik == fit_dist.loglik
