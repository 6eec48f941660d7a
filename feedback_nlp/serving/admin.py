"""The server's own routes beside /predict: per-export metadata and the reload endpoints.

    GET  /metadata            the default export's manifest (the one it serves now)
    GET  /metadata/<name>     that export's manifest
    POST /admin/reload        [?export=NAME ...] every worker checks its export now (loopback only)
    GET  /admin/exports       what every worker serves: model_version, folder, last reload (loopback only)

Why loopback only: a reload is an operator's action (after re-pointing `current`), not a
client's; from any other address the answer is 403. A reverse proxy on the same host must not
forward /admin/ (docs/operating.md §7). Why /admin/reload waits: the caller (a deploy script)
learns in one call whether every worker now serves the new version, or which one refused it
and why; the old export keeps serving meanwhile (serving/reload.py).
"""

import asyncio
import ipaddress
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import Request

from feedback_nlp.serving import reload
from feedback_nlp.serving.manifest import ExportError, read_manifest


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything else or no address."""
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _refused(request: Request) -> JSONResponse | None:
    host = request.client.host if request.client else None
    if is_loopback(host):
        return None
    return JSONResponse({"error": f"/admin/ answers loopback clients only, not {host}", "status": 403}, 403)


def current_manifest(control_dir: str, name: str, fallback: dict[str, Any]) -> dict[str, Any]:
    """The manifest of the folder the newest worker state names (after a reload), else `fallback`."""
    found = sorted(reload.states(control_dir, name), key=lambda s: s.get("at") or 0)
    for state in reversed(found):
        if state.get("path"):
            try:
                return read_manifest(state["path"])
            except ExportError:
                continue
    return fallback


def install(
    app: Any,
    control_dir: str,
    manifests: dict[str, dict[str, Any]],
    default: str,
    workers: dict[str, int],
    poll: float,
    timeout: float,
) -> list[str]:
    """Add the routes above to `app`; returns their paths (for the metrics' route labels)."""

    def metadata_of(name: str) -> Any:
        async def handler(request: Request) -> JSONResponse:
            return JSONResponse(current_manifest(control_dir, name, manifests[name]))

        return handler

    async def admin_reload(request: Request) -> JSONResponse:
        refused = _refused(request)
        if refused is not None:
            return refused
        names = request.query_params.getlist("export") or list(manifests)
        unknown = [n for n in names if n not in manifests]
        if unknown:
            error = f"no export named {unknown[0]!r} ({', '.join(manifests)})"
            return JSONResponse({"error": error, "status": 404}, 404)
        if poll <= 0:
            return JSONResponse({"error": "reload is off (serve --reload-poll 0)", "status": 409}, 409)
        seq = reload.request_reload(control_dir, names)
        wanted = {n: workers[n] for n in names}
        complete, done = await asyncio.to_thread(reload.wait_for, control_dir, seq, wanted, timeout)
        failed = [s for s in done if s.get("status") == "failed"]
        status = 504 if not complete else 409 if failed else 200
        body = {"reloaded": complete and not failed, "workers": sorted(done, key=lambda s: (s["name"], s["pid"]))}
        if failed:
            body["error"] = "; ".join(f"{s['name']} (pid {s['pid']}): {s['error']}" for s in failed)
        elif not complete:
            body["error"] = f"not every worker answered within {timeout:g} s"
        return JSONResponse(body, status)

    async def admin_exports(request: Request) -> JSONResponse:
        refused = _refused(request)
        if refused is not None:
            return refused
        return JSONResponse({n: reload.states(control_dir, n) for n in manifests})

    app.add_api_route("/metadata", metadata_of(default), methods=["GET"])
    paths = ["/metadata", "/admin/reload", "/admin/exports"]
    for name in manifests:
        app.add_api_route(f"/metadata/{name}", metadata_of(name), methods=["GET"])
        paths.append(f"/metadata/{name}")
    app.add_api_route("/admin/reload", admin_reload, methods=["POST"])
    app.add_api_route("/admin/exports", admin_exports, methods=["GET"])
    return paths
