"""HTTP serving: ``create_app(predictor)`` gives a FastAPI app (API + web page) to run or mount in any ASGI app."""

from instseg.serve.app import create_app
from instseg.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
