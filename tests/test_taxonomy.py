import pytest

from hemosynth.errors import ConfigError
from hemosynth.taxonomy import (
    LABEL_SETS,
    MAIN_OF,
    MAIN_TYPES,
    POOL_CLASSES,
    SUBTYPES,
    canonical_class,
    label_set,
)


def test_counts_of_classes():
    assert len(POOL_CLASSES) == 18
    assert len(SUBTYPES) == 17
    assert len(set(POOL_CLASSES)) == 18
    assert len(MAIN_TYPES["WBC"]) == 13
    assert POOL_CLASSES[0] == "RBC"


def test_label_sets():
    assert LABEL_SETS["main"].names == ("WBC", "Platelet", "Nucleated RBC")
    assert len(LABEL_SETS["sub"].names) == 17
    assert LABEL_SETS["main+rbc"].names[0] == "RBC"
    main, sub, mr = (label_set(n) for n in ("main", "sub", "main+rbc"))
    assert main.class_id("RBC") is None
    assert sub.class_id("RBC") is None
    assert mr.class_id("RBC") == 0
    for c in SUBTYPES:
        assert main.names[main.class_id(c)] == MAIN_OF[c]
        assert sub.names[sub.class_id(c)] == c
        assert mr.names[mr.class_id(c)] == MAIN_OF[c]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("band_cell", "Band cell"), ("NRBC", "Nucleated RBC"), ("smudge cell", "Basket cell"),
     ("  rbc ", "RBC"), ("Basket (smudge) cell", "Basket cell")],
)
def test_aliases(alias, expected):
    assert canonical_class(alias) == expected


def test_unknown_class_and_set():
    with pytest.raises(ConfigError, match="'Myelocyte'"):
        canonical_class("Myelocyte")
    with pytest.raises(ConfigError, match="label set 'x'"):
        label_set("x")
