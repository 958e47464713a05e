"""How many threads each part of an evaluation uses: decided here, not inherited from library defaults.

An evaluation already runs in parallel: two decoder threads, one thread per analysis lane (faces, identity,
reality, pixel) and the event loop. Libraries that also start one worker per core inside each lane (OpenBLAS,
OpenMP, OpenCV, onnxruntime) oversubscribe the machine: on 2 cores a 2-thread I3D next to a busy face lane ran
1.8x slower than a 1-thread one and slowed the face lane 2.7x (docs/models.md). So:

* BLAS/OpenMP and OpenCV get one thread for the whole run (:func:`numeric_threads`, entered by
  :func:`streameval.evaluation.evaluate`); the parallelism is across lanes.
* onnxruntime gets :func:`onnx_threads` intra-op threads per session: 1 for the per-frame models, and for I3D
  (a big batch every 16 pairs) the cores left after the per-frame lanes, at most 2.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from typing import Any, Literal

log = logging.getLogger(__name__)

OnnxRole = Literal["detector", "mesh", "embedder", "i3d", "other"]
ONNX_ROLES: tuple[OnnxRole, ...] = ("detector", "mesh", "embedder", "i3d", "other")
# Cores the per-frame lanes and the decoders keep busy at real time; I3D may use what is left.
_PER_FRAME_CORES = 2
_I3D_MAX_THREADS = 2  # measured up to 2 (docs/models.md); more is untested, not forbidden: set [models] threads


def cpu_count() -> int:
    """Cores this process may run on (CPU affinity, e.g. ``taskset`` or a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def onnx_threads(role: OnnxRole, configured: int | None = None, *, cores: int | None = None) -> int:
    """Intra-op threads for one onnxruntime session of ``role`` (see :data:`ONNX_ROLES`).

    ``configured``: ``[models] threads`` when the user set a number (it wins for every model); None is 'auto':
    1 for per-frame models (their lanes already run in parallel), and for ``i3d``
    ``clamp(cores - 2, 1, 2)``: 1 on a 2-core machine, 2 from 4 cores on.
    """
    if role not in ONNX_ROLES:
        raise ValueError(f"unknown onnx role {role!r}; expected one of {', '.join(ONNX_ROLES)}")
    if configured is not None:
        if configured < 1:
            raise ValueError(f"threads must be >= 1, got {configured}")
        return configured
    if role == "i3d":
        n = cpu_count() if cores is None else cores
        return max(1, min(_I3D_MAX_THREADS, n - _PER_FRAME_CORES))
    return 1


def _load_numerics() -> Any:
    """Import the libraries whose thread pools we limit: threadpoolctl only sees pools already loaded.

    numpy and scipy.linalg bring their OpenBLAS builds; cv2 (optional) its own pool and often its own OpenBLAS.
    Returns the cv2 module or None.
    """
    importlib.import_module("numpy")
    importlib.import_module("scipy.linalg")
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


@contextlib.contextmanager
def numeric_threads(limit: int = 1) -> Iterator[None]:
    """Within the block, BLAS/OpenMP libraries and OpenCV use at most ``limit`` threads; restored on exit.

    A context rather than a global setting so that a Python caller (the API, a notebook, the tests) gets its
    own settings back after a run. The limits are process-wide (OpenBLAS and OpenCV have no per-thread
    setting), so they also hold in the lanes' worker threads; two evaluations overlapping in one process share
    them, and the first to finish restores the previous values.
    """
    from threadpoolctl import threadpool_limits

    cv2 = _load_numerics()
    previous_cv2 = None
    if cv2 is not None:
        previous_cv2 = cv2.getNumThreads()
        cv2.setNumThreads(limit)
    try:
        with threadpool_limits(limits=limit):
            log.debug("numeric libraries limited to %d thread(s)", limit)
            yield
    finally:
        if cv2 is not None and previous_cv2 is not None:
            cv2.setNumThreads(previous_cv2)
