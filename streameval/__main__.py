"""``python -m streameval``: the same as the ``streameval`` command."""

from streameval.cli import main

raise SystemExit(main())
