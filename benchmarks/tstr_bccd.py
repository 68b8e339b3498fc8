"""Train on synthetic, test on real (BCCD): four arms at one budget, on the CPU.

Arms (each a resumable step in ``OUT/<arm>/``, its ``result.json`` kept, so the table can be
built across several runs)::

    syn-pool        synthetic smears from a real pool (pools issue: PBC crops)
    syn-atlas       synthetic smears from the built-in procedural atlas
    real            BCCD trainval (292 images, VOC labels)
    real+syn        BCCD trainval + synthetic (from the pool when given, else the atlas)

Synthetic data is generated at BCCD's scale and field (640 x 480, 0.0735 um/px: a 7.5 um red
cell is 102 px), label set ``main+rbc``, with ``--syn-config`` (default
``benchmarks/configs/bccd_like.yaml``: per-image counts measured on BCCD *trainval* and the
``bccd`` stain profile; pass ``--syn-config ''`` for the paper's per-field counts). The test
set is the BCCD development set: WBC and Platelets on BCCD's boxes over the 72 test images,
RBC on the relabelled boxes over the 40 of them that were relabelled; the 72-image VOC test
split (all classes, original labels) is reported as a secondary number from the same
predictions.

``--strategies random,blocks,lsh,grid`` runs the separate placement comparison instead: one
synthetic arm per placement strategy, same budget.

Examples
--------
Full budget (28-30 min of training an arm on 2 cores)::

    python benchmarks/tstr_bccd.py --pool pools/pbc-v3 --out runs/tstr

A quick check of the whole path::

    python benchmarks/tstr_bccd.py --arms real --budget 600 --imgsz 320 --out runs/tstr-small
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ARMS = ("syn-pool", "syn-atlas", "real", "real+syn")
CLASSES = "RBC=RBC,WBC=WBC,Platelet=Platelets"


def _generate(folder: Path, pool: str, count: int, seed: int, strategy: str | None,
              workers: int, config: str | None) -> Path:
    from hemosynth import generate_dataset, load_config
    from hemosynth.dataset import read_manifest

    overrides = {
        "count": count, "seed": seed, "pool": pool,
        "canvas.width": 640, "canvas.height": 480, "canvas.um_per_px": 0.0735,
        "output.label_sets": ["main+rbc"], "output.formats": ["coco"],
        "placement.strategy": strategy,
    }
    cfg = load_config(config or None, **overrides)
    # a partial real pool: draw only the subtypes it has (real cells only, no atlas fill)
    from hemosynth import SUBTYPES, open_pool

    have = set(open_pool(pool).classes)
    missing = [c for c in SUBTYPES if c not in have]
    if missing:
        cfg = cfg.replace(**{"subtypes.exclude": sorted(set(cfg.subtypes.exclude) | set(missing))})
        print(f"pool {pool} lacks {', '.join(missing)}: excluded", flush=True)
    t = time.perf_counter()
    if (folder / "manifest.json").is_file():
        if read_manifest(folder).get("status") == "complete":
            return folder
        generate_dataset(cfg, folder, workers=workers, resume=True)
    else:
        generate_dataset(cfg, folder, workers=workers)
    print(f"generated {count} smears from {pool} in {time.perf_counter() - t:.0f} s: {folder}",
          flush=True)
    return folder


def _printer(label: str):
    """A progress callback printing a line every 5% of the training batches."""
    state = {"last": -1, "t": time.perf_counter()}

    def show(done: int, total: int, text: str) -> None:
        step = done * 20 // total
        if step != state["last"]:
            state["last"] = step
            mins = (time.perf_counter() - state["t"]) / 60
            print(f"[{label}] {done}/{total} batches, {text}, {mins:.1f} min", flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("HEMOSYNTH_SHARED_DATA", "../shared/data"),
                    help="the shared/data folder (bccd, bccd-relabel)")
    ap.add_argument("--pool", default=None, help="real pool folder (pools issue)")
    ap.add_argument("--out", default="runs/tstr")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated: {', '.join(ARMS)}")
    ap.add_argument("--strategies", default=None,
                    help="placement comparison instead: e.g. random,blocks,lsh,grid")
    ap.add_argument("--strategy-pool", default=None,
                    help="pool for the placement comparison (default: --pool, else atlas)")
    ap.add_argument("--budget", type=int, default=8000, help="training images seen per arm")
    ap.add_argument("--mix", type=float, default=0.5, help="synthetic share of real+syn")
    ap.add_argument("--model", default="yolov8n.yaml")
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--multi-scale", type=float, default=0.0)
    ap.add_argument("--workers", type=int, default=2, help="dataloader workers")
    ap.add_argument("--gen-workers", type=int, default=None,
                    help="workers generating the synthetic smears (default: --workers)")
    ap.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0")
    ap.add_argument("--yolo", action="append", default=[], metavar="KEY=VALUE",
                    help="another ultralytics training argument (repeatable), e.g. hsv_h=0.05")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--syn-config", default=str(Path(__file__).parent / "configs" /
                                                "bccd_like.yaml"),
                    help="hemosynth config of the synthetic smears (default: BCCD-like counts, "
                         "field and stain, from BCCD trainval statistics)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from hemosynth.evaluate.arms import plan_budget, run_arm
    from hemosynth.evaluate.coco_eval import score
    from hemosynth.evaluate.detector import TrainOptions
    from hemosynth.evaluate.report import arms_table, write_report
    from hemosynth.evaluate.testsets import (
        ClassMap,
        bccd_dev_specs,
        load_testset,
        parse_class_map,
        read_annotations,
    )

    data = Path(args.data)
    out = Path(args.out)
    dev = load_testset(bccd_dev_specs(data))
    voc72 = load_testset(str(data / "bccd" / "ImageSets" / "Main" / "test.txt"))
    real = read_annotations(data / "bccd" / "ImageSets" / "Main" / "trainval.txt")
    import yaml

    extra = {}
    for item in args.yolo:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--yolo expects KEY=VALUE, got {item!r}")
        extra[key.strip()] = yaml.safe_load(value)
    opts = TrainOptions(model=args.model, imgsz=args.imgsz, batch=args.batch,
                        multi_scale=args.multi_scale, workers=args.workers, seed=args.seed,
                        device=args.device, extra=extra)

    if args.strategies:
        jobs = [(f"syn-{s}", "synthetic", s) for s in args.strategies.split(",")]
        plan_arms = ["real+synthetic"]  # the same epoch length as the four-arm comparison
    else:
        wanted = [a.strip() for a in args.arms.split(",")]
        bad = [a for a in wanted if a not in ARMS]
        if bad:
            ap.error(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}")
        if "syn-pool" in wanted and not args.pool:
            print("syn-pool needs --pool; skipping it", file=sys.stderr)
            wanted.remove("syn-pool")
        jobs = [(a, {"syn-pool": "synthetic", "syn-atlas": "synthetic", "real": "real",
                     "real+syn": "real+synthetic"}[a], None) for a in wanted]
        # always the four-arm epoch length, so arms run at different times share a schedule
        plan_arms = ["real+synthetic"]
    budget = plan_budget(args.budget, plan_arms, len(real), 0, args.mix)
    n_syn = budget.epoch_images
    print(f"budget: {budget.epoch_images} images per epoch x {budget.epochs} epochs = "
          f"{budget.images_seen} images seen per arm; test: {'; '.join(dev.sources)}",
          flush=True)

    results = {}
    for label, arm, strategy in jobs:
        if strategy is not None:
            pool = args.strategy_pool or args.pool or "atlas"
        elif label == "syn-pool" or (label == "real+syn" and args.pool):
            pool = args.pool
        else:
            pool = "atlas"
        synthetic = []
        if arm != "real":
            tag = Path(pool).name if pool != "atlas" else "atlas"
            conf = Path(args.syn_config).stem if args.syn_config else "paper"
            folder = out / "data" / f"{tag}-{conf}-{strategy or 'default'}-{n_syn}-s{args.seed}"
            _generate(folder, pool, n_syn, args.seed, strategy, args.gen_workers or args.workers,
                      args.syn_config)
            synthetic = read_annotations(folder, label_set="main+rbc")
        maps = {
            "synthetic": parse_class_map(CLASSES, (), dev.categories),
            "real": parse_class_map(None, ["RBC", "WBC", "Platelets"], dev.categories),
        }
        if not synthetic:
            maps["synthetic"] = ClassMap({})
        t = time.perf_counter()
        print(f"[{label}] training ({arm})...", flush=True)
        r = run_arm(arm, out / label, dev, real if arm != "synthetic" else [], synthetic, maps,
                    opts, budget, args.mix,
                    sources={"synthetic": pool if synthetic else None,
                             "real": "bccd trainval" if arm != "synthetic" else None},
                    progress=_printer(label), verbose=args.verbose)
        # secondary number: the same predictions on the 72-image VOC test split
        preds = json.loads(Path(r["predictions"]).read_text())
        plain = [{"file_name": dev.images[p["image_id"] - 1].file.name,
                  "category": dev.categories[p["category_id"] - 1],
                  "bbox": p["bbox"], "score": p["score"]} for p in preds]
        r["secondary_voc72"] = score(voc72, plain).to_dict()
        results[label] = r
        print(f"[{label}] mAP@0.5 {r['scores']['map50']:.3f} (this run "
              f"{time.perf_counter() - t:.0f} s)", flush=True)
    if not results:
        return 1
    classes = ["RBC", "WBC", "Platelets"]
    print("\nBCCD development set (WBC, Platelets: BCCD boxes, 72 images; RBC: relabelled, "
          "40 images)")
    print(arms_table(results, classes, markdown=False))
    sec = {k: {**v, "scores": v["secondary_voc72"]} for k, v in results.items()}
    print("\nSecondary: BCCD test split, original VOC labels (72 images; RBC boxes incomplete)")
    print(arms_table(sec, classes, markdown=False))
    write_report(out, results, extra={"budget": budget.__dict__})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
