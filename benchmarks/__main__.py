"""Run benchmarks and print markdown tables: ``python -m benchmarks NAME ...``.

Names: ``tables`` (the development suite; ``--parts balanced long-tailed
threads legacy``, ``--tables``, ``--seeds``, ``--scalers``, ``--methods``,
``--shard I N``), ``quality`` (add ``--seeds 0 1 2 --tables digits ...`` and
``--families baselines dec scan``), ``imbalanced`` (also ``--ratios 0.01``),
``discovery`` (also ``--parts ncd gcd cv``),
``engine``, ``scale``, ``neighbors``, ``sinkhorn`` (the codes' share of an epoch).
Results are also written to ``benchmarks/results/NAME.md``.
"""

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "names",
        nargs="+",
        choices=[
            "tables",
            "quality",
            "imbalanced",
            "discovery",
            "pbn_network",
            "engine",
            "scale",
            "neighbors",
            "sinkhorn",
        ],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", default=None)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--families",
        nargs="+",
        default=None,
        help=(
            "quality: method families to run (baselines, dec, scan, scan-contrastive, ot); "
            "imbalanced: (baselines, dec, ot); default all"
        ),
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        default=None,
        help=(
            "discovery: protocols to run (ncd, gcd, cv); tables: parts to run (balanced, "
            "long-tailed, threads, legacy); default all"
        ),
    )
    parser.add_argument("--scalers", nargs="+", default=None, help="tables: standard, minmax")
    parser.add_argument(
        "--methods", nargs="+", default=None, help="tables: anchors and clusterers to run"
    )
    parser.add_argument(
        "--legacy-tree",
        default=None,
        help="tables: checkout of the commit whose defaults the legacy part fits",
    )
    parser.add_argument(
        "--shard",
        type=int,
        nargs=2,
        default=None,
        metavar=("I", "N"),
        help="tables: run every N-th fit from the I-th (N processes share a run)",
    )
    parser.add_argument(
        "--estimators", nargs="+", default=None, help="scale: estimators to run; default all"
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="scale: numbers of rows",
    )
    parser.add_argument(
        "--malloc-mmap-threshold",
        type=int,
        default=None,
        metavar="BYTES",
        help=(
            "scale: run the children with glibc's mmap threshold fixed at BYTES (e.g. "
            "131072), so that freed large blocks go back to the kernel at once; results "
            "go to results/scale_mmap_threshold.*"
        ),
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help=(
            "quality, imbalanced, discovery, pbn_network, scale: rebuild the table from the "
            "saved raw results"
        ),
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    for name in args.names:
        if name == "tables":
            from . import tables

            text = tables.main(args)
        elif name == "quality":
            from . import quality

            raw = RESULTS / "quality.jsonl"
            if not args.report_only:
                for table in args.tables or quality.TABLES:
                    for seed in args.seeds:
                        quality.run_job(table, seed, raw, args.families or quality.FAMILIES)
            records = [json.loads(line) for line in raw.read_text().splitlines()]
            text = (
                quality.report(records)
                + "\n\n"
                + quality.verdict(records)
                + "\n\n"
                + quality.settings_note()
            )
        elif name == "imbalanced":
            from . import imbalanced

            raw = RESULTS / "imbalanced.jsonl"
            if not args.report_only:
                for table in args.tables or imbalanced.TABLES:
                    for ratio in args.ratios:
                        for seed in args.seeds:
                            imbalanced.run_job(
                                table, ratio, seed, raw, args.families or imbalanced.FAMILIES
                            )
            records = [json.loads(line) for line in raw.read_text().splitlines()]
            text = "\n\n".join(
                [
                    imbalanced.report(records),
                    imbalanced.verdict(records),
                    imbalanced.settings_note(),
                ]
            )
        elif name == "discovery":
            from . import discovery

            raw = RESULTS / "discovery.jsonl"
            if not args.report_only:
                for table in args.tables or discovery.TABLES:
                    for seed in args.seeds:
                        discovery.run_job(table, seed, raw, args.parts or discovery.PARTS)
            records = [json.loads(line) for line in raw.read_text().splitlines()]
            text = "\n\n".join(
                [discovery.report(records), discovery.verdict(records), discovery.settings_note()]
            )
        elif name == "pbn_network":
            from . import pbn_network

            raw = RESULTS / "pbn_network.jsonl"
            if not args.report_only:
                pbn_network.run(raw, args.tables or pbn_network.TABLES, args.seeds)
            records = [json.loads(line) for line in raw.read_text().splitlines()]
            text = pbn_network.report(records)
        elif name == "engine":
            from . import engine

            text, _ = engine.run(device=args.device)
        elif name == "sinkhorn":
            from . import sinkhorn

            text, _ = sinkhorn.run(args.tables or sinkhorn.TABLES, device=args.device)
        elif name == "neighbors":
            from . import neighbors

            text, _ = neighbors.run(args.tables or neighbors.TABLES)
        else:
            from . import scale

            if args.malloc_mmap_threshold is not None:
                name = "scale_mmap_threshold"
            raw = RESULTS / f"{name}.jsonl"
            if not args.report_only:
                scale.run(
                    args.estimators or scale.ESTIMATORS,
                    args.sizes,
                    args.device,
                    raw,
                    args.malloc_mmap_threshold,
                )
            records = [json.loads(line) for line in raw.read_text().splitlines()]
            text = scale.report(records)
        (RESULTS / f"{name}.md").write_text(text + "\n")
        print(f"\n## {name}\n\n{text}\n", flush=True)


if __name__ == "__main__":
    main()
