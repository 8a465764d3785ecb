"""`genrec serve`: the HTTP recommendation endpoint over vLLM (or transformers) constrained beam search."""

from genrec.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app", "serve"]


def __getattr__(name: str):  # FastAPI / prometheus load on first use
    if name in ("create_app", "serve"):
        from genrec.serve import app

        return getattr(app, name)
    raise AttributeError(name)
