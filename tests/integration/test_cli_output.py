"""The operator CLI as a shell runs it: output piped into a reader that stops early (``| head``)."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from cartrecovery.cli import main as cli_main
from cartrecovery.domain.store import Store


def test_a_reader_that_stops_early_gets_no_traceback(
    store: Store, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # As `cartrecovery store show --id tea-shop | head -1` once head has its line: the pipe's reading end
    # is closed, so the first line the CLI writes fails with EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    with capsys.disabled(), open(write_end, "w", buffering=1, encoding="utf-8") as closed_pipe:
        saved, sys.stdout = sys.stdout, closed_pipe
        try:
            code = cli_main.main(["store", "show", "--id", store.store_id])  # the cli fixture wires it to moto
        finally:
            sys.stdout = saved

    assert code == 1  # and no BrokenPipeError raised out of main
