"""Reference vectors for the stateful balancers (FAMO, DB-MTL, GradNorm, uncertainty weighting).

Writes ``tests/data/stateful_reference.json``. Run it in a throwaway venv with torch and numpy (torch is never a
dependency of balancedrl or of its tests), pointing at checkouts of the two reference code bases::

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch numpy
    FAMO_SRC=/path/to/Cranial-XIX/FAMO LIBMTL_SRC=/path/to/median-research-group/LibMTL \\
        /tmp/ref/bin/python tests/data/make_stateful_reference.py

The reference classes themselves are called, not re-implemented:

* FAMO: the authors' ``famo.py`` (class ``FAMO``, repository Cranial-XIX/FAMO), driven as in its own
  ``__main__`` loop: ``backward(losses_t, shared_parameters)`` (weighted loss, backward, global-norm clip to
  ``max_norm``), the optimiser step, then ``update(losses_{t+1})`` with the losses after the step.
* DB-MTL, GradNorm, UW: LibMTL's ``LibMTL/weighting/{DB_MTL,GradNorm,UW}.py`` (only ``abstract_weighting`` and
  the three modules are loaded, through a stub ``LibMTL.weighting`` package, so LibMTL's trainer, its data and
  its pinned dependencies are not needed). They are mixed into a minimal fake model as LibMTL's trainer does:
  ``get_share_params`` returns one shared parameter ``theta``, ``rep_grad`` is False, ``epoch`` and
  ``train_loss_buffer`` are set as LibMTL's ``train_singlelevel`` sets them, and the learnable loss weights
  (GradNorm's and UW's ``loss_scale``) are stepped by ``torch.optim.Adam(lr, weight_decay)``, LibMTL's outer
  optimiser (its defaults: lr 1e-4, weight decay 1e-5).

Each loss is linear around the evaluation point: ``L_k(theta) = l_k + J_k . theta`` at ``theta = 0``, so the
loss values ``l`` and the per-loss gradients (rows of ``J``) are set exactly. The gradient the method leaves on
``theta`` is the output direction. Sequences: K = 2, 3, 4; 6 steps each; ordinary, mis-scaled (loss values
and gradient norms from 1e-3 to 1e3) and with zero gradient rows. Everything is float32 (torch's default), as
in the JAX code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).with_name("stateful_reference.json")
D = 6  # parameter count; the JAX tests split it into leaves of shapes (2,) and (2, 2)
T = 6  # steps per sequence


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _libmtl_classes(root: Path):
    # Stub packages so LibMTL/__init__.py (trainer, architectures, data utilities) never runs.
    for pkg in ("LibMTL", "LibMTL.weighting"):
        m = types.ModuleType(pkg)
        m.__path__ = []
        sys.modules[pkg] = m
    w = root / "LibMTL" / "weighting"
    _load("LibMTL.weighting.abstract_weighting", w / "abstract_weighting.py")
    return {
        n: getattr(_load(f"LibMTL.weighting.{n}", w / f"{n}.py"), n) for n in ("DB_MTL", "GradNorm", "UW")
    }


def _sequences(rng: np.random.Generator):
    """(label, K, losses [T, K], jac [T, K, D]) cases."""
    cases = []
    for k in (2, 3, 4):
        losses = rng.uniform(0.2, 2.0, (T, k))
        jac = rng.normal(size=(T, k, D))
        cases.append((f"plain_K{k}", k, losses, jac))
        loss_scale = 10.0 ** np.linspace(-3, 3, k)
        grad_scale = 10.0 ** np.linspace(3, -3, k)
        cases.append(
            (
                f"misscaled_K{k}",
                k,
                loss_scale * rng.uniform(0.5, 1.5, (T, k)),
                grad_scale[None, :, None] * rng.normal(size=(T, k, D)),
            )
        )
        jac0 = rng.normal(size=(T, k, D))
        jac0[:, 0] = 0.0  # loss 0 never has a gradient
        jac0[::2, -1] = 0.0  # the last loss loses its gradient every other step
        cases.append((f"zero_rows_K{k}", k, rng.uniform(0.2, 2.0, (T, k)), jac0))
    return cases


def _linear_losses(l, J):
    theta = torch.zeros(D, requires_grad=True)
    losses = torch.tensor(l, dtype=torch.float32) + torch.tensor(J, dtype=torch.float32) @ theta
    return theta, losses


def _as_list(x):
    return np.asarray(x, dtype=np.float64).tolist()


def run_famo(FAMO, losses, jac, hyper):
    k = losses.shape[1]
    m = FAMO(n_tasks=k, device="cpu", **hyper)
    steps = []
    for t in range(T):
        theta, L = _linear_losses(losses[t], jac[t])
        logits = m.w.detach().clone()
        m.backward(L, shared_parameters=[theta] if hyper["max_norm"] > 0 else None)
        steps.append({"logits": _as_list(logits), "grads": _as_list(theta.grad)})
        if t + 1 < T:  # the losses after the parameter step are the next step's losses
            m.update(torch.tensor(losses[t + 1], dtype=torch.float32))
    return steps


class _FakeModel:
    """What a LibMTL weighting needs from the model it is mixed into."""

    def __init__(self, k):
        self.task_num = k
        self.device = "cpu"
        self.rep_grad = False
        self.theta = None

    def get_share_params(self):
        return [self.theta]

    def zero_grad_share_params(self):
        self.theta.grad = torch.zeros_like(self.theta)


def _libmtl_instance(cls, k):
    Mixed = type(f"Fake{cls.__name__}", (cls, _FakeModel), {})
    obj = Mixed.__new__(Mixed)
    cls.__init__(obj)
    _FakeModel.__init__(obj, k)
    obj.theta = torch.zeros(D, requires_grad=True)
    obj.init_param()
    return obj


def run_db_mtl(DB_MTL, losses, jac, hyper):
    k = losses.shape[1]
    m = _libmtl_instance(DB_MTL, k)
    steps = []
    for t in range(T):
        m.theta, L = _linear_losses(losses[t], jac[t])
        m.backward(L, DB_beta=hyper["beta"], DB_beta_sigma=hyper["beta_sigma"])
        steps.append({"grads": _as_list(m.theta.grad), "buffer": _as_list(m.grad_buffer)})
    return steps


def run_gradnorm(GradNorm, losses, jac, hyper):
    k = losses.shape[1]
    m = _libmtl_instance(GradNorm, k)
    opt = torch.optim.Adam([m.loss_scale], lr=hyper["lr"], weight_decay=hyper["weight_decay"])
    warm = hyper["warmup_steps"]
    m.train_loss_buffer = np.zeros([k, 2])
    m.train_loss_buffer[:, 0] = losses[:warm].mean(0)  # LibMTL: epoch 0's mean training loss
    steps = []
    for t in range(T):
        m.epoch = 0 if t < warm else 1
        m.theta, L = _linear_losses(losses[t], jac[t])
        opt.zero_grad(set_to_none=False)
        scale = m.loss_scale.detach().clone()
        w = m.backward(L, alpha=hyper["alpha"])
        opt.step()
        steps.append({"loss_scale": _as_list(scale), "weights": _as_list(w), "grads": _as_list(m.theta.grad)})
    return steps


def run_uw(UW, losses, jac, hyper):
    k = losses.shape[1]
    m = _libmtl_instance(UW, k)
    opt = torch.optim.Adam([m.loss_scale], lr=hyper["lr"], weight_decay=hyper["weight_decay"])
    steps = []
    for t in range(T):
        m.theta, L = _linear_losses(losses[t], jac[t])
        opt.zero_grad(set_to_none=False)
        scale = m.loss_scale.detach().clone()
        w = m.backward(L)
        opt.step()
        steps.append({"loss_scale": _as_list(scale), "weights": _as_list(w), "grads": _as_list(m.theta.grad)})
    return steps


def main():
    torch.manual_seed(0)
    famo_src = Path(os.environ["FAMO_SRC"])
    libmtl_src = Path(os.environ["LIBMTL_SRC"])
    FAMO = _load("famo_reference", famo_src / "famo.py").FAMO
    lib = _libmtl_classes(libmtl_src)
    rng = np.random.default_rng(20231)
    cases = _sequences(rng)

    methods = {
        "famo": (
            lambda l, J, h: run_famo(FAMO, l, J, h),
            [
                {"gamma": 0.01, "w_lr": 0.025, "max_norm": 1.0},
                {"gamma": 0.01, "w_lr": 0.025, "max_norm": 0.0},
            ],
        ),
        "db_mtl": (
            lambda l, J, h: run_db_mtl(lib["DB_MTL"], l, J, h),
            [{"beta": 0.9, "beta_sigma": 0.0}, {"beta": 0.5, "beta_sigma": 0.5}],
        ),
        "gradnorm": (
            lambda l, J, h: run_gradnorm(lib["GradNorm"], l, J, h),
            [
                {"alpha": 1.5, "lr": 1e-4, "weight_decay": 1e-5, "warmup_steps": 1},
                {"alpha": 1.5, "lr": 0.05, "weight_decay": 1e-5, "warmup_steps": 2},
            ],
        ),
        "uncertainty": (
            lambda l, J, h: run_uw(lib["UW"], l, J, h),
            [{"lr": 1e-4, "weight_decay": 1e-5}, {"lr": 0.05, "weight_decay": 0.0}],
        ),
    }
    out = {"torch_version": torch.__version__, "D": D, "T": T}
    for name, (run, hypers) in methods.items():
        out[name] = []
        for hyper in hypers:
            for label, k, losses, jac in cases:
                losses = losses.astype(np.float32)
                jac = jac.astype(np.float32)
                out[name].append(
                    {
                        "case": label,
                        "K": k,
                        "hyper": hyper,
                        "losses": _as_list(losses),
                        "jac": _as_list(jac),
                        "steps": run(losses, jac, hyper),
                    }
                )
    OUT.write_text(json.dumps(out, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
