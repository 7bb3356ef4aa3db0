"""What `simulate live` keeps as it runs: an object census of the live simulator, no Kafka.

    python bench/simulator_memory.py --events 400000 --after 100000

Draws deliveries from ingestion.simulator's live iterator and counts the live Python objects
by type at --after and at --events; prints the types that grew and the process's peak RSS.
Diagnostic for the soak's producer memory (bench/README.md, Soak): not run by run_all.py.
"""

from __future__ import annotations

import argparse
import collections
import gc
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion.simulator import SimulationConfig
from ingestion.simulator.drivers import iter_live


def census() -> collections.Counter[str]:
    gc.collect()
    return collections.Counter(type(item).__name__ for item in gc.get_objects())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--after", type=int, default=100_000, help="first census (warm-up)")
    parser.add_argument("--companies", type=int, default=2)
    parser.add_argument("--rate", type=float, default=2_000.0)
    args = parser.parse_args(argv)
    deliveries = iter_live(SimulationConfig(seed=42, companies=args.companies), args.rate)
    first: collections.Counter[str] = collections.Counter()
    first_rss = 0
    for number, _ in enumerate(deliveries, start=1):
        if number == args.after:
            first, first_rss = census(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if number == args.events:
            break
    grown = census() - first
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    measured = args.events - args.after
    print(f"peak RSS {first_rss / 1024:.1f} -> {rss / 1024:.1f} MiB over {measured:,} events")
    for name, count in grown.most_common(8):
        print(f"  +{count:,} {name}")


if __name__ == "__main__":
    main()
