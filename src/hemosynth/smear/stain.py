"""Stain profiles and stain harmonisation in optical-density space.

A Wright-Giemsa stained smear seen in bright field obeys Beer-Lambert's law: a pixel's colour
is the illuminant times ``10 ** -OD``, and the optical density ``OD`` (an RGB 3-vector) is a sum
of dye amounts times each dye's absorption vector. A :class:`StainProfile` describes a lab's
look with four colours as they appear in its images:

``background``
    the plasma field (taken as the illuminant: optical density 0),
``rbc``
    the body of a red cell (eosin-dominated),
``nucleus``
    a dense nucleus (the azure-eosin complex, purple),
``blue``
    basophilic cytoplasm (methylene blue / azure, a lymphocyte's rim).

The three cell colours give three optical-density vectors that form a basis of RGB OD space;
a pixel's coordinates in that basis are its *stain amounts*. Moving an image from one profile
to another keeps the amounts and swaps the basis and the illuminant. It maps a red cell of one
lab onto a red cell of the other, a nucleus onto a nucleus, and is the identity between a
profile and itself. This is the stain harmonisation of the renderer: every pasted cell, and
the background, go through the same map, so cells from one pool look like one slide.

The amounts are found by a slightly regularised (ridge, :data:`TRANSFER_RIDGE`) projection
whose residual passes through unchanged. Two labs' bases can be far apart, and the exact map
between them ill-conditioned (``pbc`` to ``bccd``: singular values 3.3 to 0.19): small blue
variations of dark PBC nuclei came out as speckled, over-saturated blue. The ridge bounds the
gain (2.3 for ``pbc`` to ``bccd``) at the cost of a few grey levels on the reference colours
(at most 11), and leaves a map between a profile and a slight variation of it near identity.

A profile's colours are what makes the *map* right, so a target lab's are best fitted, not
picked. The ``bccd`` nucleus and blue were fitted (red cell and background kept as measured)
so that PBC cells moved to ``bccd`` match BCCD *trainval* on the same statistics: the median
colour of the darkest 15% of each white-cell box and of the darkest 30% of each platelet box,
and of the central half of each red-cell box. Their blue channel was then set just under the
background's: the fit wanted more, but a dye cannot brighten, and the per-smear variation
clamps a colour to its background anyway. Measured on synthetic BCCD-like smears from the PBC
pool against BCCD trainval (white cells, platelets): before the fit (106, 78, 144) and
(160, 142, 191), after it (118, 94, 165) and (159, 140, 182), BCCD (123, 96, 199) and
(160, 155, 195). A linear optical-density map cannot reach BCCD's blue nuclei (they absorb
no blue at all, PBC's do) without turning red cells lavender.

The procedural atlas is drawn in stain amounts and converted to RGB with the ``pbc`` profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

#: smallest transmitted fraction used when taking logarithms (avoids log(0))
_T_MIN = 1.0 / 512.0


@dataclass(frozen=True)
class StainProfile:
    """A lab's stain, as four RGB colours (0-255) seen in its images.

    Attributes
    ----------
    name : str
    background : (float, float, float)
        Plasma / illuminant colour.
    rbc, nucleus, blue : (float, float, float)
        Colours of a red-cell body, a dense nucleus and basophilic cytoplasm.
    """

    name: str
    background: tuple[float, float, float]
    rbc: tuple[float, float, float]
    nucleus: tuple[float, float, float]
    blue: tuple[float, float, float]

    @property
    def illuminant(self) -> np.ndarray:
        """The background colour as float32 array of shape (3,)."""
        return np.asarray(self.background, np.float32)

    @property
    def basis(self) -> np.ndarray:
        """Optical-density vectors of rbc, nucleus and blue, an array of shape (3, 3) (rows)."""
        rows = [rgb_to_od(np.asarray(c, np.float32), self.illuminant) for c in
                (self.rbc, self.nucleus, self.blue)]
        return np.stack(rows).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as stored in a smear plan's appearance)."""
        return {
            "name": self.name,
            "background": [round(float(v), 3) for v in self.background],
            "rbc": [round(float(v), 3) for v in self.rbc],
            "nucleus": [round(float(v), 3) for v in self.nucleus],
            "blue": [round(float(v), 3) for v in self.blue],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StainProfile:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(d["name"]),
            *(tuple(float(v) for v in d[k]) for k in ("background", "rbc", "nucleus", "blue")),
        )


