"""Run a SmartUp simulator as a standalone process: ``python -m jobs.simulator``.

Generates products, orders (dated within the last ``--days`` days up to today in the
company's time zone, ``--timezone`` or ``SMARTUP_TIMEZONE``, default Asia/Tashkent) and
the catalogue (groups, price types, prices, warehouses, stock), starts serving, prints
exactly one line ``SMARTUP_BASE_URL=http://host:port`` to stdout, and serves until
SIGTERM or SIGINT, then exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import sys
import threading
import zoneinfo
from collections.abc import Sequence
from types import FrameType

from jobs.simulator.account import generate_account
from jobs.simulator.server import DEFAULT_PASSWORD, DEFAULT_USER, SmartUpSimulator


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.simulator",
        description="Serve SmartUp's exports (products, orders, groups, price types, "
        "prices, warehouses, stock) with generated data.",
        epilog=f"Login: user {DEFAULT_USER!r}, password {DEFAULT_PASSWORD!r} "
        "(change them with --user and --password).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--products", type=int, default=500, help="products to generate")
    parser.add_argument("--orders", type=int, default=200, help="orders to generate")
    parser.add_argument("--lines-min", type=int, default=1, help="fewest lines per order")
    parser.add_argument("--lines-max", type=int, default=20, help="most lines per order")
    parser.add_argument("--days", type=int, default=7, help="days (up to today) orders span")
    parser.add_argument("--warehouses", type=int, default=3, help="warehouses to generate")
    parser.add_argument(
        "--stock-rows", type=int, default=None, help="balance rows (%(default)s: one per product)"
    )
    parser.add_argument(
        "--timezone",
        default=os.environ.get("SMARTUP_TIMEZONE") or "Asia/Tashkent",
        help="the company's time zone (SMARTUP_TIMEZONE)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0 = a free port)")
    parser.add_argument("--user", default=DEFAULT_USER, help="accepted Basic-auth login")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="accepted password")
    parser.add_argument(
        "--filial-ids", default="100", help="comma-separated filial ids orders belong to"
    )
    args = parser.parse_args(argv)
    args.filial_ids = [part.strip() for part in args.filial_ids.split(",") if part.strip()]
    if args.products < 0 or args.orders < 0:
        parser.error("--products and --orders must not be negative")
    if args.orders and not args.products:
        parser.error("orders need products: give --products of at least 1")
    if not 1 <= args.lines_min <= args.lines_max:
        parser.error("need 1 <= --lines-min <= --lines-max")
    if args.days < 1:
        parser.error("--days must be at least 1")
    if not args.filial_ids:
        parser.error("--filial-ids must name at least one filial")
    if args.warehouses < 0 or (args.stock_rows or 0) < 0:
        parser.error("--warehouses and --stock-rows must not be negative")
    if args.stock_rows and not (args.products and args.warehouses):
        parser.error("stock needs products and warehouses: give --products and --warehouses")
    try:
        zoneinfo.ZoneInfo(args.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        parser.error(f"--timezone: unknown time zone {args.timezone!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Generate data, serve it until SIGTERM/SIGINT, and return the exit status (0)."""
    args = _parse_args(argv)
    today = datetime.datetime.now(zoneinfo.ZoneInfo(args.timezone)).date()
    account = generate_account(
        products=args.products,
        orders=args.orders,
        today=today,
        days=args.days,
        filial_ids=args.filial_ids,
        lines=(args.lines_min, args.lines_max),
        warehouses=args.warehouses,
        stock_rows=args.stock_rows,  # None: one per product, none without a warehouse
        seed=args.seed,
    )
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with SmartUpSimulator(
        **account.as_kwargs(),
        timezone=args.timezone,
        user=args.user,
        password=args.password,
        host=args.host,
        port=args.port,
    ) as simulator:
        print(f"SMARTUP_BASE_URL={simulator.base_url}", flush=True)
        print(
            f"smartup simulator: {len(account.products)} products, {len(account.orders)} orders "
            f"(filials {', '.join(args.filial_ids)}) at {simulator.base_url}",
            file=sys.stderr,
            flush=True,
        )
        while not stop_requested.wait(timeout=0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
