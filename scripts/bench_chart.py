#!/usr/bin/env python3
"""Draws the benchmark chart: rows/s per workload and reader, from results.json.

Usage: bench_chart.py RESULTS_JSON OUTPUT_PNG
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    results_path, output_path = sys.argv[1], sys.argv[2]
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    workloads = results["workloads"]
    readers = [r["reader"] for r in workloads[0]["readers"]]
    width = 0.8 / len(readers)
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for index, reader in enumerate(readers):
        rates = [
            next(r["rows_per_second"] for r in w["readers"] if r["reader"] == reader)
            for w in workloads
        ]
        positions = [i + (index - (len(readers) - 1) / 2) * width for i in range(len(workloads))]
        ax.bar(positions, rates, width, label=reader)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels([w["name"] for w in workloads])
    ax.set_yscale("log")
    ax.set_ylabel("rows per second (log scale)")
    ax.set_title(f"weir benchmark, {results['date']}, {results['machine']}")
    ax.legend(fontsize="small")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(output_path, dpi=110)


if __name__ == "__main__":
    main()
