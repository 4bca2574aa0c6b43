"""Edge-aware refinement of the model's probability map at full resolution (numpy only).

The network sees the photo at a few hundred pixels; bilinear upsampling of its probabilities gives
soft but blind edges (halos, stair steps). A colour guided filter (He, Sun and Tang, 2010/2013) re-fits the
probabilities locally as a linear function of the photo's RGB values, so edges follow the photo's
own edges (hair, fingers). The fast variant computes the coefficients on a subsampled grid.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

# The grid the coefficients are fitted on (longest side). 256 scored as well as 384 and 512 on our
# val and held-out photos, 192 as well as 256; 128 (issue 31) within 0.002 of 192 on every check,
# paired per photo: val58 mean IoU -0.0004, BF1 -0.0008 (standard error 0.0005); teacher check
# -0.0003 / -0.0016; davis-person -0.0013 / -0.0020. It fits in 0.4 of 192's time (2.5 ms against
# 5.9 on a 640x480 photo; the refinement's own gain is +0.009 to +0.012 on the real-photo checks).
WORK_SIDE = 128
# The photo is first box-reduced by a whole factor down to at most this many times the grid, then
# resized bilinearly: 1.0 scored the same as 2.0 (within 0.0002) at half the resize's time.
GUIDE_REDUCING_GAP = 1.0


def box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel, windows clipped at the borders.

    x: (h, w), or (h, w, k) for k maps at once. Summed separably as 2r+1 shifted slices per axis
    in float32 (r is about 3 on the filter's grid; each window sum adds few values, so no running
    sums of thousands of values whose differences lose precision).
    """
    h, w = x.shape[:2]
    padded = np.zeros((h + 2 * r, w + 2 * r, *x.shape[2:]), np.float32)
    padded[r:r + h, r:r + w] = x
    rows = padded[0:h].copy()
    for k in range(1, 2 * r + 1):
        rows += padded[k:k + h]
    out = rows[:, 0:w].copy()
    for k in range(1, 2 * r + 1):
        out += rows[:, k:k + w]
    y0, y1 = np.clip(np.arange(h) - r, 0, h), np.clip(np.arange(h) + r + 1, 0, h)
    x0, x1 = np.clip(np.arange(w) - r, 0, w), np.clip(np.arange(w) + r + 1, 0, w)
    inverse = (1.0 / ((y1 - y0)[:, None] * (x1 - x0)[None, :])).astype(np.float32)
    out *= inverse if x.ndim == 2 else inverse[..., None]
    return out


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    return np.asarray(Image.fromarray(arr.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR), np.float32)


def guided_filter(guide: Image.Image, prob: np.ndarray, radius: int | None = None, eps: float = 1e-4,
                  work_side: int = WORK_SIDE) -> np.ndarray:
    """Refined probabilities (float32 in [0, 1], the guide's size) of `prob`, guided by the photo's colours.

    prob: at the guide's size, or already at work_size() (cheaper: no full-size map needed).

    radius: window radius at full resolution (default 1% of the longest side, at least 2 px).
    eps: regularisation; smaller follows the photo's edges more closely.
    work_side: the coefficients are fitted on a grid with this longest side (the fast guided filter).
    """
    rgb = _rgb(guide)
    a_coef, b_coef = _fit(rgb, prob, radius, eps, work_side)
    q = _apply(rgb, a_coef / 255.0, b_coef)
    return np.clip(q, 0.0, 1.0, out=q)


def guided_alpha(guide: Image.Image, prob: np.ndarray, threshold: float, ramp: float,
                 radius: int | None = None, eps: float = 1e-4, work_side: int = WORK_SIDE) -> np.ndarray:
    """uint8 soft alpha of the refined map: round(clip((q - (threshold - ramp)) / (2 ramp)) * 255).

    The same as soft_alpha(guided_filter(...)), but the ramp is folded into the low-resolution
    coefficients, so full size sees one multiply-add per channel and no float RGB copy.
    The alpha is 128 or more exactly where the refined map is at least the threshold.
    """
    rgb = _rgb(guide)
    a_coef, b_coef = _fit(rgb, prob, radius, eps, work_side)
    scale = 255.0 / (2 * ramp)
    q = _apply(rgb, a_coef * (scale / 255.0), (b_coef - (threshold - ramp)) * scale + 0.5)
    np.clip(q, 0.0, 255.0, out=q)
    return q.astype(np.uint8)  # +0.5 above, then truncation: rounds half up


