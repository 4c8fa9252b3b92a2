"""Benchmarks for ``make bench``: every timing is a ratio against a floor measured in the same run.

Each module measures one concern and returns plain data; ``__main__`` runs them all, prints a table and
writes ``bench/results.json``. Benchmarks never fail the build: the targets are what the project holds
itself to, and a missed one is shown as such.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = ("ingest", "send", "tracking", "unsubscribe", "sweep")
