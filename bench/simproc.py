"""The SmartUp simulator in a process of its own: ``python -m jobs.simulator``."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from bench.common import FILIAL_ID, ORDER_DAYS, PROJECT_ROOT, SEED, SMARTUP_PASSWORD, SMARTUP_USER

URL_PREFIX = "SMARTUP_BASE_URL="


@contextmanager
def simulator(
    products: int,
    orders: int = 0,
    *,
    lines: tuple[int, int] = (8, 8),
    stock_rows: int = 0,
    warehouses: int = 3,
) -> Iterator[str]:
    """Start a simulator serving generated data; yield its base URL; stop it (SIGTERM)."""
    command = [
        sys.executable, "-m", "jobs.simulator",
        "--products", str(products), "--orders", str(orders),
        "--lines-min", str(lines[0]), "--lines-max", str(lines[1]),
        "--days", str(ORDER_DAYS), "--seed", str(SEED), "--filial-ids", FILIAL_ID,
        "--user", SMARTUP_USER, "--password", SMARTUP_PASSWORD,
        "--stock-rows", str(stock_rows), "--warehouses", str(warehouses),
    ]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if not line.startswith(URL_PREFIX):
                process.kill()
                process.wait()
                errors.seek(0)
                raise RuntimeError(f"the simulator did not start: {errors.read()[-2000:]}")
            yield line[len(URL_PREFIX) :]
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
