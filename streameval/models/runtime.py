"""onnxruntime sessions: CUDA when onnxruntime-gpu and a GPU are present, CPU otherwise."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from streameval.errors import MissingExtraError, ModelError
from streameval.threads import OnnxRole, onnx_threads

log = logging.getLogger(__name__)


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingExtraError("models", "onnxruntime", "running face and video models") from exc
    return list(ort.get_available_providers())


def create_session(path: Path, *, device: str = "auto", threads: int | None = None, role: OnnxRole = "other") -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path``.

    ``device``: 'auto' (CUDA if available), 'cuda' (fail if unavailable) or 'cpu'. ``threads``: intra-op
    threads; None (``[models] threads = "auto"``) takes :func:`streameval.threads.onnx_threads` for ``role``,
    never onnxruntime's default of one thread per core, which oversubscribes the parallel lanes.
    """
    import onnxruntime as ort  # available_providers() reports a missing extra first

    providers_here = available_providers()
    if device not in {"auto", "cuda", "cpu"}:
        raise ModelError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
    want_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in providers_here)
    if device == "cuda" and "CUDAExecutionProvider" not in providers_here:
        raise ModelError("device 'cuda' asked for but onnxruntime has no CUDA provider: pip install 'streameval[gpu]'")
    providers = (["CUDAExecutionProvider"] if want_cuda else []) + ["CPUExecutionProvider"]
    if not Path(path).is_file():
        raise ModelError(f"model file {path} does not exist: run 'streameval models build'")
    options = ort.SessionOptions()
    options.intra_op_num_threads = onnx_threads(role, threads)
    options.inter_op_num_threads = 1  # graphs run sequentially (the default mode): no inter-op pool needed
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelError(f"cannot load model {path}: {exc}") from exc
    log.debug("loaded %s with %s, %d intra-op thread(s)", path, session.get_providers(), options.intra_op_num_threads)
    return session
