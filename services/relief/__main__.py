"""python -m services.relief: serve on 127.0.0.1:RELIEF_PORT (8002)."""

from services.common.serve import serve
from services.common.settings import Settings
from services.relief.main import create


def main() -> None:
    settings = Settings.from_env("relief")
    serve(create(settings), settings.port)


if __name__ == "__main__":
    main()
