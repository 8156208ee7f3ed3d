"""Reference vectors for the projection / eigen / bargaining balancers from TorchJD 0.18.0.

Run in a throwaway virtual environment (torch is never a dependency of balancedrl or its tests)::

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch "torchjd[quadprog-projector,nash-mtl]==0.18.0"
    /tmp/ref/bin/python tests/data/make_torchjd_reference_b.py    # writes tests/data/torchjd_reference_b.json

Aggregators: ``UPGrad``, ``DualProj``, ``AlignedMTL`` (defaults) and ``NashMTL`` (first call of a fresh
instance, defaults). Each case is a ``[K, 6]`` Jacobian (K = 2, 3, 4) drawn from a fixed seed, rounded to
float32 (the JAX side runs in float32) and evaluated in float64. For NashMTL the file also records whether
TorchJD's iterations reached the bargaining condition ``G alpha = 1/alpha`` (relative residual < 1e-5 of its
unclipped ``alpha``): they do not always (see balancedrl/balancers/nash_mtl.py).
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import torch
import torchjd
from torchjd.aggregation import AlignedMTL, DualProj, NashMTL, UPGrad

DIM = 6
OUT = pathlib.Path(__file__).with_name("torchjd_reference_b.json")


def cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(20240615)
    out = []
    for k in (2, 3, 4):
        out.append((f"random_k{k}", rng.normal(size=(k, DIM))))
        base = rng.normal(size=DIM)
        aligned = base + 0.2 * rng.normal(size=(k, DIM))
        out.append((f"aligned_k{k}", aligned * rng.uniform(0.5, 2.0, size=(k, 1))))
        opp = rng.normal(size=(k, DIM))
        opp[1] = -opp[0] * 2.0
        out.append((f"opposed_k{k}", opp))
        near = rng.normal(size=(k, DIM))
        near[1] = -near[0] + 0.05 * rng.normal(size=DIM)
        out.append((f"near_opposed_k{k}", near))
        zero = rng.normal(size=(k, DIM))
        zero[0] = 0.0
        out.append((f"zero_row_k{k}", zero))
        scales = np.logspace(-3, 3, k)[rng.permutation(k)]
        out.append((f"misscaled_k{k}", rng.normal(size=(k, DIM)) / np.sqrt(DIM) * scales[:, None]))
        out.append(
            (f"conflict_k{k}", rng.normal(size=(k, DIM)) * np.array([1.0] + [-0.3] * (k - 1))[:, None])
        )
    out.append(("all_zero_k2", np.zeros((2, DIM))))
    out.append(("tiny_k2", rng.normal(size=(2, DIM)) * 1e-3))
    return [(name, j.astype(np.float32).astype(np.float64)) for name, j in out]


def main() -> None:
    warnings.filterwarnings("ignore")
    records = []
    for name, J_np in cases():
        J = torch.tensor(J_np, dtype=torch.float64)
        G = J @ J.T
        k = J.shape[0]
        rec = {"name": name, "K": k, "jacobian": J_np.tolist()}
        for key, agg in (("upgrad", UPGrad()), ("dualproj", DualProj()), ("aligned_mtl", AlignedMTL())):
            w = agg.gramian_weighting(G)
            rec[key] = {"output": agg(J).tolist(), "weights": w.tolist()}
        # AlignedMTL's rank cut is max(lambda) K eps(dtype): float32 (the dtype balancedrl runs in) drops
        # eigenvalues below ~1e-7 relative that float64 keeps, so record both.
        agg, J32 = AlignedMTL(), J.to(torch.float32)
        w = agg.gramian_weighting(J32 @ J32.T)
        rec["aligned_mtl_float32"] = {"output": agg(J32).tolist(), "weights": w.tolist()}
        nash = NashMTL(n_tasks=k)
        try:
            w = nash.weighting(J)
        except (
            ValueError
        ) as err:  # an all-zero Jacobian: TorchJD divides G by ||G|| = 0 and cvxpy refuses NaN
            rec["nash_mtl"] = {"error": str(err)}
            records.append(rec)
            continue
        alpha = np.asarray(nash.weighting.prvs_alpha, np.float64)
        Gn = G.numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            resid = np.linalg.norm(Gn @ alpha - 1.0 / alpha) / np.linalg.norm(1.0 / alpha)
        rec["nash_mtl"] = {
            "output": (w @ J).tolist(),
            "weights": w.tolist(),
            "alpha_unclipped": alpha.tolist(),
            "relative_residual": float(resid) if np.isfinite(resid) else None,
            "converged": bool(np.isfinite(resid) and resid < 1e-5),
        }
        records.append(rec)
    # Non-default hyper-parameters on a few cases: preference vectors and AlignedMTL's other scale modes
    # (K = 4, and K = 3 for the median, whose even and odd counts differ).
    variants = []
    for name, J_np in cases():
        if not name.startswith(("random", "conflict", "misscaled")) or name.endswith("k2"):
            continue
        J = torch.tensor(J_np, dtype=torch.float64)
        k = J.shape[0]
        pref = torch.linspace(0.5, 2.0, k, dtype=torch.float64)
        aggs = {
            "upgrad": ({"pref_vector": pref.tolist()}, UPGrad(pref_vector=pref)),
            "dualproj": ({"pref_vector": pref.tolist()}, DualProj(pref_vector=pref)),
            "aligned_mtl": ({"pref_vector": pref.tolist()}, AlignedMTL(pref_vector=pref.to(torch.float32))),
        }
        for mode in ("median", "rmse"):
            aggs[f"aligned_mtl/{mode}"] = ({"scale_mode": mode}, AlignedMTL(scale_mode=mode))
        if k == 3:
            aggs = {"aligned_mtl/median": aggs["aligned_mtl/median"]}
        J32 = J.to(torch.float32)
        for key, (hyper, agg) in aggs.items():
            # AlignedMTL in float32 (its rank cut depends on the dtype; see above), the QPs in float64.
            X = J32 if key.startswith("aligned_mtl") else J
            variants.append(
                {"case": name, "method": key.split("/")[0], "hyper": hyper, "output": agg(X).tolist()}
            )
    # NashMTL is stateful: a sequence of calls on one instance (it warm-starts from its previous alpha and,
    # with update_weights_every = 2, reuses it on every other call).
    rng = np.random.default_rng(7)
    sequences = []
    for hyper in ({}, {"update_weights_every": 2}):
        nash = NashMTL(n_tasks=3, **hyper)
        steps = []
        for _ in range(4):
            J_np = rng.normal(size=(3, DIM)).astype(np.float32).astype(np.float64)
            J = torch.tensor(J_np)
            w = nash.weighting(J)
            steps.append({"jacobian": J_np.tolist(), "output": (w @ J).tolist(), "weights": w.tolist()})
        sequences.append({"hyper": hyper, "steps": steps})
    doc = {
        "source": f"torchjd {torchjd.__version__ if hasattr(torchjd, '__version__') else '0.18.0'}, torch {torch.__version__}",
        "script": "tests/data/make_torchjd_reference_b.py",
        "dtype": "float64 evaluation of float32-rounded Jacobians",
        "cases": records,
        "variants": variants,
        "nash_sequences": sequences,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(records)} cases)")
    for r in records:
        print(f"  {r['name']:18s} nash converged={r['nash_mtl'].get('converged')}")


if __name__ == "__main__":
    main()
