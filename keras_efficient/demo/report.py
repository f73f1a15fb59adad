"""Writes the demo report: `report.md` with tables, learning-curve PNGs, JSON."""

import datetime
import json
import pathlib

import numpy as np


def _plot_curves(summary, path):
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
    axis.set_ylabel("test accuracy")
    axis.set_title(summary.title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
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


def write_report(summaries, out_dir, command, machine_lines, total_seconds):
    """Write `report.md`, `results.json` and one learning-curve plot per experiment.

    Returns:
        The path of `report.md`.
    """
    out = pathlib.Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# keras_efficient demo report",
        "",
        f"Generated {now} by `{command}` in {total_seconds:.0f} s.",
        "Data: scikit-learn's bundled digits (1,797 images, 8×8), stratified 75/25 split.",
        "Accuracy is on the held-out test split; step time is the median wall time of one",
        "training step (the first, which compiles, excluded); the ratio is against each",
        "experiment's baseline measured in the same run.",
        "",
        "## Summary",
        "",
        "| experiment | baseline | best variant | best accuracy | Δ vs baseline |",
        "|---|---|---|---:|---:|",
    ]
    for summary in summaries:
        best = max(summary.variants, key=lambda v: v.accuracy_mean)
        base = summary.variant(summary.baseline)
        lines.append(
            f"| [{summary.name}](#{summary.name}) | {base.name} "
            f"({base.accuracy_mean * 100:.2f}%) | {best.name} | "
            f"{best.accuracy_mean * 100:.2f}% | "
            f"{(best.accuracy_mean - base.accuracy_mean) * 100:+.2f} |"
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
    lines += ["", "## Machine", "", "```", *machine_lines, "```", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "results.json").write_text(
        json.dumps([summary.to_json() for summary in summaries], indent=2))
    return report
