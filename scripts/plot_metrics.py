#!/usr/bin/python3
"""Plots the metrics of vrec train runs into one PNG.

usage: scripts/plot_metrics.py METRICS.jsonl [MORE.jsonl ...] --out=PNG [--title=T]

Reads the JSONL metrics file(s) that `vrec train` writes (MODEL_DIR/metrics.jsonl,
or --metrics_file) and draws two panels against examples trained:
  left   training loss (the mean loss of the steps since the previous progress
         line), one line per file;
  right  held-out recall@100 (solid) and recall@10 (dashed), when the file has
         evaluation records (--eval_every_seconds, and the final evaluation),
         with the oracle's recall@100 as a dotted horizontal line (the best any
         model can reach on a synthetic world) and the popularity baseline's
         as a faint dash-dot line; each run's last recall@100 is printed; and,
         when the job had a validation slice (--validation_users), the
         validation figure early stopping followed (dotted, with the kept best
         marked by a star).
Each file is named in the legend by its parent folder (the model folder); a
folder given instead of a file stands for its metrics.jsonl.

example: scripts/plot_metrics.py runs/*/metrics.jsonl --out=runs.png --title="lr sweep"

Exit codes: 0 written, 1 the PNG could not be written, 2 bad arguments, a
missing file or a bad line (the message names the file and line). A last line
without its newline that does not parse is skipped with a warning: the job may
still be writing it. The last stdout line is one JSON object: the PNG written
and the records read per file.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

PROG = "plot_metrics.py"


class MetricsError(Exception):
    """A file that cannot be read as vrec metrics; the text names file and line."""


class Run:
    """The records of one metrics file."""

    def __init__(self, path):
        self.path = path
        self.label = ""
        self.progress = []  # (examples, loss), records with at least one step
        self.evals = []  # (examples, eval object)
        self.validations = []  # (examples, validation object: metric, score, best, ...)
        self.skipped_tail = False


def read_metrics(path):
    """Returns the Run of `path`; raises MetricsError naming file and line."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    run = Run(path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise MetricsError("%s: no such file" % path)
    except (OSError, UnicodeDecodeError) as e:
        raise MetricsError("%s: cannot read: %s" % (path, e))
    lines = text.split("\n")
    unterminated = not text.endswith("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        last = number == len(lines)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if last and unterminated:
                run.skipped_tail = True
                continue
            raise MetricsError("%s:%d: not JSON (%s): %s" % (path, number, e.msg, snippet(line)))
        if not isinstance(record, dict):
            raise MetricsError("%s:%d: not a JSON object: %s" % (path, number, snippet(line)))
        examples = record.get("examples")
        if not is_number(examples):
            raise MetricsError("%s:%d: no numeric \"examples\": %s" % (path, number, snippet(line)))
        if "eval" in record:
            ev = record["eval"]
            if not isinstance(ev, dict) or not is_number(ev.get("recall@100")):
                raise MetricsError("%s:%d: \"eval\" has no numeric \"recall@100\": %s" %
                                   (path, number, snippet(line)))
            run.evals.append((examples, ev))
        elif "ps" in record:
            continue  # parameter-server stats (--ps_stats_seconds): not plotted
        elif "validation" in record:
            v = record["validation"]
            if not isinstance(v, dict) or not is_number(v.get("score")):
                raise MetricsError("%s:%d: \"validation\" has no numeric \"score\": %s" %
                                   (path, number, snippet(line)))
            run.validations.append((examples, v))
        elif "loss" in record:
            if not is_number(record["loss"]):
                raise MetricsError("%s:%d: \"loss\" is not a number: %s" %
                                   (path, number, snippet(line)))
            # A report before the first step carries no loss.
            if record.get("steps", 1) > 0:
                run.progress.append((examples, record["loss"]))
        else:
            raise MetricsError("%s:%d: neither a progress record (\"loss\"), an evaluation "
                               "(\"eval\") nor a validation (\"validation\"): %s" %
                               (path, number, snippet(line)))
    if not run.progress and not run.evals and not run.validations:
        raise MetricsError("%s: no progress or evaluation records (has the job made a step?)" %
                           path)
    return run


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def snippet(line, limit=80):
    line = line.strip()
    return line if len(line) <= limit else line[:limit] + "..."


def assign_labels(runs):
    """Names each run by its parent folder, with more of the path where two collide."""
    parts = [os.path.abspath(r.path).split(os.sep)[:-1] for r in runs]
    depth = 1
    while True:
        labels = ["/".join(p[-depth:]) or "/" for p in parts]
        if len(set(labels)) == len(labels) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    for run, label in zip(runs, labels):
        run.label = label


def plot(runs, out, title):
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    any_eval = any(r.evals or r.validations for r in runs)
    fig, axes = plt.subplots(1, 2 if any_eval else 1, figsize=(13 if any_eval else 7, 4.8),
                             squeeze=False)
    loss_ax = axes[0][0]
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        if run.progress:
            xs, ys = zip(*run.progress)
            loss_ax.plot(xs, ys, color=color, linewidth=1.6, marker="o", markersize=2.5,
                         label=run.label)
        else:
            loss_ax.plot([], [], color=color, label=run.label + " (no progress records)")
    loss_ax.set_title("training loss")
    loss_ax.set_xlabel("examples trained")
    loss_ax.set_ylabel("mean loss per step")
    style_axes(loss_ax)
    loss_ax.legend(loc="upper right", fontsize=9, frameon=False)

    if any_eval:
        plot_recall(axes[0][1], runs, colors)

    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)


