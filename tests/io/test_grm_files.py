"""GCTA binary GRM files: exact round trips, byte compatibility with plink1.9, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io import GRM, read_grm, write_grm
from bayeslmm.io.grm_files import atomic_write


def _random_grm(N=9, seed=1):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((N, 50))
    K = (Z @ Z.T / 50).astype(np.float32).astype(np.float64)  # representable in float32
    n = rng.integers(40, 51, size=(N, N)).astype(float)
    n = np.minimum(n, n.T)
    ids = pd.DataFrame({"fid": [f"F{i}" for i in range(N)], "iid": [f"I{i}" for i in range(N)]})
    return GRM.from_arrays(K, ids, n_snps=n, M=50)


def test_round_trip_is_exact(tmp_path):
    g = _random_grm()
    write_grm(g, tmp_path / "a")
    r = read_grm(tmp_path / "a")
    assert np.array_equal(r.values, g.values)  # equal bits
    assert np.array_equal(r.n_snps, g.n_snps)
    assert r.ids.equals(g.ids)
    assert r.K.dims == ("sample", "sample_") and r.K["sample"].values[0] == "F0 I0"
    write_grm(r, tmp_path / "b")
    for ext in (".grm.bin", ".grm.N.bin", ".grm.id"):
        assert (tmp_path / f"a{ext}").read_bytes() == (tmp_path / f"b{ext}").read_bytes()
    N = g.N
    assert (tmp_path / "a.grm.bin").stat().st_size == N * (N + 1) // 2 * 4
    assert (tmp_path / "a.grm.id").read_text().splitlines()[0] == "F0\tI0"


def test_layout_is_lower_triangle_row_by_row(tmp_path):
    K = np.array([[1.0, 2.0, 4.0], [2.0, 3.0, 5.0], [4.0, 5.0, 6.0]])
    write_grm(GRM.from_arrays(K, [("a", "a"), ("b", "b"), ("c", "c")], M=1), tmp_path / "t")
    tri = np.fromfile(tmp_path / "t.grm.bin", dtype="<f4")
    np.testing.assert_array_equal(tri, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(np.fromfile(tmp_path / "t.grm.N.bin", dtype="<f4"), 1.0)


@pytest.mark.peer
def test_plink_file_read_then_written_is_byte_identical(plink_mouse_grm, tmp_path):
    g = read_grm(plink_mouse_grm)
    assert g.N == 1940
    write_grm(g, tmp_path / "copy")
    for ext in (".grm.bin", ".grm.N.bin", ".grm.id"):
        a = plink_mouse_grm.with_name(plink_mouse_grm.name + ext).read_bytes()
        assert a == (tmp_path / f"copy{ext}").read_bytes(), ext


def test_truncated_grm_bin_is_a_clear_error(tmp_path):
    write_grm(_random_grm(N=9), tmp_path / "a")
    data = (tmp_path / "a.grm.bin").read_bytes()
    (tmp_path / "a.grm.bin").write_bytes(data[:-4])
    msg = r"a\.grm\.bin' has 176 bytes.*9 IDs need.*180.*truncated"
    with pytest.raises(FileFormatError, match=msg):
        read_grm(tmp_path / "a")


def test_grm_bin_not_matching_ids_is_an_error(tmp_path):
    write_grm(_random_grm(N=9), tmp_path / "a")
    with open(tmp_path / "a.grm.id", "a") as fh:
        fh.write("X\tY\n")
    with pytest.raises(FileFormatError, match=r"180 bytes but its 10 IDs need .*220 bytes"):
        read_grm(tmp_path / "a")


def test_missing_n_file_and_bad_id_file(tmp_path):
    write_grm(_random_grm(N=4), tmp_path / "a")
    (tmp_path / "a.grm.N.bin").unlink()
    assert read_grm(tmp_path / "a").n_snps is None
    (tmp_path / "a.grm.id").write_text("F0 I0\nF1 I1 extra\nF2 I2\nF3 I3\n")
    with pytest.raises(FileFormatError, match=r"a\.grm\.id', line 2"):
        read_grm(tmp_path / "a")
    with pytest.raises(FileFormatError, match="does not exist"):
        read_grm(tmp_path / "nope")


def test_writer_leaves_no_partial_file(tmp_path):
    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.grm.bin", boom)
    assert list(tmp_path.iterdir()) == []
    g = _random_grm(N=3)
    bad = GRM.from_arrays(np.full((3, 3), np.nan), g.ids, M=1)
    with pytest.raises(InputError, match="NaN"):
        write_grm(bad, tmp_path / "y")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    from bayeslmm.io.grm_files import atomic_write

    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "x.txt", lambda fh: fh.write(b"1\n"))
    finally:
        os.umask(umask)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644
