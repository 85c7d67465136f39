"""A small Odoo server for tests: speaks Odoo's real JSON-RPC and XML-RPC wire protocols.

It serves ``common.login`` / ``common.version`` and ``object.execute_kw`` for
``account.analytic.line`` (search_read, search_count, fields_get) over an
in-memory list of lines, with Odoo's error shapes (JSON-RPC ``error`` objects,
XML-RPC faults), and can be told to answer slowly.
"""

from __future__ import annotations

import json
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ODOO_ACCESS_DENIED = {
    "code": 200,
    "message": "Odoo Server Error",
    "data": {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied", "debug": "Traceback ..."},
}


class OdooAccessDenied(Exception):
    pass


class OdooUserError(Exception):
    pass


def _match(record: dict[str, Any], leaf: Any) -> bool:
    field, op, value = leaf
    actual = record.get(field)
    if isinstance(actual, (list, tuple)) and actual and isinstance(actual[0], int):
        actual = actual[0]  # many2one [id, name]
    if actual is False:
        actual = None
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "in":
        return actual in value
    if op == ">":
        return actual is not None and actual > value
    if op == ">=":
        return actual is not None and actual >= value
    if op == "<":
        return actual is not None and actual < value
    if op == "<=":
        return actual is not None and actual <= value
    raise OdooUserError(f"Invalid leaf {leaf!r}")


class FakeOdoo:
    def __init__(self, database: str = "odoo", login: str = "sync", password: str = "api-key-123") -> None:
        self.database, self.login, self.password = database, login, password
        self.uid = 7
        self.lines: list[dict[str, Any]] = []
        self.plans = {"x_plan2_id": "Grants"}
        self.delay = 0.0
        self.calls: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ Odoo services

    def dispatch(self, service: str, method: str, args: list[Any]) -> Any:
        if self.delay:
            time.sleep(self.delay)
        self.calls.append((service, method))
        if service == "common":
            if method == "version":
                return {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""]}
            if method in ("login", "authenticate"):
                db, login, password = args[:3]
                return self.uid if (db, login, password) == (self.database, self.login, self.password) else False
        if service == "object" and method == "execute_kw":
            db, uid, password, model, model_method, margs, *rest = args
            kwargs = rest[0] if rest else {}
            if (db, uid, password) != (self.database, self.uid, self.password):
                raise OdooAccessDenied()
            return self.execute(model, model_method, list(margs), dict(kwargs or {}))
        raise OdooUserError(f"unknown service method {service}.{method}")

    def execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if model != "account.analytic.line":
            raise OdooUserError(f"Object {model} doesn't exist")
        if method == "fields_get":
            fields = {"account_id": {"string": "Project", "type": "many2one"}}
            fields.update({name: {"string": label, "type": "many2one"} for name, label in self.plans.items()})
            return fields
        domain = args[0] if args else kwargs.get("domain", [])
        found = [r for r in self.lines if all(_match(r, leaf) for leaf in domain)]
        if method == "search_count":
            return len(found)
        if method == "search_read":
            order = kwargs.get("order") or "id asc"
            found.sort(key=lambda r: r["id"], reverse=order.strip().endswith("desc"))
            offset = kwargs.get("offset") or 0
            limit = kwargs.get("limit")
            found = found[offset : offset + limit if limit else None]
            fields = kwargs.get("fields")
            return [{k: v for k, v in r.items() if not fields or k in fields or k == "id"} for r in found]
        raise OdooUserError(f"The method '{method}' does not exist on the model '{model}'")

    # ------------------------------------------------------------ HTTP

    def start(self) -> FakeOdoo:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests do that on purpose)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/jsonrpc":
                    request = json.loads(raw)
                    params = request["params"]
                    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
                    try:
                        reply["result"] = fake.dispatch(params["service"], params["method"], params["args"])
                    except OdooAccessDenied:
                        reply["error"] = ODOO_ACCESS_DENIED
                    except OdooUserError as exc:
                        reply["error"] = {
                            "code": 200,
                            "message": "Odoo Server Error",
                            "data": {"name": "odoo.exceptions.UserError", "message": str(exc)},
                        }
                    self._reply(json.dumps(reply).encode(), "application/json")
                elif self.path.startswith("/xmlrpc/"):
                    service = self.path.rsplit("/", 1)[-1]
                    args, method = xmlrpc.client.loads(raw, use_builtin_types=True)
                    try:
                        body = xmlrpc.client.dumps(
                            (fake.dispatch(service, method, list(args)),), methodresponse=True, allow_none=True
                        )
                    except OdooAccessDenied:
                        body = xmlrpc.client.dumps(xmlrpc.client.Fault(3, "Access Denied"))
                    except OdooUserError as exc:
                        body = xmlrpc.client.dumps(xmlrpc.client.Fault(1, f"Traceback...\n{exc}"))
                    self._reply(body.encode(), "text/xml")
                else:
                    self.send_error(404)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------ data

    def add_line(
        self,
        line_id: int,
        day: str,
        amount: float,
        account: int,
        *,
        plan: str = "x_plan2_id",
        general: tuple[int, str] = (600, "6100 Salaries"),
        currency: str = "XCD",
        write_date: str = "2026-07-01 10:00:00",
        name: str = "",
    ) -> None:
        self.lines.append(
            {
                "id": line_id,
                "date": day,
                "name": name or f"line {line_id}",
                "amount": amount,
                "currency_id": [3, currency],
                "general_account_id": list(general),
                "account_id": False,
                plan: [account, f"Grant {account}"],
                "move_line_id": [line_id * 10, "MISC/001"],
                "partner_id": False,
                "product_id": False,
                "category": "vendor_bill",
                "write_date": write_date,
            }
        )

    def edit_line(self, line_id: int, *, write_date: str, **changes: Any) -> None:
        """Change a line as Odoo would (amount, date, name...), stamping its write_date."""
        line = next(l for l in self.lines if l["id"] == line_id)
        line.update(changes, write_date=write_date)

    def delete_line(self, line_id: int) -> None:
        """What Odoo does when the entry is reset to draft or cancelled."""
        self.lines = [l for l in self.lines if l["id"] != line_id]
