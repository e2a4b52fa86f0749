"""`python -m service.healthcheck`: exit 0 when the local service is ready (container HEALTHCHECK)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from service.settings import Settings


def main() -> int:
    settings = Settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
