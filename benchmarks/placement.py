"""Placement strategies on the paper's geometry, side by side.

A 2592 x 1944 field, the paper's Table 2 counts (RBC 669 sd 149, WBC 8.6 sd 10.5, platelets
4.3 sd 4.8), a red cell about 74 px across, the default pool; the same smears (same seeds, same
cells asked for) for every strategy. Prints one table: cells requested / placed / dropped,
attempts per cell, pair checks per attempt, pairs over the IoU bound found by a brute-force
audit of every pair, and placement time per smear.

Usage::

    python benchmarks/placement.py [--smears 20] [--pool atlas]
"""

from __future__ import annotations

import argparse
import time

from hemosynth.config import GenerationConfig
from hemosynth.pools.store import open_pool
from hemosynth.smear.counts import Census
from hemosynth.smear.placement import STRATEGIES, audit
from hemosynth.smear.plan import plan_smear


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smears", type=int, default=20)
    ap.add_argument("--pool", default="atlas")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    pool = open_pool(args.pool)
    base = GenerationConfig(seed=args.seed, pool=args.pool)
    order = ["random", "blocks", "lsh", "grid", "brute"]
    assert set(order) == set(STRATEGIES)
    rows = []
    for name in order:
        cfg = base.replace(**{"placement.strategy": name})
        census = Census(cfg, set(pool.classes))
        req = placed = dropped = attempts = checks = violations = 0
        place_s = plan_s = 0.0
        for i in range(args.smears):
            t0 = time.perf_counter()
            plan = plan_smear(cfg, pool, i, census)
            plan_s += time.perf_counter() - t0
            place_s += plan.stats.seconds
            req += sum(plan.requested.values())
            placed += len(plan)
            dropped += sum(plan.dropped.values())
            attempts += plan.stats.attempts
            checks += plan.stats.checks
            violations += audit(plan.boxes, plan.threshold)
        n = args.smears
        rows.append((name, req, placed, dropped, attempts / max(1, req), checks / max(1, attempts),
                     violations, 1000 * place_s / n, 1000 * plan_s / n))

    head = ("strategy", "requested", "placed", "dropped", "attempts/cell", "checks/attempt",
            "pairs > T", "place ms/smear", "plan ms/smear")
    print(f"{args.smears} smears of 2592x1944 px, Table 2 counts, RBC ~74 px, pool "
          f"{pool.name!r}, IoU threshold T ~ U{base.placement.iou_threshold_range}")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for r in rows:
        print(f"{r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]:.1f} | {r[6]} | "
              f"{r[7]:.0f} | {r[8]:.0f}")
    by = {r[0]: r for r in rows}
    ratio = by["brute"][5] / max(by["grid"][5], 1e-9)
    print(f"\ngrid: {by['grid'][6]} violations; {ratio:.0f}x fewer pair checks per attempt than "
          f"brute force; placement {by['lsh'][7] / max(by['grid'][7], 1e-9):.1f}x faster "
          f"than lsh")


if __name__ == "__main__":
    main()
