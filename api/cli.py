"""`urbanwatch api`: serve the REST API with uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from urbanwatch.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "api",
        help="serve the REST API (OpenAPI docs at /docs)",
        description="Serve the REST API: the device registry (GET/POST /devices, GET/PATCH "
        "/devices/{id}) and districts. Interactive docs at http://HOST:PORT/docs.",
    )
    p.add_argument("--host", help="address to bind (default API_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default API_PORT or 8000)")
    p.add_argument(
        "--root-path",
        default="",
        help="path prefix a reverse proxy publishes the API under, e.g. /urbanwatch "
        "(the docs pages link their files and the OpenAPI document through it)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: `urbanwatch --help` (and every usage error) builds every command's
    # parser, and the app with all its routes takes a second of CPU to import.
    import uvicorn

    from api.app import create_app

    host = args.host or settings.api_host
    port = args.port or settings.api_port
    app = create_app(settings)  # refuses to start without API_SECRET_KEY
    print(f"urbanwatch API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, root_path=args.root_path, log_level="info")
    return 0
