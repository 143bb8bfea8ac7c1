"""Entry point of `python -m bench`."""

from __future__ import annotations

from bench.suite import main

raise SystemExit(main())