def plot_recall(ax, runs, colors):
    """Recall@100 and @10 per run, with the oracle and popularity baselines."""
    evaluated = [(colors[i % len(colors)], r) for i, r in enumerate(runs) if r.evals]
    key = [Line2D([], [], color="0.25", linewidth=1.8, label="recall@100"),
           Line2D([], [], color="0.25", linewidth=1.4, linestyle="--", label="recall@10")]
    metrics = set()
    for i, run in enumerate(runs):
        if not run.validations:
            continue
        color = colors[i % len(colors)]
        xs = [x for x, _ in run.validations]
        ys = [v["score"] for _, v in run.validations]
        ax.plot(xs, ys, color=color, linewidth=1.2, linestyle=":", marker="s", markersize=2.5)
        best = max(range(len(ys)), key=lambda j: (ys[j], -j))  # the first best, as kept
        ax.plot([xs[best]], [ys[best]], color=color, marker="*", markersize=11, linestyle="")
        metrics.add(run.validations[-1][1].get("metric", "score"))
    if metrics:
        key.append(Line2D([], [], color="0.25", linewidth=1.2, linestyle=":", marker="s",
                          markersize=3, label="validation " + "/".join(sorted(metrics))))
        key.append(Line2D([], [], color="0.25", marker="*", markersize=9, linestyle="",
                          label="kept (best validation)"))
    for color, run in evaluated:
        xs = [x for x, _ in run.evals]
        at100 = [e["recall@100"] for _, e in run.evals]
        ax.plot(xs, at100, color=color, linewidth=1.8, marker="o", markersize=3)
        at10 = [(x, e["recall@10"]) for x, e in run.evals if is_number(e.get("recall@10"))]
        if at10:
            ax.plot(*zip(*at10), color=color, linewidth=1.4, linestyle="--", marker="o",
                    markersize=2.5)
        if len(evaluated) == 1:
            ax.annotate("%.3f" % at100[-1], xy=(xs[-1], at100[-1]), xytext=(5, 0),
                        textcoords="offset points", va="center", fontsize=8, color=color)

    # Baselines from each run's last evaluation: one gray line when the runs
    # share a dataset (the usual comparison), else one per run in its colour.
    for name, style, width, alpha in (("oracle", ":", 1.6, 1.0),
                                      ("popularity", "-.", 0.9, 0.6)):
        values = [(color, run.evals[-1][1].get(name, {}).get("recall@100"))
                  for color, run in evaluated]
        values = [(c, v) for c, v in values if is_number(v)]
        if not values:
            continue
        if len(set(v for _, v in values)) == 1:
            values = [("0.3", values[0][1])]
        for color, value in values:
            ax.axhline(value, color=color, linestyle=style, linewidth=width, alpha=alpha)
            ax.annotate("%s %.3f" % (name, value), xy=(0, value),
                        xycoords=("axes fraction", "data"), xytext=(4, 3),
                        textcoords="offset points", va="bottom", fontsize=8, color=color,
                        alpha=max(alpha, 0.8))
        key.append(Line2D([], [], color="0.3", linestyle=style, linewidth=width, alpha=alpha,
                          label="%s recall@100" % name))
    if len(evaluated) > 1:
        key += [Line2D([], [], color=color, linewidth=4,
                       label="%s: %.3f" % (run.label, run.evals[-1][1]["recall@100"]))
                for color, run in evaluated]
    ax.set_title("held-out recall")
    ax.set_xlabel("examples trained")
    ax.set_ylabel("recall")
    ax.set_ylim(bottom=0)
    style_axes(ax)
    ax.legend(handles=key, loc="best", fontsize=9, frameon=True, framealpha=0.9,
              edgecolor="0.85")


def style_axes(ax):
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.margins(x=0.06)
    ax.set_xlim(left=0)
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def main(argv):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n", 2)[2],
        usage="%(prog)s METRICS.jsonl [MORE.jsonl ...] --out=PNG [--title=T]",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", metavar="METRICS.jsonl",
                        help="metrics files of vrec train (MODEL_DIR/metrics.jsonl)")
    parser.add_argument("--out", required=True, metavar="PNG", help="the PNG to write")
    parser.add_argument("--title", default="", metavar="T", help="a title above both panels")
    args = parser.parse_args(argv)

    runs = []
    try:
        for path in args.metrics:
            runs.append(read_metrics(path))
    except MetricsError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 2
    for run in runs:
        if run.skipped_tail:
            print("%s: %s: skipped the unfinished last line (is the job still writing?)" %
                  (PROG, run.path), file=sys.stderr)
    assign_labels(runs)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        print("%s: --out=%s: folder %s does not exist" % (PROG, args.out, out_dir),
              file=sys.stderr)
        return 2
    try:
        plot(runs, args.out, args.title)
    except OSError as e:
        print("%s: cannot write %s: %s" % (PROG, args.out, e), file=sys.stderr)
        return 1
    print(json.dumps({"out": args.out,
                      "files": [{"path": r.path, "label": r.label,
                                 "progress_records": len(r.progress),
                                 "eval_records": len(r.evals),
                                 "validation_records": len(r.validations)} for r in runs]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
