"""The operator CLI as a shell runs it: output piped into a reader that stops early (``| head``)."""

from __future__ import annotations

import json
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


SECRET = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["--file", "/no/such/event.json"], "error: cannot read --file /no/such/event.json: No such file", 2),
        (["--secret", "whsec_!!!"], "error: --secret: ", 2),
        (["--url", "http://127.0.0.1:1"], "error: cannot post to http://127.0.0.1:1/v1/stores/demo/events: ", 1),
        (["--url", "localhost:3000"], "error: cannot post to localhost:3000/v1/stores/demo/events: ", 1),
    ],
)
def test_send_event_mistakes_are_one_line_not_a_traceback(
    argv: list[str], message: str, code: int, capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no local stack here: --url and --secret are what the command has
    defaults = {"--url": "http://127.0.0.1:1", "--secret": SECRET, "--store": "demo"}
    given = dict(zip(argv[::2], argv[1::2], strict=True))
    args = [part for flag, value in {**defaults, **given}.items() for part in (flag, value)]
    assert cli_main.main(["send-event", *args]) == code
    out, err = capsys.readouterr()
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""


def test_send_event_posts_to_the_store_id_as_one_path_segment(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: Any
) -> None:
    """A store id with a space (a typo) reaches the server as one encoded segment: its answer (401, no such
    store) is what the operator sees, not an InvalidURL traceback."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    paths: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            paths.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"title": "Unauthorized"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.chdir(tmp_path)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code = cli_main.main(["send-event", "--url", url, "--secret", SECRET, "--store", "no such/shop"])
    finally:
        server.shutdown()
    assert code == 1
    assert paths == ["/v1/stores/no%20such%2Fshop/events"]
    assert capsys.readouterr().out.startswith('401 {"title": "Unauthorized"}')


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["store", "show", "--id", ""], "error: no store ''"),
        (["store", "rotate-secret", "--id", ""], "no store"),
        (["report", "--store", ""], "error: no store ''"),
        (["explain", "--store", "tea-shop", "--cart", ""], "no cart '' in store 'tea-shop'"),
        (["explain", "--store", "", "--cart", "c-1"], "no cart 'c-1' in store ''"),
        (["erase", "--store", "", "--email", "taro@example.jp"], "error: no store ''"),
        (["templates", "show", "--store", ""], "error: no store ''"),
    ],
)
def test_an_empty_id_is_no_such_store_or_cart_not_a_traceback(
    store: Store, cli: Any, argv: list[str], message: str
) -> None:
    # DynamoDB refuses an empty key (ValidationException), which once surfaced as a botocore traceback.
    code, _, err = cli(*argv)
    assert code == 1
    assert message in err and "Traceback" not in err, err


def test_settings_nested_too_deep_or_too_large_are_refused_with_one_line(store: Store, cli: Any, tmp_path: Any) -> None:
    nested = tmp_path / "nested.json"
    nested.write_text('{"help": ' + "[" * 40_000 + "]" * 40_000 + "}", encoding="utf-8")
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"legal": {"address": "x" * 500_000}}), encoding="utf-8")
    for path, message in ((nested, "is nested too deeply"), (huge, "is over 100,000 characters")):
        for argv in (("store", "update", "--id", store.store_id), ("store", "create", "--id", "other-shop")):
            extra = ("--name", "n", "--sender-email", "s@example.jp") if argv[1] == "create" else ()
            code, _, err = cli(*argv, *extra, "--settings", str(path))
            assert code == 2, (argv, err)
            assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_catalog_nested_too_deep_is_refused_with_one_line(store: Store, cli: Any, tmp_path: Any) -> None:
    nested = tmp_path / "catalog.json"
    nested.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    code, _, err = cli("catalog", "upload", "--store", store.store_id, str(nested))
    assert code != 0 and "nested too deeply" in err and "Traceback" not in err, err


def test_preview_into_a_path_that_is_a_file_is_a_one_line_error(cli: Any, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("not a folder", encoding="utf-8")
    code, _, err = cli("preview", "--step", "1", "--out", "taken")
    assert code == 1 and err.startswith("error: --out taken cannot be a folder to write to"), err


def test_without_a_deployment_the_cli_says_how_to_choose_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: Any
) -> None:
    # Forgetting --local or --stack is the commonest slip; it once ended in a ConfigError traceback.
    monkeypatch.chdir(tmp_path)
    for name in ("STORES_TABLE", "EVENTS_TABLE", "CARTS_TABLE", "CONTACTS_TABLE", "MESSAGES_TABLE", "COUNTERS_TABLE"):
        monkeypatch.delenv(name, raising=False)

    assert cli_main.main(["report", "--store", "tea-shop"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: missing environment variables: STORES_TABLE") and "--local" in err, err
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_stack_is_one_line_from_aws_not_a_traceback(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["--stack", "no-such-stack", "report", "--store", "tea-shop"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-stack does not exist" in err, err
    assert len(err.strip().splitlines()) == 1