#: named profiles. ``pbc``: the PBC (CellaVision) images, warm cream field, mauve red cells,
#: violet nuclei. ``bccd``: the BCCD images, grey-green field, pale salmon red cells,
#: blue-violet nuclei (nucleus and blue fitted as a target of ``pbc``, see the module
#: docstring). ``classic``: a textbook May-Gruenwald-Giemsa look on a white field.
PROFILES: dict[str, StainProfile] = {
    "pbc": StainProfile(
        "pbc", background=(252, 227, 203), rbc=(206, 160, 166), nucleus=(85, 35, 137),
        blue=(150, 148, 212),
    ),
    "bccd": StainProfile(
        "bccd", background=(205, 207, 202), rbc=(186, 152, 150), nucleus=(124, 103, 200),
        blue=(163, 169, 200),
    ),
    "classic": StainProfile(
        "classic", background=(242, 238, 240), rbc=(222, 150, 160), nucleus=(80, 40, 120),
        blue=(140, 160, 210),
    ),
}

#: the profile the procedural atlas is drawn in
ATLAS_PROFILE = "pbc"


def get_profile(name: str) -> StainProfile:
    """The named stain profile.

    Raises
    ------
    ConfigError
        If there is no such profile.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown stain profile {name!r}; choose from {', '.join(PROFILES)}"
        ) from None


def rgb_to_od(rgb: np.ndarray, illuminant: np.ndarray) -> np.ndarray:
    """Optical density ``-log10(rgb / illuminant)``, float32, same shape as ``rgb``."""
    t = np.asarray(rgb, np.float32) / np.asarray(illuminant, np.float32)
    return -np.log10(np.clip(t, _T_MIN, None))


def od_to_rgb(od: np.ndarray, illuminant: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_od`: float32 RGB in 0-255 (not clipped above)."""
    return np.asarray(illuminant, np.float32) * np.power(10.0, -od, dtype=np.float32)


def amounts_to_rgb(amounts: np.ndarray, profile: StainProfile) -> np.ndarray:
    """Stain amounts (..., 3) (rbc, nucleus, blue) -> uint8 RGB under ``profile``."""
    od = amounts.astype(np.float32) @ profile.basis.astype(np.float32)
    return np.clip(od_to_rgb(od, profile.illuminant) + 0.5, 0, 255).astype(np.uint8)


def rgb_to_amounts(rgb: np.ndarray, profile: StainProfile) -> np.ndarray:
    """RGB (..., 3) -> stain amounts (..., 3) under ``profile``, float32."""
    inv = np.linalg.inv(profile.basis).astype(np.float32)
    return rgb_to_od(rgb, profile.illuminant) @ inv


def transfer_matrix(src: StainProfile, dst: StainProfile) -> np.ndarray:
    """The exact linear OD map from ``src`` to ``dst``: ``od_dst = od_src @ M``, shape (3, 3).

    Harmonisation uses the regularised :func:`stain_transfer`.
    """
    return (np.linalg.inv(src.basis) @ dst.basis).astype(np.float32)


#: ridge of the stain-amount projection of :func:`stain_transfer`, relative to the mean
#: squared norm of the source basis vectors
TRANSFER_RIDGE = 0.003


