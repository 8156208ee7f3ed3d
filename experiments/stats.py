"""The statistics of the learning-result reports, from rliable (Agarwal et al., "Deep RL at the edge of the
statistical precipice", NeurIPS 2021): interquartile mean, stratified-bootstrap confidence intervals,
performance profiles and the probability of improvement, and the two report figures.

* IQM: the 25%-trimmed mean over runs (``rliable.metrics.aggregate_iqm``; for 8 seeds, the mean of the
  middle four).
* CI: 95% percentile interval of the IQM over ``reps`` stratified-bootstrap resamples of the runs
  (``rliable.library.get_interval_estimates``; one task, so the strata are the task's runs).
* Performance profile: ``F(tau)`` = fraction of runs with score > tau, with its bootstrap band
  (``create_performance_profile``).
* Probability of improvement ``P(X > Y)``: the Mann-Whitney U statistic / (n_X n_Y), with a bootstrap CI
  over independently resampled runs of X and Y (``metrics.probability_of_improvement``).

rliable is the ``stats`` extra (``pip install -e '.[stats]'``): it brings arch, statsmodels, scipy, pandas and
seaborn, which the library itself does not need, so only the experiments import it.
"""

from __future__ import annotations

import warnings

import numpy as np

REPS = 2000  # bootstrap resamples (the reports' stated budget)


def _seeded(seed: int, fn, *args, **kwargs):
    """Call ``fn`` with NumPy's global generator seeded by ``seed`` (then restored). rliable 1.2's stratified
    bootstraps draw their resample indices from ``np.random`` and ignore the ``random_state`` they pass to
    arch; seeding it is what makes a CI reproducible. arch's FutureWarning about ``random_state`` is muted."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="arch")
            return fn(*args, **kwargs)
    finally:
        np.random.set_state(saved)


def _rliable():
    try:
        from rliable import library, metrics
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"the experiment statistics need rliable ({e}); install the extra: pip install -e '.[stats]'"
        ) from e
    return library, metrics


def _runs(x) -> np.ndarray:
    """Scores ``[runs]`` as rliable's ``[runs, tasks = 1]`` matrix, refusing NaN (rliable would average it)."""
    x = np.asarray(x, float).reshape(-1, 1)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"scores must be a non-empty array of finite numbers, got {x.ravel().tolist()}")
    return x


def iqm(x) -> float:
    """Interquartile mean of ``x`` (runs of one task)."""
    _, metrics = _rliable()
    return float(metrics.aggregate_iqm(_runs(x)))


def iqm_ci(x, reps: int = REPS, seed: int = 0, size: float = 0.95) -> tuple[float, tuple[float, float]]:
    """``(IQM, (lo, hi))``: the IQM and its ``size`` stratified-bootstrap percentile CI."""
    library, metrics = _rliable()
    point, interval = _seeded(
        seed,
        library.get_interval_estimates,
        {"x": _runs(x)},
        lambda s: np.array([metrics.aggregate_iqm(s)]),
        reps=reps,
        confidence_interval_size=size,
    )
    lo, hi = interval["x"][:, 0]
    return float(point["x"][0]), (float(lo), float(hi))


def bootstrap_ci(x, reps: int = REPS, seed: int = 0) -> tuple[float, float]:
    """The 95% CI of :func:`iqm_ci`."""
    return iqm_ci(x, reps, seed)[1]


def performance_profiles(scores: dict, taus, reps: int = REPS, seed: int = 0):
    """``(profiles, bands)``: per method, ``F(tau)`` = fraction of runs > tau ``[len(taus)]`` and its 95%
    bootstrap band ``[2, len(taus)]``."""
    library, _ = _rliable()
    return _seeded(
        seed,
        library.create_performance_profile, {k: _runs(v) for k, v in scores.items()}, np.asarray(taus), reps=reps
    )


def probability_of_improvement(pairs: dict, reps: int = REPS, seed: int = 0):
    """``(estimates, intervals)`` for ``{"X,Y": (scores_x, scores_y)}``: P(X > Y) and its 95% CI ``[2, 1]``."""
    library, metrics = _rliable()
    return _seeded(
        seed,
        library.get_interval_estimates,
        {k: [_runs(x), _runs(y)] for k, (x, y) in pairs.items()},
        lambda x, y: np.array([metrics.probability_of_improvement(x, y)]),
        reps=reps,
    )


def plot_profiles_and_improvement(
    scores: dict, reference: str, taus, xlabel: str, out_png, title: str, reps: int = REPS
) -> None:
    """One figure: performance profiles of every method (left) and P(method > ``reference``) for every other
    method (right), both with 95% bootstrap bands; written to ``out_png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    profiles, bands = performance_profiles(scores, taus, reps)  # seed 0, as every CI in the reports
    palette = plt.get_cmap("tab20").colors  # 20 distinct colours: the balancer report has 18 rows
    colors = {k: palette[i % len(palette)] for i, k in enumerate(scores)}
    others = [k for k in scores if k != reference]
    est, ci = probability_of_improvement({f"{k},{reference}": (scores[k], scores[reference]) for k in others}, reps)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(14, max(4.0, 0.45 * len(others) + 1.5)))
    plot_utils.plot_performance_profiles(
        profiles, np.asarray(taus), performance_profile_cis=bands, ax=ax0, xlabel=xlabel, colors=colors,
        ylabel="fraction of runs with score > τ", labelsize="medium", ticklabelsize="medium",
    )
    ax0.legend(fontsize=7, loc="upper right")
    ax0.set_title(f"{title}: performance profiles")
    plot_utils.plot_probability_of_improvement(
        est, ci, ax=ax1, colors=[colors[k] for k in others],  # indexed by position, not by pair
        xlabel=f"P(X > {reference})", left_ylabel="X", right_ylabel="Y",
    )
    ax1.set_title(f"probability of improvement over {reference}")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
