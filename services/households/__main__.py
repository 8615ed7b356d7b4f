"""python -m services.households: serve on 127.0.0.1:$HOUSEHOLDS_PORT (default 8001)."""

from services.common.serve import serve
from services.common.settings import Settings
from services.households.main import create

settings = Settings.from_env("households")
serve(create(settings), settings.port)
