"""Bad-input suite: corrupted copies of the demo fileset given to the command line.

Every case is generated from the embedded demo data (truncations, byte flips, shuffled and
duplicated lines, encodings, extreme values, bad arguments) and run in-process through
``bayeslmm.cli.app.main``. For each one the run must end either

* in a clean error: non-zero exit status, exactly one line on stderr starting with
  ``bayeslmm`` and containing ``error:``, no traceback, and no new file in the output folder
  (hidden staging files included); or
* in a correct result: exit 0 and a ``.hsq`` whose h2 equals the clean run's (``same``
  cases: the corruption does not change the data, e.g. a byte-order mark or shuffled lines),
  or is a valid estimate in [0, 1] on the samples left (``any`` cases, e.g. a digit flipped).

The expected outcome of each case is stated (``error``, ``same`` or ``any``) and checked both
ways: an ``error`` case that runs, or a ``same`` case that fails, is a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bayeslmm.cli.app import main
from bayeslmm.datasets import load_demo

DEMO = load_demo()
SRC = {
    "demo.bed": DEMO.bfile.with_suffix(".bed").read_bytes(),
    "demo.bim": DEMO.bfile.with_suffix(".bim").read_bytes(),
    "demo.fam": DEMO.bfile.with_suffix(".fam").read_bytes(),
    "demo.phen": DEMO.pheno.read_bytes(),
}


@dataclass(frozen=True)
class Case:
    """``files`` maps a file name to a function of the clean bytes giving the corrupted
    bytes; ``argv`` uses ``{d}`` for the case's folder (holding the demo files, corrupted
    ones replaced) and ``{o}`` for the output prefix."""

    name: str
    argv: str
    expect: str  # "error", "same", "any" or "flagged" (h2 not identifiable: SE nan)
    files: tuple[tuple[str, Callable[[bytes], bytes]], ...] = ()
    match: str = ""  # a word the error line must contain
    xfail: str = ""  # a known defect being fixed elsewhere (strict=False)


REML_G = "reml --grm {d}/g --pheno {d}/demo.phen --out {o} --quiet"
REML_B = "reml --bfile {d}/demo --pheno {d}/demo.phen --out {o} --quiet"
GRM_B = "grm --bfile {d}/demo --out {o} --quiet"
SAMPLE = "sample --grm {d}/g --pheno {d}/demo.phen --out {o} --quiet"
BLUP = "blup --grm {d}/g --bfile {d}/demo --pheno {d}/demo.phen --out {o} --quiet"
ASSOC = ("assoc --grm {d}/g --bfile {d}/demo --pheno {d}/demo.phen --test grammar-gamma "
         "--out {o} --quiet")


def _lines(b: bytes) -> list[bytes]:
    return b.splitlines(keepends=True)


def _shuffle(seed: int, keep_header: bool) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        ls = _lines(b)
        head, body = (ls[:1], ls[1:]) if keep_header else ([], ls)
        order = np.random.default_rng(seed).permutation(len(body))
        return b"".join(head + [body[i] for i in order])
    return f


def _dup(k: int) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        ls = _lines(b)
        return b"".join(ls[: k + 1] + [ls[k]] + ls[k + 1:])
    return f


def _drop(k: int) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        ls = _lines(b)
        return b"".join(ls[:k] + ls[k + 1:])
    return f


def _trunc(frac: float) -> Callable[[bytes], bytes]:
    return lambda b: b[: int(len(b) * frac)]


def _flip(seed: int, lo: float = 0.0, hi: float = 1.0) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        rng = np.random.default_rng(seed)
        a = bytearray(b)
        i = int(rng.integers(int(len(a) * lo), int(len(a) * hi)))
        a[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(a)
    return f


def _value(k: int, text: bytes) -> Callable[[bytes], bytes]:
    """Replace the phenotype of data line k (1-based after the header) by ``text``."""
    def f(b: bytes) -> bytes:
        ls = _lines(b)
        parts = ls[k].split()
        ls[k] = b" ".join(parts[:2] + [text]) + b"\n"
        return b"".join(ls)
    return f


def _all_values(fn: Callable[[float], str]) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        ls = _lines(b)
        out = [ls[0]]
        for ln in ls[1:]:
            fid, iid, v = ln.split()
            val = b"NA" if v == b"NA" else fn(float(v)).encode()
            out.append(b" ".join([fid, iid, val]) + b"\n")
        return b"".join(out)
    return f


def _write(name: str, content: bytes) -> Callable[[bytes], bytes]:
    return lambda b: content


def _cases() -> list[Case]:
    c: list[Case] = []
    P = "demo.phen"
    # ---- phenotype: encodings and layout that do not change the data
    c += [
        Case("phen-bom", REML_G, "same", ((P, lambda b: b"\xef\xbb\xbf" + b),)),
        Case("phen-crlf", REML_G, "same", ((P, lambda b: b.replace(b"\n", b"\r\n")),)),
        Case("phen-cr", REML_G, "same", ((P, lambda b: b.replace(b"\n", b"\r")),)),
        Case("phen-tabs", REML_G, "same", ((P, lambda b: b.replace(b" ", b"\t")),)),
        Case("phen-blank-lines", REML_G, "same", ((P, lambda b: b.replace(b"\n", b"\n\n")),)),
        Case("phen-trailing-spaces", REML_G, "same",
             ((P, lambda b: b.replace(b"\n", b"   \n")),)),
        Case("phen-no-final-newline", REML_G, "same", ((P, lambda b: b.rstrip(b"\n")),)),
        Case("phen-no-header", REML_G, "same", ((P, lambda b: b"".join(_lines(b)[1:])),)),
        Case("phen-utf16", REML_G, "error", ((P, lambda b: b.decode().encode("utf-16")),),
             "UTF-8"),
        Case("phen-latin1-id", REML_G, "error",
             ((P, lambda b: b.replace(b"FAM003_P1", b"FAM003_\xe91")),), "UTF-8"),
        Case("phen-nul-byte", REML_G, "any", ((P, lambda b: b.replace(b"12.1", b"1\x002.1", 1)),)),
        Case("phen-empty", REML_G, "error", ((P, _write(P, b"")),), "empty"),
        Case("phen-header-only", REML_G, "error", ((P, lambda b: _lines(b)[0]),)),
        Case("phen-binary", REML_G, "error", ((P, lambda b: SRC["demo.bed"][:2000]),)),
        Case("phen-one-column", REML_G, "error",
             ((P, lambda b: b"".join(ln.split()[0] + b"\n" for ln in _lines(b))),)),
        Case("phen-ragged", REML_G, "error", ((P, _value(7, b"1.0 2.0")),), "fields"),
        Case("phen-nonnumeric", REML_G, "error", ((P, _value(9, b"tall")),), "not a number"),
        Case("phen-comma-decimal", REML_G, "error", ((P, _value(9, b"12,5")),)),
        Case("phen-inf", REML_G, "error", ((P, _value(3, b"inf")),)),
        Case("phen-minus-inf", REML_G, "error", ((P, _value(3, b"-inf")),)),
        Case("phen-1e300", REML_G, "error", ((P, _value(3, b"1e300")),)),
        Case("phen-1e400", REML_G, "error", ((P, _value(3, b"1e400")),)),
        Case("phen-all-missing", REML_G, "error", ((P, _all_values(lambda v: "NA")),)),
        Case("phen-constant", REML_G, "error", ((P, _all_values(lambda v: "3.5")),),
             "constant"),
        Case("phen-all-1e300", REML_G, "error", ((P, _all_values(lambda v: f"{v:.6g}e300")),)),
        Case("phen-all-tiny", REML_G, "error", ((P, _all_values(lambda v: f"{v - 10:.6g}e-150")),)),
        Case("phen-offset-1e6", REML_G, "same",
             ((P, _all_values(lambda v: f"{v + 1e6:.10f}")),)),
        Case("phen-times-1e6", REML_G, "same", ((P, _all_values(lambda v: f"{v * 1e6:.10g}")),)),
        Case("phen-times-1e-6", REML_G, "same", ((P, _all_values(lambda v: f"{v * 1e-6:.10g}")),)),
        Case("phen-all-1e60", REML_G, "error", ((P, _all_values(lambda v: f"{v:.6g}e60")),)),
        Case("phen-two-distinct", REML_G, "any",
             ((P, _all_values(lambda v: "1" if v > 10 else "0")),)),
        Case("phen-mpheno-2", REML_G + " --mpheno 2", "error", (), "mpheno"),
        Case("phen-no-shared-ids", REML_G, "error",
             ((P, lambda b: b.replace(b"FAM", b"XAM")),), "share 0"),
        Case("phen-dup-sample", REML_G, "error", ((P, _dup(5)),), "appears"),
        Case("phen-missing-minus9", REML_G, "any", ((P, _value(3, b"-9")),)),
        Case("phen-header-typo-first-row", REML_G, "any",
             ((P, lambda b: b"".join(_lines(b)[1:]).replace(b"12.152592", b"12.1S2592", 1)),)),
        Case("phen-missing-file", "reml --grm {d}/g --pheno {d}/nope.phen --out {o} --quiet",
             "error", (), "does not exist"),
        Case("phen-is-folder", "reml --grm {d}/g --pheno {d} --out {o} --quiet", "error", ()),
    ]
    for s in range(4):
        c.append(Case(f"phen-shuffled-{s}", REML_G, "same", ((P, _shuffle(s, True)),)))
    for k in (1, 100, 399):
        c.append(Case(f"phen-drop-line-{k}", REML_G, "any", ((P, _drop(k)),)))
    for frac in (0.001, 0.01, 0.2, 0.5, 0.77, 0.999):
        c.append(Case(f"phen-trunc-{frac}", REML_G, "any", ((P, _trunc(frac)),)))
    for s in range(16):
        c.append(Case(f"phen-flip-{s}", REML_G, "any", ((P, _flip(s, 0.02)),)))
    # ---- PLINK fileset
    B, M, F = "demo.bed", "demo.bim", "demo.fam"
    c += [
        Case("bed-empty", GRM_B, "error", ((B, _write(B, b"")),)),
        Case("bed-magic", GRM_B, "error", ((B, lambda b: b"\x00" + b[1:]),), "PLINK 1"),
        Case("bed-individual-major", GRM_B, "error", ((B, lambda b: b[:2] + b"\x00" + b[3:]),)),
        Case("bed-extra-byte", GRM_B, "error", ((B, lambda b: b + b"\x00"),), "bytes"),
        Case("bed-is-text", GRM_B, "error", ((B, lambda b: SRC["demo.phen"]),)),
        Case("bim-bom", GRM_B, "same", ((M, lambda b: b"\xef\xbb\xbf" + b),)),
        Case("fam-bom", REML_B, "same", ((F, lambda b: b"\xef\xbb\xbf" + b),)),
        Case("fam-crlf", REML_B, "same", ((F, lambda b: b.replace(b"\n", b"\r\n")),)),
        Case("bim-crlf", GRM_B, "same", ((M, lambda b: b.replace(b"\n", b"\r\n")),)),
        Case("fam-latin1", GRM_B, "error",
             ((F, lambda b: b.replace(b"FAM003_P1", b"FAM003_\xe91")),), "UTF-8"),
        Case("bim-latin1", GRM_B, "error",
             ((M, lambda b: b.replace(b"rs1_30000", b"rs1_\xe90000")),), "UTF-8"),
        Case("fam-empty", GRM_B, "error", ((F, _write(F, b"")),)),
        Case("bim-empty", GRM_B, "error", ((M, _write(M, b"")),)),
        Case("fam-five-columns", GRM_B, "error",
             ((F, lambda b: b"".join(b" ".join(ln.split()[:5]) + b"\n" for ln in _lines(b))),)),
        Case("bim-five-columns", GRM_B, "error",
             ((M, lambda b: b"".join(b"\t".join(ln.split()[:5]) + b"\n" for ln in _lines(b))),)),
        Case("bim-text-position", GRM_B, "error",
             ((M, lambda b: b.replace(b"\t20000\t", b"\tabc\t", 1)),)),
        Case("fam-sex-text", GRM_B, "error",
             ((F, lambda b: b.replace(b" 0 0 1 -9", b" 0 0 male -9", 1)),)),
        Case("fam-dup-id", GRM_B, "error",
             ((F, lambda b: b.replace(b"FAM001_P2", b"FAM001_P1")),), "more than once"),
        Case("fam-added-line", GRM_B, "error", ((F, _dup(10)),)),
        Case("bim-dup-line", GRM_B, "error", ((M, _dup(10)),)),
        Case("fam-missing-file", "grm --bfile {d}/nope --out {o} --quiet", "error", ()),
    ]
    for k in (0, 17, 200, 398, 399):
        c.append(Case(f"fam-drop-line-{k}", GRM_B, "error", ((F, _drop(k)),)))
    for k in (0, 1500, 2999):
        c.append(Case(f"bim-drop-line-{k}", GRM_B, "error", ((M, _drop(k)),)))
    for frac in (0.0001, 0.3, 0.9, 0.99999):
        c.append(Case(f"bed-trunc-{frac}", GRM_B, "error", ((B, _trunc(frac)),), "bytes"))
        # Cutting only the final newline or a character of the last field leaves valid text.
        last = "error" if frac < 0.999 else "any"
        c.append(Case(f"bim-trunc-{frac}", GRM_B, last, ((M, _trunc(frac)),)))
        c.append(Case(f"fam-trunc-{frac}", GRM_B, last, ((F, _trunc(frac)),)))
    for s in range(3):
        c.append(Case(f"fam-shuffled-{s}", REML_B, "any", ((F, _shuffle(s, False)),)))
        c.append(Case(f"bim-shuffled-{s}", GRM_B, "any", ((M, _shuffle(s, False)),)))
    for s in range(12):
        # genotype bytes (after the magic): any value is a valid genotype code
        c.append(Case(f"bed-flip-{s}", REML_B, "any", ((B, _flip(100 + s, 0.001)),)))
    for s in range(6):
        c.append(Case(f"fam-flip-{s}", REML_B, "any", ((F, _flip(200 + s)),)))
        c.append(Case(f"bim-flip-{s}", GRM_B, "any", ((M, _flip(300 + s)),)))
    # ---- the other commands reading genotypes
    c += [
        Case("blup-bed-flip", BLUP, "any", ((B, _flip(500, 0.001)),)),
        Case("blup-fam-drop-line", BLUP, "error", ((F, _drop(17)),)),
        Case("blup-bim-latin1", BLUP, "error",
             ((M, lambda b: b.replace(b"rs1_30000", b"rs1_\xe90000")),), "UTF-8"),
        Case("assoc-bed-flip", ASSOC, "any", ((B, _flip(501, 0.001)),)),
        Case("assoc-bed-trunc", ASSOC, "error", ((B, _trunc(0.5)),), "bytes"),
        Case("assoc-extract-some", ASSOC + " --extract {d}/e.txt", "any",
             (("e.txt", lambda b: b"".join(ln.split()[1] + b"\n"
                                           for ln in _lines(SRC[M])[:500])),)),
        Case("assoc-chr-absent", ASSOC + " --chr 9", "error", (), "9"),
        Case("assoc-pheno-dup", ASSOC, "error", ((P, _dup(9)),), "appears"),
    ]
    # ---- GRM files (the clean GRM 'g' is written into every case folder)
    GB, GN, GI = "g.grm.bin", "g.grm.N.bin", "g.grm.id"
    c += [
        Case("grm-id-bom", REML_G, "same", ((GI, lambda b: b"\xef\xbb\xbf" + b),)),
        Case("grm-bin-empty", REML_G, "error", ((GB, _write(GB, b"")),)),
        Case("grm-bin-extra", REML_G, "error", ((GB, lambda b: b + b"\0\0\0\0"),), "bytes"),
        Case("grm-bin-nan", REML_G, "error",
             ((GB, lambda b: b[:40] + np.float32(np.nan).tobytes() + b[44:]),)),
        Case("grm-bin-inf", REML_G, "error",
             ((GB, lambda b: b[:40] + np.float32(np.inf).tobytes() + b[44:]),)),
        Case("grm-bin-zeros", REML_G, "error", ((GB, lambda b: bytes(len(b))),)),
        Case("grm-bin-ones", REML_G, "flagged",
             ((GB, lambda b: np.ones(len(b) // 4, np.float32).tobytes()),)),
        Case("grm-bin-huge", REML_G, "error",
             ((GB, lambda b: b[:40] + np.float32(1e30).tobytes() + b[44:]),)),
        Case("grm-id-dup", REML_G, "error", ((GI, _dup(3)),)),
        Case("grm-id-one-field", REML_G, "error",
             ((GI, lambda b: b"".join(ln.split()[0] + b"\n" for ln in _lines(b))),)),
        Case("grm-id-latin1", REML_G, "error",
             ((GI, lambda b: b.replace(b"FAM003_P1", b"FAM003_\xe91")),), "UTF-8"),
        Case("grm-missing", "reml --grm {d}/nope --pheno {d}/demo.phen --out {o} --quiet",
             "error", ()),
        Case("mgrm-twice", "reml --mgrm {d}/m.txt --pheno {d}/demo.phen --out {o} --quiet",
             "error", (("m.txt", lambda b: b"{d}/g\n{d}/g\n"),)),
        Case("mgrm-empty", "reml --mgrm {d}/m.txt --pheno {d}/demo.phen --out {o} --quiet",
             "error", (("m.txt", lambda b: b"\n"),)),
        Case("mgrm-latin1", "reml --mgrm {d}/m.txt --pheno {d}/demo.phen --out {o} --quiet",
             "error", (("m.txt", lambda b: b"{d}/\xe9\n"),)),
    ]
    ident = np.eye(400, dtype=np.float32)[np.tril_indices(400)].tobytes()
    MG = "reml --mgrm {d}/m.txt --pheno {d}/demo.phen --out {o} --quiet"
    c += [
        Case("grm-identity", REML_G, "flagged", ((GB, lambda b: ident),)),
        Case("grm-identity-times-3", REML_G, "flagged", ((GB, lambda b: (
            np.frombuffer(ident, np.float32) * 3).astype(np.float32).tobytes()),)),
        Case("mgrm-grm-and-identity", MG, "error",
             (("m.txt", lambda b: b"{d}/g\n{d}/i\n"), ("i.grm.bin", lambda b: ident),
              ("i.grm.id", lambda b: b"".join(b"\t".join(ln.split()[:2]) + b"\n"
                                              for ln in _lines(SRC["demo.fam"])))),
             "identity"),
        Case("one-residual-df", REML_G + " --qcovar {d}/q.txt", "flagged",
             ((P, lambda b: b"".join(_lines(b)[:4])),
              ("q.txt", lambda b: b"".join(b" ".join(ln.split()[:2]) + b" %d\n" % k
                                           for k, ln in enumerate(_lines(SRC[P])[1:4]))))),
    ]
    for frac in (0.001, 0.5, 0.999):
        c.append(Case(f"grm-bin-trunc-{frac}", REML_G, "error", ((GB, _trunc(frac)),)))
        c.append(Case(f"grm-N-trunc-{frac}", REML_G, "error", ((GN, _trunc(frac)),)))
        c.append(Case(f"grm-id-trunc-{frac}", REML_G, "error" if frac < 0.99 else "any",
                      ((GI, _trunc(frac)),)))
    for k in (0, 200):
        c.append(Case(f"grm-id-drop-{k}", REML_G, "error", ((GI, _drop(k)),)))
    for s in range(4):
        c.append(Case(f"grm-bin-flip-{s}", REML_G, "any", ((GB, _flip(400 + s)),)))
    # ---- covariates
    Q, C = "q.txt", "c.txt"
    QC = REML_G + " --qcovar {d}/q.txt"
    CC = REML_G + " --covar {d}/c.txt"

    def qcov(fn):  # from the phenotype file's IDs
        def f(b: bytes) -> bytes:
            ls = _lines(SRC["demo.phen"])[1:]
            return b"".join(b" ".join(ln.split()[:2] + [fn(k).encode()]) + b"\n"
                            for k, ln in enumerate(ls))
        return f

    c += [
        Case("qcovar-constant", QC, "error", ((Q, qcov(lambda k: "1")),), "rank deficient"),
        Case("qcovar-1e300", QC, "error", ((Q, qcov(lambda k: f"{(k % 7) * 1e300:g}")),)),
        Case("qcovar-ok", QC, "any", ((Q, qcov(lambda k: f"{(k % 7) * 0.1:g}")),)),
        Case("qcovar-tiny-scale", QC, "any", ((Q, qcov(lambda k: f"{(k % 7) * 1e-200:g}")),)),
        Case("qcovar-text", QC, "error", ((Q, qcov(lambda k: "x" if k == 5 else "1")),)),
        Case("covar-one-level", CC, "any", ((C, qcov(lambda k: "A")),)),
        Case("covar-every-sample-own-level", CC, "error", ((C, qcov(lambda k: f"L{k}")),)),
        Case("covar-two-levels", CC, "any", ((C, qcov(lambda k: "AB"[k % 2])),)),
        Case("qcovar-perfect-fit", REML_G + " --qcovar {d}/demo.phen", "error", ()),
    ]
    # ---- arguments: checked before any work
    for flag, val in [("--seed", "-1"), ("--seed", str(2**32)), ("--seed", "1.5"),
                      ("--seed", "abc"), ("--draws", "0"), ("--draws", "-3"),
                      ("--draws", "1.5"), ("--tune", "-1"), ("--chains", "0"),
                      ("--chains", "two"), ("--threads", "0"), ("--mpheno", "0"),
                      ("--prior", "h2"), ("--prior", "h2=Beta(1"), ("--prior", "h2=Foo(1)"),
                      ("--prior", "nonsense=Beta(1, 1)"), ("--maf", "0.7"), ("--maf", "-0.1"),
                      ("--geno", "1.5"), ("--method", "newton")]:
        c.append(Case(f"arg{flag}={val}", SAMPLE + f" {flag} {val}", "error", ()))
    c += [
        Case("out-empty", "reml --grm {d}/g --pheno {d}/demo.phen --out= --quiet", "error"),
        Case("out-folder", "reml --grm {d}/g --pheno {d}/demo.phen --out {d} --quiet",
             "error", (), "folder"),
        Case("out-slash", "reml --grm {d}/g --pheno {d}/demo.phen --out {d}/x/ --quiet",
             "error", (), "/"),
        Case("out-no-folder", "reml --grm {d}/g --pheno {d}/demo.phen --out {d}/no/x --quiet",
             "error", (), "does not exist"),
        Case("out-is-pheno", "reml --grm {d}/g --pheno {d}/demo.phen --out {d}/demo.phen "
             "--quiet", "error", (), "input"),
        Case("out-overwrites-pheno", "reml --grm {d}/g --pheno {d}/x.hsq --out {d}/x --quiet",
             "error", (("x.hsq", lambda b: SRC["demo.phen"]),), "input"),
        Case("out-log-is-pheno", "reml --grm {d}/g --pheno {d}/x.log --out {d}/x --quiet",
             "error", (("x.log", lambda b: SRC["demo.phen"]),), "input"),
        Case("keep-missing", REML_B + " --keep {d}/nope.txt", "error", (), "does not exist"),
        Case("keep-one-field", REML_B + " --keep {d}/k.txt", "error",
             (("k.txt", lambda b: b"FAM001\n"),), "FID and IID"),
        Case("keep-none-match", REML_B + " --keep {d}/k.txt", "error",
             (("k.txt", lambda b: b"X Y\n"),)),
        Case("keep-ok", REML_B + " --keep {d}/k.txt", "any",
             (("k.txt", lambda b: b"".join(b" ".join(ln.split()[:2]) + b"\n"
                                           for ln in _lines(SRC["demo.fam"])[:300])),)),
        Case("remove-all", REML_B + " --remove {d}/demo.fam", "error"),
        Case("extract-empty", REML_B + " --extract {d}/e.txt", "error",
             (("e.txt", lambda b: b""),)),
        Case("extract-none-match", REML_B + " --extract {d}/e.txt", "error",
             (("e.txt", lambda b: b"rsX\n"),)),
        Case("exclude-all", REML_B + " --exclude {d}/demo.bim", "any"),
        Case("chr-absent", REML_B + " --chr 22", "error", (), "22"),
        # PLINK keeps MAF >= 0.5, and 5 demo SNPs have MAF exactly 0.5: a valid (if tiny,
        # and indefinite with missing calls) GRM, which REML fits.
        Case("maf-0.5-keeps-5-snps", REML_B + " --maf 0.5", "any"),
        Case("unknown-flag", REML_G + " --frobnicate", "error"),
        Case("no-kernel", "reml --pheno {d}/demo.phen --out {o} --quiet", "error"),
    ]
    return c


CASES = _cases()


def test_at_least_150_cases():
    assert len(CASES) >= 150, len(CASES)
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    """The demo files and their GRM in one folder, and the clean h2 of each command."""
    d = tmp_path_factory.mktemp("clean")
    for name, b in SRC.items():
        (d / name).write_bytes(b)
    assert _run(f"grm --bfile {d}/demo --out {d}/g --quiet".split())[0] == 0
    files = {p.name: p.read_bytes() for p in d.iterdir() if p.name.startswith("g.grm")}
    h2 = {}
    for argv in (REML_G, REML_B):
        out = d / "ref"
        assert _run(argv.format(d=d, o=out).split())[0] == 0
        h2[argv] = _h2(Path(f"{out}.hsq"))
    return {"files": {**SRC, **files}, "h2": h2}


def _run(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return int(code or 0), err.getvalue()


def _h2(hsq: Path) -> float:
    rows = dict(ln.split("\t", 1) for ln in hsq.read_text().splitlines()[1:])
    return float(rows["V(G)/Vp"].split("\t")[0])


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(reason=c.xfail, strict=False)) if c.xfail else c
    for c in CASES], ids=[c.name for c in CASES])
def test_bad_input(case: Case, clean, tmp_path):
    d = tmp_path
    for name, b in clean["files"].items():
        (d / name).write_bytes(b)
    for name, fn in case.files:
        base = clean["files"].get(name, b"")
        (d / name).write_bytes(fn(base).replace(b"{d}", str(d).encode()))
    (d / "out").mkdir()
    before = sorted(p.name for p in (d / "out").iterdir())
    # the inputs' times (the output folder's own changes with the run's PREFIX.lock, which
    # is created and removed there; its listing is compared instead)
    before_d = {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.is_file()}
    argv = case.argv.format(d=d, o=d / "out" / "r").split()
    argv = ["--out=" if a == "--out=" else a for a in argv]
    code, err = _run(argv)
    assert "Traceback" not in err
    if code != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith("bayeslmm") and "error:" in lines[0], err
        assert case.match in lines[0], err
        # No output, no staging file, no input changed.
        assert sorted(p.name for p in (d / "out").iterdir()) == before
        assert {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.is_file()} == before_d
        assert case.expect != "same", f"expected a result, got: {err}"
        return
    assert case.expect != "error", f"expected an error, the run succeeded (stderr: {err})"
    hsq = [f for pat in ("r*.hsq", "r*.grm.bin", "r*.assoc.tsv")
           for f in (d / "out").glob(pat)]
    assert hsq, "exit 0 but no result file"
    if (d / "out" / "r.hsq").exists():
        h2 = _h2(d / "out" / "r.hsq")
        assert 0.0 <= h2 <= 1.0
        rows = dict(ln.split("\t", 1) for ln in (d / "out" / "r.hsq").read_text().splitlines())
        se = rows["V(G)/Vp"].split("\t")[1]
        log = (d / "out" / "r.log").read_text()
        if case.expect == "flagged":
            assert se == "nan" and "not identifiable" in log, (se, log)
        else:  # an estimate: a number, and never a silent 0.000000 SE
            assert se != "nan" and float(se) > 0 and "not identifiable" not in log
        if case.expect == "same":
            ref = clean["h2"][REML_B if "--bfile" in case.argv else REML_G]
            assert h2 == pytest.approx(ref, abs=2e-6)
