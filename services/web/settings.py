"""Settings of the web front, from the environment (the style of services/common/settings.py).

| variable | default | meaning |
| --- | --- | --- |
| WEB_PORT | 8000 | HTTP port of the pages and the /api proxy |
| HOUSEHOLDS_URL | http://127.0.0.1:$HOUSEHOLDS_PORT (8001) | where /api/households/* goes |
| RELIEF_URL | http://127.0.0.1:$RELIEF_PORT (8002) | where /api/relief/* goes |
| LEDGER_URL | http://127.0.0.1:$LEDGER_PORT (8003) | where /api/ledger/* goes |
| WEB_UPSTREAM_TIMEOUT | 30 | seconds to wait for a service (an import upload may take a while) |
| WEB_AUDIT_NATS_URL | $NATS_URL | where /ledger/audit reads relief's public events (stream RELIEF, ids and counts only) for coverage; empty: the report covers the ledger alone |

The web front has no event store: it serves pages and static files and passes /api calls, with
their Authorization header, to the three services. Its one NATS read is the audit report's, on
request, as `relief-audit report --relief` does.
"""

import os
from dataclasses import dataclass, field

from services.common.settings import DEFAULT_PORTS, Settings

UPSTREAMS = ("households", "relief", "ledger")


@dataclass(frozen=True)
class WebSettings:
    port: int = 8000
    upstreams: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    audit_nats_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "WebSettings":
        env = dict(os.environ if env is None else env)
        upstreams = {}
        for name in UPSTREAMS:
            port = env.get(f"{name.upper()}_PORT", DEFAULT_PORTS[name])
            upstreams[name] = env.get(f"{name.upper()}_URL", f"http://127.0.0.1:{port}").rstrip("/")
        return cls(port=Settings.from_env("web", env).port, upstreams=upstreams,
                   timeout=float(env.get("WEB_UPSTREAM_TIMEOUT", cls.timeout)),
                   audit_nats_url=env.get("WEB_AUDIT_NATS_URL", env.get("NATS_URL")) or None)
