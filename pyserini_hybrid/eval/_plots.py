"""Report figures (matplotlib, Agg backend), rendered from the report dict to PNG bytes.

- ``cross_heatmap_<system>.png``: AP by (query language, corpus language); off-diagonal cells are
  the Cross settings, the outlined diagonal the Mono settings; one colour scale shared by all
  systems of the report so heatmaps can be compared side by side.
- ``aggregates.png``: Mono / Cross / Multi (macro AP) per system, with 95% bootstrap CIs.
"""
from __future__ import annotations

import io
import math
from typing import Mapping

__all__ = ['plot_cross_heatmap', 'plot_aggregates']


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # Fixed metadata: the same report gives the same bytes.
    fig.savefig(buffer, format='png', dpi=150, bbox_inches='tight', metadata={'Software': None})
    _pyplot().close(fig)
    return buffer.getvalue()


def _matrix(report: Mapping, system: str) -> tuple[list[str], list[list[float]]]:
    from pyserini_hybrid.datasets import COLLECTIONS, parse_dataset_id

    langs = list(COLLECTIONS[report['collection']])
    index = {l: i for i, l in enumerate(langs)}
    cells = [[math.nan] * len(langs) for _ in langs]
    for dataset_id, row in report['systems'][system]['settings'].items():
        setting = parse_dataset_id(dataset_id)
        if setting.kind in ('mono', 'cross'):
            cells[index[setting.query_lang]][index[setting.doc_langs[0]]] = row[report['primary']]
    return langs, cells


def _shared_range(report: Mapping) -> tuple[float, float]:
    values = [v for name in report['systems'] for row in _matrix(report, name)[1] for v in row if not math.isnan(v)]
    if not values:
        return 0.0, 1.0
    low, high = math.floor(min(values) * 20) / 20, math.ceil(max(values) * 20) / 20
    return (low, high) if high > low else (max(0.0, low - 0.05), min(1.0, high + 0.05))


def plot_cross_heatmap(report: Mapping, system: str) -> bytes:
    """PNG heatmap of one system's Cross AP (diagonal: Mono), with language labels, values and a colour bar."""
    import numpy as np

    plt = _pyplot()
    from matplotlib.patches import Rectangle

    langs, cells = _matrix(report, system)
    data = np.ma.masked_invalid(np.array(cells, dtype=float))
    vmin, vmax = _shared_range(report)
    n = len(langs)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * n, 0.6 + 0.55 * n))
    cmap = plt.get_cmap('viridis').with_extremes(bad='#dddddd')
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(n), langs)
    ax.set_yticks(range(n), langs)
    ax.set_xlabel('corpus language')
    ax.set_ylabel('query language')
    primary = report['primary']
    cross = report['systems'][system]['aggregates'][primary].get('cross')
    title = f'{system}: Cross {primary}'
    if cross:
        title += f" (macro {cross['macro']:.3f})"
    ax.set_title(title + '\ndiagonal (outlined in red) = Mono', fontsize=10)
    for i in range(n):
        for j in range(n):
            value = cells[i][j]
            if math.isnan(value):
                continue
            shade = (value - vmin) / (vmax - vmin) if vmax > vmin else 0.5
            ax.text(j, i, f'{value:.2f}'.lstrip('0') if value < 1 else f'{value:.2f}', ha='center', va='center',
                    fontsize=7.5, color='black' if shade > 0.55 else 'white')
        # Inset so that neighbouring diagonal outlines do not touch.
        ax.add_patch(Rectangle((i - 0.44, i - 0.44), 0.88, 0.88, fill=False, edgecolor='red', linewidth=1.4))
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(f'{primary} (shared scale across systems)')
    return _png(fig)


def plot_aggregates(report: Mapping) -> bytes:
    """PNG grouped bar chart: Mono / Cross / Multi macro AP per system, 95% CI whiskers, values on bars."""
    import numpy as np

    plt = _pyplot()
    primary = report['primary']
    kinds = [k for k in ('mono', 'cross', 'multi')
             if any(k in b['aggregates'][primary] for b in report['systems'].values())]
    names = list(report['systems'])
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(kinds) * max(1, len(names)) * 0.6, 4.2))
    x = np.arange(len(kinds))
    colours = plt.get_cmap('tab10')
    for s, name in enumerate(names):
        agg = report['systems'][name]['aggregates'][primary]
        heights = [agg[k]['macro'] if k in agg else 0.0 for k in kinds]
        low = [agg[k]['macro'] - agg[k]['ci95'][0] if k in agg else 0.0 for k in kinds]
        high = [agg[k]['ci95'][1] - agg[k]['macro'] if k in agg else 0.0 for k in kinds]
        pos = x - 0.4 + width * (s + 0.5)
        bars = ax.bar(pos, heights, width * 0.92, yerr=[low, high], capsize=3, label=name, color=colours(s % 10))
        for bar, k, h in zip(bars, kinds, heights):
            if k in agg:
                ax.text(bar.get_x() + bar.get_width() / 2, h + max(high) + 0.01, f'{h:.3f}', ha='center',
                        va='bottom', fontsize=8)
    ax.set_xticks(x, [k.capitalize() for k in kinds])
    ax.set_ylabel(f'{primary} (macro)')
    ax.set_ylim(0, min(1.0, max(0.1, max(report['systems'][n]['aggregates'][primary][k]['macro']
                                          for n in names for k in kinds
                                          if k in report['systems'][n]['aggregates'][primary]) + 0.12)))
    ax.set_title(f"{report['dataset']}: Mono / Cross / Multi {primary} (95% bootstrap CI)", fontsize=10)
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.1), ncol=min(len(names), 5), fontsize=8, frameon=False)
    ax.grid(axis='y', alpha=0.3)
    ax.set_axisbelow(True)
    return _png(fig)
