"""Per-pair and per-clip analysers: the model- and pixel-level work between pairing and windows."""
