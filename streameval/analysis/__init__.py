"""Per-frame analysis: action units, identity, clip features."""
