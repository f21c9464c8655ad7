"""A real face photo that ships inside an installed package, for every machine without a camera.

The mirror's snapshot mode, the bundled model's reference prediction, ``python -m fercourse bench
mirror`` and the browser test's fake camera all start from it. Introduced in
``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_photo"]


def sample_photo() -> np.ndarray:
    """A real face photo that ships with matplotlib (Grace Hopper), as (H, W, 3) uint8 RGB."""
    import matplotlib.image as mpimg
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        image = mpimg.imread(fh, format="jpg")
    return np.ascontiguousarray(image[:, :, :3]).astype(np.uint8)
