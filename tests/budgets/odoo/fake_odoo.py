"""A small Odoo server for tests: speaks Odoo 17's JSON-RPC and XML-RPC and Odoo 19's json2, as real Odoo does.

Served: ``common.login`` / ``common.version`` and ``object.execute_kw`` on
``/jsonrpc`` and ``/xmlrpc/2/<service>``, and ``POST /json/2/<model>/<method>``
(bearer API key, ``X-Odoo-Database`` header, keyword arguments only), for
``account.analytic.line`` (search, search_read, search_count, fields_get),
``account.analytic.account`` and ``account.move.line`` (search_read, read).

Behaviour copied from real servers (ODOO.md):

- corrections (reset to draft and re-post, cancel, a new analytic distribution)
  delete analytic lines and create new ones with new ids (``repost``,
  ``cancel``, ``redistribute``);
- ``/xmlrpc`` faults carry the message in ``faultCode`` (a string) and the
  traceback in ``faultString``; JSON-RPC errors carry it in ``error.data.message``;
- an unknown database answers with PostgreSQL's connection error, naming Odoo's
  database server (``DB_SERVER``);
- searching lines of an unknown account, or of an account in another plan's
  column, finds nothing, without an error;
- json2 answers 401 for a wrong key, 404 for an unknown database, 403 for an
  access error, 500 with the traceback in ``debug``; ``/doc-bearer/<model>.json``
  answers 403 to users without "Technical Documentation".

``requests`` counts HTTP requests; ``calls`` lists (service, method) or
(model, method) per call; ``doc_requests`` counts ``/doc-bearer`` requests.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What real Odoo's own database server is called in its error texts: must never reach a user.
DB_SERVER = 'connection to server at "pg-internal.odoo.lan" (10.20.30.40), port 5432 failed'
TRACEBACK = 'Traceback (most recent call last):\n  File "/opt/odoo/odoo/http.py", line 1770, in _serve_db\n'

PROJECT_COLUMN = "account_id"


class OdooAccessDenied(Exception):
    """Wrong login or key: odoo.exceptions.AccessDenied."""


class OdooUserError(Exception):
    name = "odoo.exceptions.UserError"
    xmlrpc_kind = "UserError"


class OdooAccessError(OdooUserError):
    name = "odoo.exceptions.AccessError"
    xmlrpc_kind = "AccessError"


class OdooUnknownDatabase(Exception):
    """psycopg2.OperationalError, as Odoo lets it through for a database that does not exist."""

    name = "psycopg2.OperationalError"

    def __init__(self, database: str) -> None:
        super().__init__(f'{DB_SERVER}: FATAL:  database "{database}" does not exist\n')


def _many2one_id(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], int):
        return value[0]
    return None if value is False else value


def _match(record: dict[str, Any], leaf: Any) -> bool:
    field, op, value = leaf
    actual = _many2one_id(record.get(field))
    if op == "=":
        return actual == (None if value is False else value)
    if op == "!=":
        return actual != (None if value is False else value)
    if op == "in":
        return actual in value
    if op == "not in":
        return actual not in value
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
    def __init__(
        self, database: str = "odoo", login: str = "sync", password: str = "api-key-123", version: int = 17
    ) -> None:
        self.database, self.login, self.password, self.version = database, login, password, version
        self.uid = 7
        self.lines: list[dict[str, Any]] = []
        # Root plans other than the project plan: their column and label (Odoo 17+: x_plan<plan id>_id).
        self.plans = {"x_plan2_id": "Grants"}
        self.project_plan = "Project"
        self.accounts: dict[int, dict[str, Any]] = {}
        self.move_lines: dict[int, dict[str, Any]] = {}
        self.technical_documentation = False  # the user's group "Technical Documentation" (json2's /doc-bearer)
        self.denied_models: set[str] = set()  # models the user's groups cannot read (AccessError)
        self.delay = 0.0
        self.hang: threading.Event | None = None  # when set by a test: requests after ``hang_after`` wait on it
        self.hang_after = 0
        self.seen_request = threading.Event()  # set at each request (tests wait for a sync to be under way)
        self.requests = 0
        self.doc_requests = 0
        self.server_seconds = 0.0  # time spent answering requests (the benchmark reports it apart)
        self._by_id: tuple[list[dict[str, Any]], int, list[dict[str, Any]], list[int]] | None = None
        self.calls: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ Odoo services

    def dispatch(self, service: str, method: str, args: list[Any]) -> Any:
        """JSON-RPC and XML-RPC: ``common`` and ``object.execute_kw``."""
        self.calls.append((service, method))
        if service == "common":
            if method == "version":
                return {"server_version": f"{self.version}.0", "server_version_info": [self.version, 0, 0, "final", 0]}
            if method in ("login", "authenticate"):
                db, login, password = args[:3]
                if db != self.database:
                    raise OdooUnknownDatabase(db)
                return self.uid if (login, password) == (self.login, self.password) else False
        if service == "object" and method == "execute_kw":
            db, uid, password, model, model_method, margs, *rest = args
            kwargs = dict(rest[0] or {}) if rest else {}
            if db != self.database:
                raise OdooUnknownDatabase(db)
            if (uid, password) != (self.uid, self.password):
                raise OdooAccessDenied()
            margs = list(margs)
            if model_method in ("read",) and margs:
                kwargs.setdefault("ids", margs.pop(0))
            if margs:
                kwargs.setdefault("domain", margs[0])
            return self.execute(model, model_method, kwargs)
        raise OdooUserError(f"unknown service method {service}.{method}")

    def execute(self, model: str, method: str, kwargs: dict[str, Any]) -> Any:
        """One ORM call, arguments by name (as json2 takes them)."""
        self.calls.append((model, method))
        if model in self.denied_models:
            raise OdooAccessError(
                f"You are not allowed to access '{model}' records.\n\nThis operation is allowed for the following "
                "groups:\n\t- Accounting/Read-only\n\t- Analytic Accounting"
            )
        context = kwargs.get("context") or {}
        if model == "account.analytic.line":
            rows = self.lines
        elif model == "account.analytic.account":
            rows = [a for a in self.accounts.values() if a["active"] or context.get("active_test") is False]
        elif model == "account.move.line":
            rows = list(self.move_lines.values())
        else:
            raise OdooUserError(f"Object {model} doesn't exist")
        if method == "fields_get":
            if model != "account.analytic.line":
                return {}
            fields = {PROJECT_COLUMN: {"string": self.project_plan, "type": "many2one"}}
            fields.update({name: {"string": label, "type": "many2one"} for name, label in self.plans.items()})
            return fields
        if "ids" in kwargs:
            wanted = set(kwargs["ids"] or [])
            found = [r for r in rows if r["id"] in wanted]
        else:
            # "in" lists as sets, as a real Odoo's index would: a 100,000-id domain costs no quadratic scan.
            domain = [
                (f, op, frozenset(v)) if op in ("in", "not in") and isinstance(v, list) else (f, op, v)
                for f, op, v in kwargs.get("domain") or []
            ]
            if model == "account.analytic.line":
                found_fast = self._page_by_id(rows, domain, kwargs)
            elif model == "account.move.line" and len(domain) == 1 and domain[0][:2] == ("id", "in"):
                found_fast = [self.move_lines[i] for i in domain[0][2] if i in self.move_lines]  # by primary key
            else:
                found_fast = None
            found = (
                found_fast if found_fast is not None else [r for r in rows if all(_match(r, leaf) for leaf in domain)]
            )
        if method == "search_count":
            return len(found)
        order = kwargs.get("order") or "id asc"
        found = sorted(found, key=lambda r: r["id"], reverse=order.strip().endswith("desc"))
        offset = kwargs.get("offset") or 0
        limit = kwargs.get("limit")
        found = found[offset : offset + limit if limit else None]
        if method == "search":
            return [r["id"] for r in found]
        if method in ("search_read", "read"):
            fields = set(kwargs.get("fields") or [])
            return [{k: v for k, v in r.items() if not fields or k in fields or k == "id"} for r in found]
        raise OdooUserError(f"The method '{method}' does not exist on the model '{model}'")

    def _page_by_id(
        self, rows: list[dict[str, Any]], domain: list[Any], kwargs: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """A page read by id (``id > last``, ``order id asc``, a limit), as Odoo's index on id answers it.

        Starts at the first id above ``last`` and stops at the limit, instead of matching every
        line: the fake stays cheap beside the client it serves. None when the call is not such a page.
        """
        limit = kwargs.get("limit")
        after = [leaf for leaf in domain if leaf[0] == "id" and leaf[1] == ">"]
        order = (kwargs.get("order") or "id asc").strip()
        if not limit or kwargs.get("offset") or len(after) != 1 or order not in ("id", "id asc"):
            return None
        cached = self._by_id
        if cached is None or cached[0] is not rows or cached[1] != len(rows):
            ordered = sorted(rows, key=lambda r: r["id"])
            cached = self._by_id = (rows, len(rows), ordered, [r["id"] for r in ordered])
        ordered, ids = cached[2], cached[3]
        rest = [leaf for leaf in domain if leaf is not after[0]]
        found: list[dict[str, Any]] = []
        for position in range(bisect.bisect_right(ids, after[0][2]), len(ordered)):
            row = ordered[position]
            if all(_match(row, leaf) for leaf in rest):
                found.append(row)
                if len(found) == limit:
                    break
        return found

    # ------------------------------------------------------------ HTTP

    def start(self) -> FakeOdoo:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, body: bytes, content_type: str, status: int = 200) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests do that on purpose)

            def _arrive(self) -> None:
                with fake._lock:
                    fake.requests += 1
                    number = fake.requests
                fake.seen_request.set()
                if fake.hang is not None and number > fake.hang_after:
                    fake.hang.wait(60)
                if fake.delay:
                    time.sleep(fake.delay)

            def do_GET(self) -> None:
                self._arrive()
                if self.path.startswith("/doc-bearer/"):
                    fake.doc_requests += 1
                    if not fake._bearer_ok(self.headers):
                        return self._json({"name": "werkzeug.exceptions.Unauthorized"}, 401)
                    if not fake.technical_documentation:
                        return self._json({"name": "werkzeug.exceptions.Forbidden", "message": "Forbidden"}, 403)
                    return self._json({"methods": {}}, 200)
                self._reply(b"Not Found", "text/html", 404)

            def _json(self, data: Any, status: int) -> None:
                self._reply(json.dumps(data).encode(), "application/json; charset=utf-8", status)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._arrive()
                started = time.perf_counter()
                if self.path == "/jsonrpc":
                    self._jsonrpc(raw)
                elif self.path.startswith("/xmlrpc/"):
                    self._xmlrpc(raw)
                elif self.path.startswith("/json/2/"):
                    self._json2(raw)
                else:
                    self._reply(b"Not Found", "text/html", 404)
                with fake._lock:
                    fake.server_seconds += time.perf_counter() - started

            def _jsonrpc(self, raw: bytes) -> None:
                request = json.loads(raw)
                params = request["params"]
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
                try:
                    reply["result"] = fake.dispatch(params["service"], params["method"], params["args"])
                except OdooAccessDenied:
                    reply["error"] = _error("odoo.exceptions.AccessDenied", "Access Denied")
                except (OdooUserError, OdooUnknownDatabase) as exc:
                    reply["error"] = _error(type(exc).name, str(exc))
                self._json(reply, 200)

            def _xmlrpc(self, raw: bytes) -> None:
                service = self.path.rsplit("/", 1)[-1]
                args, method = xmlrpc.client.loads(raw, use_builtin_types=True)
                try:
                    body = xmlrpc.client.dumps(
                        (fake.dispatch(service, method, list(args)),), methodresponse=True, allow_none=True
                    )
                except OdooAccessDenied:
                    # Odoo 17's /xmlrpc/2: the message in faultCode (a string), the traceback in faultString.
                    body = xmlrpc.client.dumps(xmlrpc.client.Fault("Access Denied", TRACEBACK + "AccessDenied"))  # type: ignore[arg-type]
                except OdooUserError as exc:
                    code = f"warning -- {type(exc).xmlrpc_kind}\n\n{exc}"
                    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, ""))  # type: ignore[arg-type]
                except OdooUnknownDatabase as exc:
                    body = xmlrpc.client.dumps(xmlrpc.client.Fault(str(exc), TRACEBACK + str(exc)))  # type: ignore[arg-type]
                self._reply(body.encode(), "text/xml")

            def _json2(self, raw: bytes) -> None:
                match = re.fullmatch(r"/json/2/([\w.]+)/(\w+)", self.path)
                if match is None:
                    return self._reply(b"Not Found", "text/html", 404)
                database = self.headers.get("X-Odoo-Database") or fake.database
                if database != fake.database:
                    return self._reply(b"<h1>Not Found</h1>", "text/html", 404)
                if not fake._bearer_ok(self.headers):
                    return self._json({"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey"}, 401)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                if not isinstance(body, dict):  # arguments go by name, in a JSON object
                    return self._json({"name": "werkzeug.exceptions.UnprocessableEntity", "message": "bad body"}, 422)
                try:
                    result = fake.execute(match.group(1), match.group(2), body)
                except OdooAccessError as exc:
                    return self._json({"name": exc.name, "message": str(exc), "debug": TRACEBACK}, 403)
                except OdooUserError as exc:
                    return self._json({"name": exc.name, "message": str(exc), "debug": TRACEBACK + str(exc)}, 500)
                self._json(result, 200)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _bearer_ok(self, headers: Any) -> bool:
        return (headers.get("Authorization") or "").lower() == f"bearer {self.password}".lower()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def stop(self) -> None:
        if self.hang is not None:
            self.hang.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------ data

    def plan_of(self, column: str) -> tuple[int, str]:
        if column == PROJECT_COLUMN:
            return 1, self.project_plan
        return int(column[len("x_plan") : -len("_id")]), self.plans[column]

    def add_account(self, account_id: int, name: str = "", *, plan: str = "x_plan2_id", active: bool = True) -> None:
        """An analytic account in the plan kept in column ``plan``."""
        plan_id, plan_name = self.plan_of(plan)
        self.accounts[account_id] = {
            "id": account_id,
            "name": name or f"Grant {account_id}",
            "plan_id": [plan_id, plan_name],
            "root_plan_id": [plan_id, plan_name],
            "active": active,
            "column": plan,
        }

    def next_id(self) -> int:
        return max((line["id"] for line in self.lines), default=0) + 1

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
        original: tuple[float, str] | None = None,
    ) -> None:
        """A posted analytic line (costs negative, company currency); ``original``: the bill's own (amount, currency)."""
        if account not in self.accounts:
            self.add_account(account, plan=plan)
        move_line_id = line_id * 10
        own_amount, own_currency = original if original else (-amount, currency)
        self.move_lines[move_line_id] = {
            "id": move_line_id,
            "balance": -amount,
            "amount_currency": own_amount,
            "currency_id": [{"XCD": 3, "EUR": 1, "USD": 2}.get(own_currency, 9), own_currency],
            "company_currency_id": [3, currency],
        }
        self.lines.append(
            {
                "id": line_id,
                "date": day,
                "name": name or f"line {line_id}",
                "amount": amount,
                "currency_id": [3, currency],
                "general_account_id": list(general),
                "account_id": False,
                plan: [account, self.accounts[account]["name"]],
                "move_line_id": [move_line_id, "BILL/2026/0001"],
                "partner_id": False,
                "product_id": False,
                "category": "vendor_bill",
                "write_date": write_date,
            }
        )

    def line(self, line_id: int) -> dict[str, Any]:
        return next(line for line in self.lines if line["id"] == line_id)

    def edit_line(self, line_id: int, *, write_date: str, **changes: Any) -> None:
        """Change a line in place (an analytic item edited by hand in Odoo), stamping its write_date."""
        self.line(line_id).update(changes, write_date=write_date)

    def delete_line(self, line_id: int) -> None:
        self.lines = [line for line in self.lines if line["id"] != line_id]

    def cancel(self, line_id: int) -> None:
        """The bill is cancelled (or reset to draft and left there): Odoo deletes its analytic lines."""
        self.delete_line(line_id)

    def repost(self, line_id: int, *, write_date: str, **changes: Any) -> int:
        """Reset to draft, (optionally) correct, and post again: the line is deleted and a new one created."""
        old = self.line(line_id)
        self.delete_line(line_id)
        new = {**old, **changes, "id": self.next_id(), "write_date": write_date}
        self.lines.append(new)
        return int(new["id"])

    def redistribute(self, line_id: int, shares: dict[int, float], *, write_date: str) -> list[int]:
        """A new analytic distribution ({account: percent}): the line is deleted and one created per account."""
        old = self.line(line_id)
        column = next(key for key in old if key.startswith("x_plan") or (key == PROJECT_COLUMN and old[key]))
        self.delete_line(line_id)
        created = []
        for account, percent in shares.items():
            if account not in self.accounts:
                self.add_account(account, plan=column)
            new = {
                **old,
                "id": self.next_id(),
                "amount": round(old["amount"] * percent / 100, 2),
                column: [account, self.accounts[account]["name"]],
                "write_date": write_date,
            }
            self.lines.append(new)
            created.append(int(new["id"]))
        return created


def _error(name: str, message: str) -> dict[str, Any]:
    return {
        "code": 200,
        "message": "Odoo Server Error",
        "data": {"name": name, "message": message, "debug": TRACEBACK + message, "arguments": [message]},
    }
