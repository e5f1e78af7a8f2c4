"""``emu profile --plot``: irq vs plain side by side (needs the optional matplotlib)."""

import gzip
import io
import os

from .profile import bucket_label


def _bucket_low(label):
    return int(label.split("-")[0])


def bucket_axis(*hists):
    """Every log2 bucket from the lowest to the highest non-empty one of ``hists`` (profile
    histograms, ``{label: count}``), in order: empty buckets between keep their place, so
    the x axis stays a log2 scale.

    Parameters
    ----------
    *hists : dict
        Histograms of the profile document.

    Returns
    -------
    list of str
        Bucket labels; empty if every histogram is.
    """
    lows = [_bucket_low(k) for h in hists for k in h]
    if not lows:
        return []
    return [bucket_label(b) for b in range(min(lows).bit_length(), max(lows).bit_length() + 1)]


def _hist_xy(h, keys):
    return keys, [h.get(k, 0) for k in keys]


def _overhead(doc):
    over = doc["irq_overhead_cycles_per_pair"]
    if over is not None:
        return f"{over:+} cycles/pair"
    if any(v["outcome"] != "done" for v in doc["variants"].values()):
        return "a variant did not finish"
    return "no kmap_high+kunmap_high pair in the tasks"


def pyplot():
    """matplotlib's pyplot (Agg backend), or ValueError saying how to install it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'emu[plot]' "
                         "(or pip install matplotlib)") from None
    return plt


def check_plot_path(path):
    """``path`` if matplotlib can save a figure in the format its suffix names (none: PNG),
    else ValueError naming ``--plot`` and the accepted formats; before any run.

    Parameters
    ----------
    path : str or os.PathLike
        Where ``emu profile --plot`` is to save the figure.

    Returns
    -------
    str or os.PathLike
        ``path``, unchanged.
    """
    plt = pyplot()
    ext = os.path.splitext(os.fspath(path))[1][1:].lower()
    fig = plt.figure()
    try:
        formats = sorted(fig.canvas.get_supported_filetypes())
    finally:
        plt.close(fig)
    if ext and ext not in formats:
        raise ValueError(f"--plot {os.fspath(path)}: {ext!r} is not an image format "
                         f"matplotlib writes; accepted suffixes are "
                         f"{', '.join('.' + f for f in formats)}")
    return path


def plot_profile(doc, path):
    """Plot a profile in three panels (cycles per routine, irqs-off sections, IRQ latency).

    Parameters
    ----------
    doc : dict
        An ``emu profile --json`` document (:func:`emu.cost.profile.profile`).
    path : str or os.PathLike
        Where to save the figure; its suffix chooses the format.
    """
    plt = pyplot()
    v = doc["variants"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    task = {key: v[key]["routines_by_context"]["task"] for key in ("irq", "plain")}
    names = sorted(set(task["irq"]) | set(task["plain"]))
    x = range(len(names))
    for off, key, color in ((-0.2, "irq", "tab:red"), (0.2, "plain", "tab:blue")):
        ys = [task[key].get(n, {}).get("cycles_avg", 0) for n in names]
        axes[0].bar([i + off for i in x], ys, width=0.4, label=key, color=color)
    axes[0].set_xticks(list(x), names, rotation=30, ha="right")
    axes[0].set_ylabel("cycles per call")
    axes[0].set_title("routine cost in task context")
    axes[0].legend()
    for ax, field, title in ((axes[1], ("irqsoff", "histogram"), "irqs-off sections"),
                             (axes[2], ("irq_latency", "histogram"), "IRQ latency")):
        keys = bucket_axis(v["irq"][field[0]][field[1]], v["plain"][field[0]][field[1]])
        for key, color in (("irq", "tab:red"), ("plain", "tab:blue")):
            ks, ys = _hist_xy(v[key][field[0]][field[1]], keys)
            ax.plot(ks, ys, marker="o", label=key, color=color)
        ax.set_yscale("log")
        ax.set_xlabel("cycles (log2 bucket)")
        ax.set_ylabel("count")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=45)
        ax.legend()
    fig.suptitle(f"kmap_lock with and without IRQ disabling: {doc['cpu']}, {doc['workload']}"
                 f" ({_overhead(doc)}, longest irqs-off "
                 f"{doc['irqs_off_max_cycles']} cycles)")
    fig.tight_layout()
    _save(plt, fig, path)
    plt.close(fig)


def _save(plt, fig, path):
    """Save ``fig`` without the wall-clock time matplotlib puts in SVG, PDF and PostScript
    files (their creation date; SOURCE_DATE_EPOCH, reproducible-builds.org's, sets it, and a
    user's own value wins) and in a ``.svgz``'s gzip header, and with SVG element ids that do
    not change from run to run: the same profile gives the same file, byte for byte."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = epoch or "0"
    try:
        with plt.rc_context({"svg.hashsalt": "emu"}):
            if os.fspath(path).lower().endswith(".svgz"):
                buf = io.BytesIO()
                fig.savefig(buf, format="svg", dpi=110)
                with open(path, "wb") as f:
                    f.write(gzip.compress(buf.getvalue(), mtime=0))
            else:
                fig.savefig(path, dpi=110)
    finally:
        if epoch is None:
            del os.environ["SOURCE_DATE_EPOCH"]
