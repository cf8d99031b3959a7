"""``ledgerline dev up``: the whole stack on one machine, stopped as a whole by Ctrl-C.

Start order: PostgreSQL (embedded unless DATABASE_URL) → migrations → moto + the
stack's AWS resources → queue workers and scheduler → API gateway. Stop order is the
reverse, and every started service is stopped even when a later one fails to start.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from ledgerline import config
from ledgerline.crypto import masking

logger = logging.getLogger("ledgerline.stack")


class Stack:
    def __init__(self) -> None:
        self._stops: list[tuple[str, Callable[[], Any]]] = []
        self.stopping = threading.Event()

    def started(self, name: str, stop: Callable[[], Any]) -> None:
        self._stops.append((name, stop))
        logger.info("started %s", name)

    def shutdown(self) -> None:
        self.stopping.set()
        while self._stops:
            name, stop = self._stops.pop()
            try:
                stop()
                logger.info("stopped %s", name)
            except Exception:
                logger.exception("stopping %s failed", name)


def _database(stack: Stack) -> None:
    from ledgerline.db import migrate
    from ledgerline.local import embedded

    if embedded.use_unless_configured():
        data_dir = config.settings().data_dir
        stack.started("postgresql (embedded)", lambda: embedded.stop(data_dir))
    applied = migrate.migrate()
    logger.info("migrations applied: %s", ", ".join(applied) or "none pending")


def _aws(stack: Stack) -> str:
    from ledgerline.local import aws

    cfg = config.settings()
    # S3 objects and KMS keys are kept under the data directory: a restart keeps the
    # shipped audit trail verifiable and issued tokens valid.
    server = aws.start(log_file=cfg.data_dir / "moto.log", state_dir=cfg.data_dir / "aws")
    stack.started(f"moto on {server.endpoint_url}", server.stop)
    aws.point_library_at(server.endpoint_url)
    aws.bootstrap(server.endpoint_url)
    return server.endpoint_url


def _workers(stack: Stack) -> None:
    from ledgerline.local import scheduler, workers

    pool = workers.start()
    stack.started("queue workers", pool.stop)
    clock = scheduler.start()
    stack.started("scheduler", clock.stop)


def _gateway(stack: Stack, port: int) -> str:
    from ledgerline.local.gateway import GatewayProcesses, LocalGateway

    workers = int(os.environ.get("LEDGERLINE_API_WORKERS", "1"))
    if workers > 1:
        procs = GatewayProcesses(workers, port, config.settings().data_dir / "logs")
        stack.started(f"api on {procs.url} ({workers} processes)", procs.stop)
        return procs.url
    gw = LocalGateway(port=port).start()
    stack.started(f"api on {gw.url}", gw.stop)
    return gw.url


def _fake_gateway(stack: Stack, api_url: str) -> str:
    from ledgerline.local.fake_gateway import FakeGateway

    cfg = config.settings()
    try:
        fake = FakeGateway(port=cfg.fake_gateway_port, webhook_url=cfg.fake_gateway_webhook_url or api_url).start()
    except OSError as exc:
        raise RuntimeError(
            f"the fake payment gateway cannot listen on 127.0.0.1:{cfg.fake_gateway_port} ({exc}); "
            "stop what holds it or set LEDGERLINE_FAKE_GATEWAY_PORT"
        ) from exc
    stack.started(f"fake payment gateway on {fake.url}", fake.stop)
    return fake.url


def configure_logging(level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Log to stderr, masked like the Lambdas' own logs: gateway, worker and scheduler lines
    carry request paths, payload fields and exception text too."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s", stream=stream or sys.stderr)
    masking.install(logging.getLogger())


def run(port: int | None = None) -> int:
    configure_logging()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    cfg = config.settings()
    stack = Stack()

    def on_signal(signum: int, frame: Any) -> None:
        stack.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        _database(stack)
        aws_url = _aws(stack)
        # Before the workers: a payout worker may call the gateway as soon as it starts.
        fake_url = _fake_gateway(stack, f"http://127.0.0.1:{port or cfg.api_port}")
        _workers(stack)
        api_url = _gateway(stack, port or cfg.api_port)
        print(
            f"\nLedgerline is up.\n  API      {api_url}  (try: curl -s {api_url}/v1/health)\n"
            f"  AWS      {aws_url}  (moto)\n  payments {fake_url}  (fake gateway)\n"
            f"  data     {cfg.data_dir}\nCtrl-C stops everything.\n",
            file=sys.stderr,
            flush=True,
        )
        while not stack.stopping.wait(0.5):
            pass
        return 0
    finally:
        print("stopping…", file=sys.stderr, flush=True)
        stack.shutdown()
