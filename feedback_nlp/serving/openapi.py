"""The server's OpenAPI description of POST /predict: the records a task reads and the rows it returns.

Why by hand: LitServe's generated /predict takes and returns any JSON (our LitAPI's hooks are not
annotated, so that the validation happens at the HTTP edge, middleware.py). Clients and fuzzers
(tests/test_serving_fuzz.py drives schemathesis from this document) need the real contract: the
record fields of core/records.py's scoring decoders, the per-request limits, and every status
the edge answers with.
"""

from __future__ import annotations

from typing import Any

from feedback_nlp.core.records import SPEAKERS, Limits
from feedback_nlp.serving.routes import Traffic

_ID = {
    "anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}, {"type": "null"}],
    "description": "echoed in the row (missing or null: the record's position in the request)",
}


def _text(limits: Limits, description: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "minLength": 1, "description": description}
    if limits.max_chars is not None:
        out["maxLength"] = limits.max_chars
    return out


def record_schema(kind: str, limits: Limits) -> dict[str, Any]:
    """JSON Schema of one record of `kind` (other fields are allowed and ignored)."""
    text = _text(limits, "the text to score (not blank, valid Unicode)")
    if kind in ("claim", "feedback"):
        props: dict[str, Any] = {"id": _ID, "text": text, "language": {"type": ["string", "null"]}}
        if kind == "claim":  # the FCC flag, kept in the prediction log
            props["escalated"] = {"type": ["boolean", "null"]}
        required = ["text"]
    elif kind == "transcript":
        turn = {
            "type": "object",
            "properties": {"speaker": {"enum": list(SPEAKERS)}, "text": text},
            "required": ["speaker", "text"],
        }
        props, required = {"id": _ID, "turns": {"type": "array", "items": turn, "minItems": 1}}, ["turns"]
    elif kind == "question":
        props, required = {"id": _ID, "question": text}, ["question"]
    else:
        raise ValueError(f"unknown record kind {kind!r}")
    return {"type": "object", "properties": props, "required": required}


ROW_FIELDS: dict[str, dict[str, Any]] = {
    "product_safety": {
        "label": {"type": "string"},
        "probability": {"type": "number"},
        "decision": {"enum": [0, 1]},
        "threshold": {"type": "number"},
    },
    "multilevel_issues": {
        "coarse": {"type": "array", "items": {"type": "string"}},
        "granular": {"type": "array", "items": {"type": "string"}},
    },
    "mcml_bert": {"coarse": {"type": "array", "items": {"type": "string"}}, "probabilities": {"type": "object"}},
    "seacat": {"label": {"type": "string"}},
    "universal_model": {"neighbors": {"type": "array"}},
}


def row_schema(task: str) -> dict[str, Any]:
    props = {
        "id": {"type": "string"},
        "model_version": {"type": "string"},
        "predicted_at": {"type": "string", "format": "date-time"},
        **ROW_FIELDS.get(task, {}),
    }
    return {"type": "object", "properties": props, "required": ["id", "model_version", "predicted_at"]}


ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
        "status": {"type": "integer"},
    },
    "required": ["error"],
}


def predict_operation(kind: str, task: str, limits: Limits) -> dict[str, Any]:
    records: dict[str, Any] = {"type": "array", "items": record_schema(kind, limits), "minItems": 1}
    if limits.max_records is not None:
        records["maxItems"] = limits.max_records

    def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    return {
        "summary": f"Score {kind} records with the {task} model",
        "description": "A JSON list of records (or {\"records\": [...]}); one row per record, matched by id.",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            records,
                            {"type": "object", "properties": {"records": records}, "required": ["records"]},
                        ]
                    }
                }
            },
        },
        "responses": {
            "200": json_body({"type": "array", "items": row_schema(task)}, "one row per record, in request order"),
            "413": json_body(ERROR, "over a configured limit (body bytes, records per request, characters)"),
            "422": json_body(ERROR, "invalid records: every problem with its record index and field"),
            "500": json_body(ERROR, "the model failed on this request (only this request; logged)"),
            "503": {"description": "the model is not loaded (yet, or it failed to load)"},
            "504": {"description": "the request waited longer than --timeout"},
        },
    }


def install(app: Any, kind: str, task: str, limits: Limits, traffic: Traffic | None = None) -> None:
    """Make `app.openapi()` (GET /openapi.json) describe /predict with the task's contract, and
    with several exports (`traffic`) every `/predict/<name>` with its own export's contract."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            title = task if traffic is None else ", ".join(f"{r.name} ({r.task})" for r in traffic.routes.values())
            schema = get_openapi(title=f"feedback-nlp: {title}", version="1", routes=app.routes)
            paths = schema.setdefault("paths", {})
            paths.setdefault("/predict", {})["post"] = predict_operation(kind, task, limits)
            if traffic is not None:
                paths["/predict"]["post"]["description"] += production_note(traffic)
                for r in traffic.routes.values():
                    op = predict_operation(r.kind, r.task, limits)
                    op["summary"] = f"Score {r.kind} records with export {r.name!r} ({r.task}) alone"
                    paths.setdefault(r.path, {})["post"] = op
            app.openapi_schema = schema
        return app.openapi_schema  # type: ignore[no-any-return]

    app.openapi = openapi


def production_note(t: Traffic) -> str:
    note = f" The production route: export {t.default!r}"
    if t.canary is not None:
        note += f", and export {t.canary!r} for the records whose id hashes below {t.canary_fraction:g}"
    if t.shadow is not None:
        note += f"; export {t.shadow!r} scores a copy of every request into the prediction log only"
    return note + ". Every row names the model_version that produced it."
