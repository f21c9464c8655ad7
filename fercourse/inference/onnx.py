"""Export a model to ONNX and run it with ONNX Runtime (an optional, faster CPU backend).

Small models spend much of their CPU time in PyTorch's per-operator overhead; ONNX Runtime runs
the same graph with fused kernels and is ~2-4x faster at batch 1 on a laptop CPU. The exported
graph takes the same input as the PyTorch model, the normalised (B, 1, 48, 48) float tensor from
:func:`fercourse.preprocessing.to_tensor`, with a dynamic batch dimension, so the preprocessing
path does not change. ``tests/test_inference.py`` checks ONNX Runtime against PyTorch within
1e-4. Exporting needs the ``onnxscript`` package. Introduced in ``notebooks/09_mirror.ipynb``.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import preprocessing

INPUT_NAME = "faces"
OUTPUT_NAME = "logits"
MAX_BATCH = 64
"""Largest batch the exported graph accepts (a mirror frame holds a handful of faces)."""


def export_onnx(
    model: torch.nn.Module, path: str | Path | None = None, *, opset: int | None = None
) -> bytes:
    """Export ``model`` to ONNX with a dynamic batch dimension.

    Args:
        model: a fercourse model taking (B, 1, 48, 48) normalised faces and returning (B, 7)
            logits. It is exported in eval mode on the CPU (a copy is not made: the model is
            left in eval mode).
        path: also write the ``.onnx`` file here (atomically).
        opset: ONNX opset version (default: the exporter's choice).

    Returns:
        The serialised ONNX model (what :class:`OnnxRunner` takes).

    Raises:
        ImportError: when ``onnxscript`` (needed by ``torch.onnx.export``) is not installed.
    """
    try:
        import onnxscript  # noqa: F401  (torch's exporter imports it lazily; fail clearly here)
    except ImportError as exc:  # pragma: no cover - onnxscript is pinned in pyproject.toml
        raise ImportError("exporting to ONNX needs `onnxscript` (pip install onnxscript)") from exc
    model = model.cpu().eval()
    size = preprocessing.IMAGE_SIZE
    # Batch 2 as the example: with 1, torch.export may specialise the batch to a constant.
    example = torch.zeros(2, 1, size, size)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter warns about internals a student cannot fix
        program = torch.onnx.export(
            model,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    data = program.model_proto.SerializeToString()
    if path is not None:
        from ..utils import atomic_write_bytes

        atomic_write_bytes(path, data)
    return data


def cached_export(model: torch.nn.Module, weights: str | Path) -> bytes:
    """:func:`export_onnx`, kept under ``outputs/onnx-cache/`` for the checkpoint ``weights``.

    Exporting takes seconds (more for the transformers); the mirror's model dropdown should not
    pay that every time. The cache key is the weights file's SHA-256 and the PyTorch version, so
    a retrained checkpoint or another PyTorch never reuses a stale graph.
    """
    from ..utils import outputs_dir

    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:20]
    key = f"{getattr(model, 'model_name', type(model).__name__)}-{digest}-torch{torch.__version__}"
    path = outputs_dir() / "onnx-cache" / f"{key}.onnx"
    if path.is_file():
        return path.read_bytes()
    return export_onnx(model, path)


class OnnxRunner:
    """Run an exported model with ONNX Runtime on the CPU.

    Args:
        model: the serialised ONNX model (bytes from :func:`export_onnx`) or a path to a
            ``.onnx`` file.
        threads: intra-op threads (``None``: ONNX Runtime's default, one per core).

    Example:
        >>> runner = OnnxRunner(export_onnx(model))
        >>> logits = runner(fc.preprocessing.to_tensor(faces).numpy())   # (N, 7) float32
    """

    def __init__(self, model: bytes | str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(
            source, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Logits (N, 7) float32 for normalised faces (N, 1, 48, 48)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]
