"""The optional ``dashboard`` process: rq-dashboard on ``REDIS_URL``, behind Basic auth.

Not installed on worker dynos: ``pip install -r requirements-dashboard.txt`` first. It
refuses to start (exit 2) without ``RQ_DASHBOARD_USERNAME`` and ``RQ_DASHBOARD_PASSWORD``
unless it listens on loopback only. The check of the credentials is our own (constant
time, over every page, static files included); rq-dashboard serves the pages, the queues,
the workers and each job's ``meta`` (where a running sync keeps its progress).
"""

from __future__ import annotations

import argparse
import hmac
import os
import signal
import sys
from typing import Any

from redis import Redis

from jobs.logs import configure_logging, get_logger
from jobs.models import open_database
from jobs.run.rows import latest_runs
from jobs.settings import SettingsError, _is_loopback, load_dashboard_settings
from jobs.watching.overview import sync_overview
from jobs.watching.sync_page import render_sync_page

DEFAULT_PORT = 9181
RUNS_SHOWN = 15  # the last runs on the page of the day


def make_app(
    redis_url: str,
    *,
    username: str | None,
    password: str | None,
    database_url: str | None = None,
) -> Any:
    """rq-dashboard's Flask app on ``redis_url``, with the page of the day at ``/sync``
    and ``/sync.json`` (from ``database_url``); with a username, every request needs it."""
    # optional: the dashboard extra (flask comes with rq-dashboard); main() says so when missing
    from flask import Response, request  # noqa: PLC0415
    from rq_dashboard.cli import make_flask_app  # noqa: PLC0415
    from rq_dashboard.web import setup_rq_connection  # noqa: PLC0415

    app = make_flask_app(None, None, None, "")  # no auth of its own: ours is below
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    app.config["DEPRECATED_OPTIONS"] = []
    setup_rq_connection(app)
    if username and password:
        expected = (username.encode(), password.encode())

        def basic_auth() -> Any:
            auth = request.authorization
            given = (
                ((auth.username or "").encode(), (auth.password or "").encode())
                if auth is not None
                else (b"", b"")
            )
            user_ok = hmac.compare_digest(given[0], expected[0])
            if not (hmac.compare_digest(given[1], expected[1]) and user_ok):
                return Response(
                    "credentials needed\n",
                    401,
                    {"WWW-Authenticate": 'Basic realm="smartup-sync dashboard"'},
                )
            return None

        app.before_request(basic_auth)

    add_sync_page(app, redis_url=redis_url, database_url=database_url)
    return app


def add_sync_page(app: Any, *, redis_url: str, database_url: str | None) -> None:
    """``/sync`` (:mod:`jobs.watching.sync_page`) and ``/sync.json``
    (:func:`jobs.sync_overview`)."""
    from flask import Response, jsonify  # optional: the dashboard extra  # noqa: PLC0415

    def overview_and_runs() -> tuple[dict[str, Any], list[Any]]:
        assert database_url is not None
        overview = sync_overview(database_url=database_url, connection=Redis.from_url(redis_url))
        db = open_database(database_url)
        try:
            return overview, latest_runs(RUNS_SHOWN)
        finally:
            db.close()

    def no_database() -> Response:
        return Response("DATABASE_URL is not set: the sync page needs it\n", 503)

    def sync_page() -> Any:
        if database_url is None:
            return no_database()
        return Response(render_sync_page(*overview_and_runs()), mimetype="text/html")

    def sync_json() -> Any:
        if database_url is None:
            return no_database()
        return jsonify(overview_and_runs()[0])

    app.add_url_rule("/sync", "smartup_sync_page", sync_page, methods=["GET"])
    app.add_url_rule("/sync.json", "smartup_sync_json", sync_json, methods=["GET"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or DEFAULT_PORT),
        help=f"port (default: $PORT, else {DEFAULT_PORT})",
    )
    args = parser.parse_args(argv)
    configure_logging()
    try:
        settings = load_dashboard_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if not settings.username and not _is_loopback(args.bind):
        print(
            "invalid setting RQ_DASHBOARD_USERNAME: expected a user name and "
            "RQ_DASHBOARD_PASSWORD when the dashboard listens beyond loopback "
            f"(--bind {args.bind})",
            file=sys.stderr,
        )
        return 2
    try:
        app = make_app(
            settings.redis_url,
            username=settings.username,
            password=settings.password,
            database_url=settings.database_url,
        )
    except ImportError:
        print(
            "rq-dashboard is not installed: pip install -r requirements-dashboard.txt",
            file=sys.stderr,
        )
        return 2
    from werkzeug.serving import make_server  # optional: the dashboard extra  # noqa: PLC0415

    server = make_server(args.bind, args.port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    get_logger().info(
        "dashboard.start", bind=args.bind, port=server.port, auth=bool(settings.username)
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