def _rgb(guide: Image.Image) -> Image.Image:
    # convert() copies even when the mode already matches: the full photo is not copied again.
    return guide if guide.mode == "RGB" else guide.convert("RGB")


def _fit(rgb: Image.Image, prob: np.ndarray, radius: int | None, eps: float,
         work_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The filter's linear coefficients (a: h x w x 3 per unit of colour in [0, 1], b), box-averaged,
    on the small grid."""
    w, h = rgb.size
    small = work_size(w, h, work_side)
    if prob.shape not in ((h, w), small[::-1]):
        raise ValueError(f"probability map {prob.shape[::-1]} does not match the guide {rgb.size}")
    radius = radius or max(2, round(max(w, h) / 100))
    r = max(1, round(radius * small[0] / w))
    guide = rgb.resize(small, Image.Resampling.BILINEAR, reducing_gap=GUIDE_REDUCING_GAP)
    i_s = np.asarray(guide, np.float32) / 255.0
    p_s = _resize(prob, small)
    pairs = [(x, y) for x in range(3) for y in range(x, 3)]
    # Every window mean the fit needs, in one call: I (3 bands), p, I*p (3), I_x*I_y (6).
    maps = np.empty((*p_s.shape, 13), np.float32)
    maps[..., 0:3], maps[..., 3] = i_s, p_s
    maps[..., 4:7] = i_s * p_s[..., None]
    for k, (x, y) in enumerate(pairs):
        maps[..., 7 + k] = i_s[..., x] * i_s[..., y]
    means = box_mean(maps, r)
    mean_i, mean_p = means[..., 0:3], means[..., 3]
    cov_ip = means[..., 4:7] - mean_i * mean_p[..., None]
    var = {}
    for k, (x, y) in enumerate(pairs):
        var[x, y] = means[..., 7 + k] - mean_i[..., x] * mean_i[..., y]
        if x == y:
            var[x, y] = var[x, y] + eps
    a_coef = _solve_sym3(var, cov_ip)
    coef = np.dstack([a_coef, mean_p - (a_coef * mean_i).sum(-1)])
    coef = box_mean(coef, r)
    return coef[..., :3], coef[..., 3]


def _apply(rgb: Image.Image, a_coef: np.ndarray, b_coef: np.ndarray) -> np.ndarray:
    """b + sum_c a_c * colour_c at full size (a per unit of 8-bit colour), the coefficients scaled up
    bilinearly; float32, one band of the photo at a time."""
    size = rgb.size
    q = np.array(_upscale(b_coef, size), np.float32)  # a writable copy
    for c, band in enumerate(rgb.split()):
        term = np.asarray(_upscale(a_coef[..., c], size))
        q += term * np.asarray(band)
    return q


def _upscale(arr: np.ndarray, size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(arr, np.float32), "F").resize(size, Image.Resampling.BILINEAR)


def work_size(width: int, height: int, work_side: int = WORK_SIDE) -> tuple[int, int]:
    """The grid the coefficients are fitted on; a probability map of this size is used as it is."""
    scale = min(1.0, work_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _solve_sym3(v: dict, rhs: np.ndarray) -> np.ndarray:
    """Per-pixel solution of a symmetric 3x3 system by cofactors (several times faster than linalg.solve)."""
    c00 = v[1, 1] * v[2, 2] - v[1, 2] * v[1, 2]
    c01 = v[0, 2] * v[1, 2] - v[0, 1] * v[2, 2]
    c02 = v[0, 1] * v[1, 2] - v[0, 2] * v[1, 1]
    c11 = v[0, 0] * v[2, 2] - v[0, 2] * v[0, 2]
    c12 = v[0, 2] * v[0, 1] - v[0, 0] * v[1, 2]
    c22 = v[0, 0] * v[1, 1] - v[0, 1] * v[0, 1]
    det = v[0, 0] * c00 + v[0, 1] * c01 + v[0, 2] * c02
    x, y, z = rhs[..., 0], rhs[..., 1], rhs[..., 2]
    return np.stack([c00 * x + c01 * y + c02 * z, c01 * x + c11 * y + c12 * z, c02 * x + c12 * y + c22 * z],
                    -1) / det[..., None]
