import pytest
import yaml

from hemosynth.config import GenerationConfig, dump_config, load_config, parse_settings
from hemosynth.errors import ConfigError


def test_defaults_are_the_paper_settings():
    cfg = GenerationConfig()
    assert (cfg.canvas.width, cfg.canvas.height) == (2592, 1944)
    assert cfg.canvas.um_per_px == pytest.approx(7.5 / 74)
    assert (cfg.counts.rbc.mean, cfg.counts.rbc.sd) == (669, 149)
    assert (cfg.counts.wbc.mean, cfg.counts.wbc.sd) == (8.6, 10.5)
    assert (cfg.counts.platelet.mean, cfg.counts.platelet.sd) == (4.3, 4.8)
    assert cfg.placement.strategy == "grid"
    assert cfg.placement.lsh_warmup == 60


def test_yaml_round_trip(tmp_path):
    cfg = GenerationConfig().replace(**{"placement.strategy": "lsh", "counts.rbc.mean": 300})
    p = tmp_path / "c.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg


def test_partial_yaml_and_gaussian_shorthand(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("count: 3\ncounts:\n  wbc: [20, 5]\nplacement:\n  blocks: [4, 3]\n")
    cfg = load_config(p)
    assert cfg.count == 3 and cfg.counts.wbc.mean == 20 and cfg.placement.blocks == (4, 3)


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("colour: red\n", "colour"),
        ("placement:\n  stratgy: grid\n", "placement.stratgy"),
        ("placement:\n  strategy: spiral\n", "placement.strategy"),
        ("placement:\n  iou_threshold_range: [0.5, 0.1]\n", "placement.iou_threshold_range"),
        ("counts:\n  rbc:\n    mean: -3\n    sd: 1\n", "counts.rbc.mean"),
        ("counts:\n  rbc:\n    mean: 3\n    sdev: 1\n", "counts.rbc.sdev"),
        ("output:\n  formats: [yolo, kitti]\n", "output.formats"),
        ("output:\n  jpeg_quality: high\n", "output.jpeg_quality"),
        ("count: 0\n", "count"),
        ("subtypes:\n  exclude: [Myelocyte]\n", "subtypes.exclude"),
        ("canvas: 5\n", "canvas"),
    ],
)
def test_bad_keys_and_values_name_the_key(tmp_path, text, culprit):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(culprit)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_parse_settings_reads_yaml_values():
    got = parse_settings(["render.blur_um=0.1", "output.formats=[coco, yolo]", "pool=atlas",
                          "subtypes.exclude=[Basket cell]", "render.background_rgb=null"])
    assert got == {"render.blur_um": 0.1, "output.formats": ["coco", "yolo"], "pool": "atlas",
                   "subtypes.exclude": ["Basket cell"], "render.background_rgb": None}
    cfg = GenerationConfig().replace(**{k: v for k, v in got.items() if v is not None})
    assert cfg.render.blur_um == 0.1 and cfg.subtypes.exclude == ("Basket cell",)
    for bad in ("render.blur_um", "=3", "output.formats=[coco"):
        with pytest.raises(ConfigError):
            parse_settings([bad])


def test_replace_rejects_unknown_dotted_key():
    with pytest.raises(ConfigError, match="placement.nope"):
        GenerationConfig().replace(**{"placement.nope": 1})


def test_every_key_documented_in_dump():
    data = yaml.safe_load(dump_config(GenerationConfig()))
    assert set(data) == {"count", "seed", "pool", "canvas", "counts", "subtypes", "placement",
                         "render", "output"}


def test_bccd_like_variants_differ_only_in_platelet_counts():
    from pathlib import Path

    from hemosynth.config import load_config

    root = Path(__file__).resolve().parents[1] / "benchmarks" / "configs"
    base = load_config(root / "bccd_like.yaml").to_dict()
    more = load_config(root / "bccd_like_platelets.yaml").to_dict()
    assert more["counts"].pop("platelet") != base["counts"].pop("platelet")
    assert more == base
