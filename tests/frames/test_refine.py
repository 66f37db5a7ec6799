"""Mask post-processing: edge refinement snaps to the picture, smoothing damps flicker only."""

from __future__ import annotations

import numpy as np

from vidmatte._frames_refine import EdgeRefiner, TemporalSmoother, blend_masks, resize


def test_guided_filter_puts_the_mask_edge_on_the_picture_edge() -> None:
    # Full resolution: a bright field from x = 100; the low-resolution mask is a soft ramp around it.
    full = np.zeros((120, 160), np.uint8)
    full[:, 100:] = 220
    small = resize(full.astype(np.float32) / 255, 30, 40)
    coarse = np.clip((np.arange(40, dtype=np.float32) - 22) / 6, 0, 1)[None, :].repeat(30, 0)
    refined = EdgeRefiner(radius=2, eps=1e-3).refine(coarse, small, full).astype(np.float32) / 255
    naive = resize(coarse, 120, 160)
    step = np.diff(refined[60])
    # The sharpest change of the refined mask sits exactly on the picture's edge...
    assert int(np.argmax(step)) == 99
    # ...and is far sharper than anything plain upscaling produces.
    assert step.max() > 5 * np.diff(naive[60]).max()
    assert refined.shape == (120, 160)
    assert refined.min() == 0.0
    assert refined.max() == 1.0


def test_smoother_damps_flicker_but_follows_motion() -> None:
    rng = np.random.default_rng(1)
    smoother = TemporalSmoother()
    base = np.full((8, 8), 0.6, np.float32)
    outs = [smoother.smooth(base + rng.uniform(-0.05, 0.05, base.shape).astype(np.float32)) for _ in range(30)]
    flicker = np.std([o.mean() for o in outs[5:]])
    raw = 0.05 / np.sqrt(3) / 8  # std of the mean of 64 uniform(-0.05, 0.05) values
    assert flicker < raw
    moved = smoother.smooth(np.zeros((8, 8), np.float32))
    assert moved.max() < 0.01  # a jump of 0.6 is motion: taken at once


def test_resize_and_blend() -> None:
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert resize(image, 3, 4) is image
    assert resize(image, 6, 8).shape == (6, 8)
    a = np.zeros((4, 4), np.uint8)
    b = np.full((2, 2), 200, np.uint8)
    assert blend_masks(a, b, 0.25).tolist() == np.full((4, 4), 50).tolist()
