"""The face stage: each stream's faces found once per frame (detect, then track with the mesh) and shared by
every face analyser. Sits between pairing and the analysers (see :mod:`streameval.faces.stage`)."""

from streameval.faces.types import FrameFaces, PairFaces, TrackedFace, faces_of

__all__ = ["FrameFaces", "PairFaces", "TrackedFace", "faces_of"]
