"""The containers' health checks (also run by the topology test against local processes).

python3 healthcheck.py api            GET /api/v1/health on this container: "ok" or exit 1
python3 healthcheck.py worker [NODE]  the Celery node answers a ping (default: the name
                                      `azuraforge worker` gives, celery@<hostname>)
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request

from azuraforge_platform.settings import get_settings


def api() -> int:
    settings = get_settings()
    # a name the API answers to (AZURAFORGE_ALLOWED_HOSTS may leave loopback names out)
    host = next((h for h in settings.allowed_hosts if h != "*"), "127.0.0.1")
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.api_port}/api/v1/health", headers={"Host": host}
    )
    try:
        with urllib.request.urlopen(request, timeout=8) as answer:
            status = json.load(answer).get("status")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {exc}")
        return 1
    print(f"health: {status}")
    return 0 if status == "ok" else 1


def worker(node: str) -> int:
    from azuraforge_platform.jobqueue import make_celery

    app = make_celery(get_settings())
    replies = app.control.ping(destination=[node], timeout=20, limit=1) or []
    if not any(node in reply for reply in replies):
        print(f"unhealthy: {node} did not answer a ping")
        return 1
    print(f"{node}: pong")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["api"]:
        return api()
    if argv[:1] == ["worker"] and len(argv) <= 2:
        return worker(argv[1] if len(argv) == 2 else f"celery@{socket.gethostname()}")
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
