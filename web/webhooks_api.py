"""Webhooks in the API: the callback fields of an upload, and a batch's delivery records."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.wrappers import Response
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from humanseg.core import webhook_targets
from humanseg.core.db import session_scope
from humanseg.core.models import Batch, WebhookDelivery
from humanseg.core.webhooks import (
    WebhookConfig,
    WebhookConfigError,
    delivery_json,
    new_secret,
    parse_events,
    secret_bytes,
)
from humanseg.web.errors import ErrorAnswer
from humanseg.web.lookup import get_batch_or_404
from humanseg.web.services import services

bp = Blueprint("webhooks", __name__)


def _bad(parameter: str, message: str) -> ErrorAnswer:
    return ErrorAnswer(400, "bad_parameter", f"{parameter}: {message}", extra={"parameter": parameter})


def webhook_fields(form: MultiDict) -> WebhookConfig | None:
    """The upload's webhook_url / webhook_events / webhook_secret, checked (400 when refused)."""
    url = (form.get("webhook_url") or "").strip()
    events, secret = form.getlist("webhook_events"), (form.get("webhook_secret") or "").strip()
    if not url:
        if events or secret:
            raise _bad("webhook_url", "webhook_events and webhook_secret need a webhook_url")
        return None
    try:
        # Checked now so the client hears at once; checked again at every delivery.
        webhook_targets.resolve(url, services().settings.webhook_allow_hosts)
    except webhook_targets.TargetRefused as exc:
        raise ErrorAnswer(400, "webhook_url_refused", f"webhook_url: {exc}",
                       extra={"parameter": "webhook_url"}) from exc
    try:
        wanted = parse_events(events)
        if secret:
            secret_bytes(secret)
    except WebhookConfigError as exc:
        raise _bad(exc.parameter, exc.reason) from exc
    return WebhookConfig(url, wanted, secret or new_secret())


def webhook_json(batch: Batch, *, with_secret: bool = False) -> dict[str, Any] | None:
    """A batch's callback (the secret only in the answer to the upload that set it)."""
    if not batch.webhook_url:
        return None
    body: dict[str, Any] = {"url": batch.webhook_url,
                            "events": (batch.webhook_events or "").split(",")}
    if with_secret:
        body["secret"] = batch.webhook_secret
    return body


@bp.get("/api/v1/batches/<batch_id>/webhooks")
def batch_deliveries(batch_id: str) -> Response:
    """The batch's callback and its deliveries, newest first (?limit=, default 100)."""
    raw = request.args.get("limit") or "100"
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise ErrorAnswer(400, "bad_parameter", "limit must be between 1 and 500",
                       extra={"parameter": "limit"})
    with session_scope(services().sessions) as session:
        batch = get_batch_or_404(batch_id, session)
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.batch_id == batch_id)
                               .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                               .limit(int(raw))).all()
        return jsonify({"batch_id": batch_id, "webhook": webhook_json(batch),
                        "deliveries": [delivery_json(r) for r in rows]})
