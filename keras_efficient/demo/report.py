"""Writes the demo report: `report.md` with tables, learning-curve PNGs, JSON."""

import datetime
import json
import pathlib
import textwrap

import numpy as np

HELPED, NO_EFFECT, HURT = "helped", "no effect within noise", "hurt"
UNTESTED = "untested (one seed)"
# Two-sided level of the paired t-test over seeds. With 3 seeds only a difference
# that is large against its spread across seeds (t > 4.30) counts.
SIGNIFICANCE = 0.05
TITLE_WIDTH = 60  # characters per title line on a 6-inch figure


def compare_to_baseline(baseline_accuracies, accuracies, significance=SIGNIFICANCE):
    """Classify a variant against its baseline with a paired t-test over seeds.

    Runs with the same seed share data order, initialization draws and label
    noise, so the seed-wise differences are tested (`scipy.stats.ttest_rel`).

    Args:
        baseline_accuracies, accuracies: per-seed accuracies, in the same seed order.
        significance: two-sided level of the test.

    Returns:
        `(verdict, mean difference, p-value)`: "helped" or "hurt" when the mean
        difference is significant, "no effect within noise" otherwise,
        "untested (one seed)" with a single seed (p-value NaN).
    """
    from scipy import stats

    baseline = np.asarray(baseline_accuracies, dtype="float64")
    variant = np.asarray(accuracies, dtype="float64")
    if baseline.shape != variant.shape:
        raise ValueError(
            "Invalid value received for argument `accuracies`. Expected one accuracy per "
            f"seed of the baseline ({len(baseline)}). Received: {len(variant)} accuracies")
    differences = variant - baseline
    mean = float(differences.mean())
    if len(differences) < 2:
        return UNTESTED, mean, float("nan")
    if np.all(differences == differences[0]):
        # No spread: the t statistic is undefined (all zero) or infinite.
        p_value = 1.0 if mean == 0 else 0.0
    else:
        p_value = float(stats.ttest_rel(variant, baseline).pvalue)
    if p_value >= significance:
        return NO_EFFECT, mean, p_value
    return (HELPED if mean > 0 else HURT), mean, p_value


def _verdict(summary, name, baseline=None):
    return compare_to_baseline(summary.variant(baseline or summary.baseline).accuracies,
                               summary.variant(name).accuracies)


def conclusion(summary, claim):
    """One sentence: whether `claim` (a `base.Claim` or None) held in `summary`, and why."""
    names = [v.name for v in summary.variants]
    if claim is None or claim.variant not in names or (claim.baseline or
                                                      summary.baseline) not in names:
        verdicts = "; ".join(f"{v.name} {_verdict(summary, v.name)[0]}"
                             for v in summary.variants if v.name != summary.baseline)
        return (f"**Verdict.** No claim is recorded for this experiment; against "
                f"{summary.baseline}: {verdicts or 'no other variant ran'}.")
    baseline = claim.baseline or summary.baseline
    verdict, difference, p_value = _verdict(summary, claim.variant, baseline)
    held = verdict in claim.holds_if
    why = claim.why_held if held else claim.why_not
    # A "no loss" claim met by "no effect within noise" is not shown by a few seeds,
    # only not contradicted.
    outcome = ("was not contradicted" if held and verdict == NO_EFFECT
               else "held" if held else "did not hold")
    return (f"**Verdict.** The claim that {claim.text} "
            f"{outcome} here: {claim.variant} {verdict} vs "
            f"{baseline} ({difference * 100:+.2f} points, paired t-test p = "
            f"{p_value:.2g}, {len(summary.seeds)} seeds)" + (f"; {why}." if why else "."))


def wrapped_title(text, width=TITLE_WIDTH):
    """`text` broken into lines of at most `width` characters, for a figure title."""
    return textwrap.fill(text, width)


