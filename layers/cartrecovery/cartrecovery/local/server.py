"""``python -m cartrecovery.local`` (``make run``): the whole product on one machine.

Binds 127.0.0.1:$PORT first (a port in use fails at once), starts the emulator and everything on it
(``runtime.start_runtime``), writes ``.local/demo-store.json`` and ``.local/runtime.json``, starts the
scheduler runner and the HTTP server, prints the base URL and the demo store's secrets, and runs until
SIGINT or SIGTERM, then stops the runner, the HTTP server and the emulator, and removes ``runtime.json``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from cartrecovery.clock import isoformat
from cartrecovery.local.config import LocalConfig, LocalConfigError
from cartrecovery.local.demo import DEMO_STORE_ID
from cartrecovery.local.gateway import Gateway
from cartrecovery.local.http_server import App, LocalHTTPServer
from cartrecovery.local.local_api import LocalApi
from cartrecovery.local.runtime import LocalRuntime, start_runtime

log = logging.getLogger("cartrecovery.local")


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def banner(runtime: LocalRuntime) -> str:
    base = runtime.base_url
    directory = runtime.config.state_dir
    return f"""
cartrecovery local stack is running (emulated AWS: nothing leaves this machine)

  Base URL         {base}
  Console          {base}/_local/
  Store id         {DEMO_STORE_ID}
  Webhook secret   {runtime.config.webhook_secret}
  Shopify secret   {runtime.config.shopify_secret}
  Virtual clock    {isoformat(runtime.clock.now())} (ticks with real time; POST /_local/clock/advance jumps)

  Written to {directory / "demo-store.json"}; the emulator's endpoint and tables are in
  {directory / "runtime.json"} (used by `.venv/bin/cartrecovery --local ...`).

Try:
  .venv/bin/cartrecovery send-event --example cart --email taro@example.jp
  curl -s -X POST {base}/_local/clock/advance -d '{{"seconds": 10800}}'
  curl -s '{base}/_local/outbox?to=taro@example.jp'

Press Ctrl+C to stop.
"""


def main() -> int:
    setup_logging()
    try:
        config = LocalConfig.from_env()
    except LocalConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        httpd = LocalHTTPServer((config.host, config.port))
    except OSError as exc:
        print(f"error: cannot listen on {config.host}:{config.port}: {exc} (set PORT to another port)", file=sys.stderr)
        return 1
    base_url = f"http://{config.host}:{httpd.server_address[1]}"
    try:
        runtime = start_runtime(config, base_url)
    except KeyboardInterrupt:
        httpd.server_close()
        return 130
    except Exception:
        log.exception("the local stack failed to start")
        httpd.server_close()
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    httpd.app = App(LocalApi(runtime), Gateway(runtime.functions))
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)
    try:
        runtime.write_state_files()
        runtime.runner.start()
        serving.start()
        print(banner(runtime), flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping...", flush=True)
    finally:
        runtime.runner.stop()
        if serving.is_alive():
            httpd.shutdown()
        httpd.server_close()
        runtime.stop()
        runtime.remove_runtime_file()
    return 0
