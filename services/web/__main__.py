"""python -m services.web: serve the pages on 127.0.0.1:$WEB_PORT (default 8000)."""

from services.common.serve import serve
from services.web.main import create
from services.web.settings import WebSettings


def main() -> None:
    settings = WebSettings.from_env()
    serve(create(settings), settings.port)


if __name__ == "__main__":
    main()