def curves_figure(summary):
    """The learning curves of `summary` (validation accuracy, mean ± std over seeds)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for variant in summary.variants:
        length = min(len(curve) for curve in variant.curves)
        if length == 0:
            continue
        curves = np.array([curve[:length] for curve in variant.curves])
        epochs = np.arange(1, length + 1)
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        axis.plot(epochs, mean, label=variant.name)
        axis.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation accuracy")
    axis.set_title(wrapped_title(summary.title), fontsize="medium")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def _plot_curves(summary, path):
    import matplotlib.pyplot as plt

    figure = curves_figure(summary)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def experiment_table(summary):
    """Markdown table of one experiment: accuracy mean ± std and step-time ratio."""
    extras = sorted({key for variant in summary.variants for key in variant.extra})
    header = ["variant", f"test accuracy (mean ± std, {len(summary.seeds)} seeds)",
              f"Δ vs {summary.baseline}", "step ms", "step-time ratio"] + extras
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    baseline = summary.variant(summary.baseline).accuracy_mean
    for variant in summary.variants:
        cells = [
            variant.name,
            f"{variant.accuracy_mean * 100:.2f} ± {variant.accuracy_std * 100:.2f}",
            f"{(variant.accuracy_mean - baseline) * 100:+.2f}",
            f"{variant.step_seconds_median * 1e3:.2f}",
            f"{summary.step_ratio(variant.name):.2f}×",
        ]
        cells += [f"{np.mean(variant.extra[key]):.4g}" if key in variant.extra else "–"
                  for key in extras]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(summaries, out_dir, command, machine_lines, total_seconds, claims=None):
    """Write `report.md`, `results.json` and one learning-curve plot per experiment.

    Args:
        summaries: `ExperimentSummary` objects.
        out_dir: the report folder.
        command: the command line, for the report's header.
        machine_lines: the machine's description.
        total_seconds: the run's wall time.
        claims: optional `{experiment name: base.Claim}`; by default each
            registered experiment's `claim`.

    Returns:
        The path of `report.md`.
    """
    if claims is None:
        from keras_efficient.demo.base import registered_experiments

        claims = {name: experiment.claim for name, experiment in registered_experiments().items()}
    out = pathlib.Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# keras_efficient demo report",
        "",
        f"Generated {now} by `{command}` in {total_seconds:.0f} s.",
        "Data: scikit-learn's bundled digits (1,797 images, 8×8), stratified 75/25 split;",
        "the training part is split again, stratified, 80/20 into train and validation.",
        "Every choice (hyperparameters, learning curves) uses validation; accuracy is on the",
        "held-out test split, read once per run after training. Step time is the median wall",
        "time of one training step (the first, which compiles, excluded); the ratio is",
        "against each experiment's baseline measured in the same run. Verdicts: a paired",
        f"t-test over seeds of each variant against the baseline (two-sided, p < {SIGNIFICANCE}",
        "for helped or hurt).",
        "",
        "## Summary",
        "",
        ("| experiment | baseline | best variant | best accuracy | Δ vs baseline | "
         f"{HELPED} | {NO_EFFECT} | {HURT} |"),
        "|---|---|---|---:|---:|---|---|---|",
    ]
    for summary in summaries:
        best = max(summary.variants, key=lambda v: v.accuracy_mean)
        base = summary.variant(summary.baseline)
        lines.append(
            f"| [{summary.name}](#{summary.name}) | {base.name} "
            f"({base.accuracy_mean * 100:.2f}%) | {best.name} | "
            f"{best.accuracy_mean * 100:.2f}% | "
            f"{(best.accuracy_mean - base.accuracy_mean) * 100:+.2f} | "
            + " | ".join(", ".join(v.name for v in summary.variants
                                   if v.name != summary.baseline
                                   and _verdict(summary, v.name)[0] == verdict) or "–"
                         for verdict in (HELPED, NO_EFFECT, HURT)) + " |"
        )
    for summary in summaries:
        plot = f"plots/{summary.name}.png"
        _plot_curves(summary, out / plot)
        lines += [
            "",
            f"## {summary.name}",
            "",
            f"**{summary.title}.** {summary.description}",
            f"Budget: {summary.epochs} epochs; seeds {summary.seeds}.",
            "",
            experiment_table(summary),
            "",
            f"![learning curves of {summary.name}]({plot})",
        ]
        for caption, file_name in summary.figures(out / "plots") if summary.figures else []:
            lines += ["", f"![{caption}](plots/{file_name})", "", f"*{caption}*"]
        lines += ["", conclusion(summary, claims.get(summary.name))]
    lines += ["", "## Machine", "", "```", *machine_lines, "```", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "results.json").write_text(
        json.dumps([summary.to_json() for summary in summaries], indent=2))
    return report