def stain_transfer(src: StainProfile, dst: StainProfile) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """The OD map from ``src`` to ``dst`` as three (3, 3) float32 matrices ``(P, D, R)``.

    ``od_dst = (od_src @ P) @ D + od_src @ R``: ``P`` projects an optical density onto stain
    amounts (rbc, nucleus, blue) under ``src``, ridge-regularised; ``D`` is the destination
    basis; ``R`` passes the part the source basis does not explain through unchanged.
    """
    s = src.basis
    lam = TRANSFER_RIDGE * float(np.mean(np.sum(s * s, axis=1)))
    p = s.T @ np.linalg.inv(s @ s.T + lam * np.eye(3))
    r = np.eye(3) - p @ s
    return p.astype(np.float32), dst.basis.astype(np.float32), r.astype(np.float32)


def apply_transfer(od: np.ndarray, maps: tuple[np.ndarray, np.ndarray, np.ndarray]
                   ) -> np.ndarray:
    """Optical densities ``od`` (..., 3) moved by the maps of :func:`stain_transfer`."""
    p, d, r = maps
    return (od @ p) @ d + od @ r


def transfer_stain(rgb: np.ndarray, src: StainProfile, dst: StainProfile) -> np.ndarray:
    """Re-stain an RGB image from profile ``src`` to ``dst``.

    Parameters
    ----------
    rgb : ndarray of shape (..., 3), uint8
    src, dst : StainProfile

    Returns
    -------
    ndarray of shape (..., 3), uint8
        Identical to ``rgb`` when ``src == dst``.
    """
    if src == dst:
        return np.asarray(rgb, np.uint8).copy()
    lut = _od_lut(src.illuminant)
    od = lut[np.arange(3), np.asarray(rgb, np.uint8)]
    out = od_to_rgb(apply_transfer(od, stain_transfer(src, dst)), dst.illuminant)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def harmonise_sprite(rgba: np.ndarray, src: StainProfile, dst: StainProfile) -> np.ndarray:
    """Re-stain a straight RGBA sprite from ``src`` to ``dst``; alpha is kept unchanged."""
    out = np.asarray(rgba, np.uint8).copy()
    out[:, :, :3] = transfer_stain(out[:, :, :3], src, dst)
    return out


def _od_lut(illuminant: np.ndarray) -> np.ndarray:
    """Per-channel OD of every uint8 level, array of shape (3, 256) (rows indexed by channel)."""
    levels = np.arange(256, dtype=np.float32)[None, :]
    return rgb_to_od(np.maximum(levels, 0.5), np.asarray(illuminant, np.float32)[:, None])


def vary_profile(
    profile: StainProfile, rng: np.random.Generator, amount: float
) -> StainProfile:
    """A per-smear variant of ``profile``: dye strengths, hues and background jittered.

    Each dye's OD vector is scaled by ``1 + u`` (``u`` uniform within +-``amount``) and its hue
    turned by mixing in the other dyes' directions (each within +-0.3 ``amount`` of its length);
    the background's brightness and tint vary by a few levels times ``amount / 0.1``.

    Parameters
    ----------
    profile : StainProfile
    rng : numpy.random.Generator
    amount : float
        Relative variation, e.g. 0.1 for +-10 % dye strength.
    """
    if amount <= 0:
        return profile
    basis = profile.basis
    unit = basis / np.linalg.norm(basis, axis=1, keepdims=True)
    new = np.empty_like(basis)
    for i in range(3):
        strength = 1.0 + rng.uniform(-amount, amount)
        mix = rng.uniform(-amount, amount, 3) * 0.3
        mix[i] = 0.0
        v = basis[i] * strength + (mix @ unit) * np.linalg.norm(basis[i])
        new[i] = np.maximum(v, 0.003)
    bg = profile.illuminant.astype(np.float64)
    bg = bg * (1.0 + rng.uniform(-0.3, 0.1) * amount) + rng.uniform(-40, 40, 3) * amount
    bg = np.clip(bg, 120, 255)
    cols = [np.clip(od_to_rgb(new[i].astype(np.float32), bg.astype(np.float32)), 1, 255)
            for i in range(3)]
    return StainProfile(
        profile.name,
        tuple(float(v) for v in bg),
        *(tuple(float(v) for v in c) for c in cols),
    )
