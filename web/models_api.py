"""Which models this server runs: GET /api/v1/models, and the `model=` field of every upload."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from humanseg.core.registry import UnknownModel
from humanseg.web.errors import ErrorAnswer
from humanseg.web.services import services

bp = Blueprint("models", __name__)


@bp.get("/api/v1/models")
def list_models() -> Response:
    """The registered models (name, use, input, licence, card figures) and the default one."""
    registry = services().models
    return jsonify({"default": registry.default,
                    "models": [m.public(registry.default) for m in registry.models.values()]})


def upload_model(values: list[str]) -> str:
    """The model an upload asked for (the default when it names none); a 400 listing the choices, before
    anything is stored, for an unknown name."""
    registry = services().models
    names = [v.strip() for v in values if v.strip()]
    if len(set(names)) > 1:
        raise ErrorAnswer(400, "bad_parameter", f"model was sent {len(names)} times with different names; "
                          "send one", extra={"parameter": "model", "choices": registry.names})
    try:
        return registry.get(names[0] if names else None).name
    except UnknownModel as exc:
        raise ErrorAnswer(400, "unknown_model", str(exc),
                          extra={"parameter": "model", "choices": exc.choices}) from exc
