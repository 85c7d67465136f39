"""The Odoo adapter: reads posted analytic lines from Odoo 16 to 19, safely, over any of its protocols.

One small surface over Odoo's wire protocols (ODOO.md):

- ``jsonrpc`` and ``xmlrpc`` through ``odoolib``'s ``Connection``, with connectors of
  our own that honour the configured timeout (odoolib's XML-RPC has none, its
  JSON-RPC a fixed 5 s);
- ``json2`` (Odoo 19+) through a connector of our own: every argument by keyword (so
  nothing asks for ``/doc-bearer``, which a least-privilege user may not read), the
  configured timeout, 401/403/404 turned into the same clear errors as the other
  protocols;
- one error type, ``OdooError``, carrying Odoo's own message and only that: never the
  password or API key, never a traceback, never the address of Odoo's database server;
- paging by id; every call passes its arguments by name, the same on every protocol.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
from odoolib.rpc import Connection, JsonRPCConnector, XmlRPCConnector
from odoolib.tools import AuthenticationError, JsonRPCException

from core.formatting import N_
from core.jobs import stored_sentence

try:  # orjson parses Odoo's pages of lines several times faster than the standard library, when installed
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads

    def _dumps(data: Any) -> bytes:
        return orjson.dumps(data)

except ImportError:  # pragma: no cover - the standard library does the same, slower
    _loads = json.loads

    def _dumps(data: Any) -> bytes:
        return json.dumps(data).encode()


log = logging.getLogger(__name__)
# odoolib writes the password at DEBUG (ODOO.md): never let it.
logging.getLogger("odoolib").setLevel(logging.INFO)

PROTOCOLS = ("jsonrpc", "jsonrpcs", "xmlrpc", "xmlrpcs", "json2", "json2s")
LINE_FIELDS = [
    "id",
    "date",
    "name",
    "amount",
    "currency_id",
    "general_account_id",
    "account_id",
    "move_line_id",
    "write_date",
]
PROJECT_COLUMN = "account_id"
# Lines per search_read: a page of this size is a few MB from Odoo, and few pages keep a first sync fast.
PAGE_SIZE = 5000
# Journal items read by id per request (three numbers each).
OWN_PAGE_SIZE = 10_000
# A search of ids returns ints only: this many per request is still small.
IDS_PAGE_SIZE = 200_000


class OdooError(RuntimeError):
    """Anything that went wrong talking to Odoo, in words, without secrets."""


# What Odoo's failures say, in English where they are stored (a job's error, the link's last
# result); registered with core.jobs so that ``shown`` gives them in the reader's language.
REFUSED_LOGIN = stored_sentence(
    N_("Odoo refused the login '%(login)s' on database '%(database)s': check the login and the API key")
)
REFUSED_KEY = stored_sentence(
    N_("Odoo refused the API key on database '%(database)s': check the login and the API key")
)
REFUSED_EXPIRED_KEY = stored_sentence(
    N_("Odoo refused the API key on database '%(database)s': check the API key (and that it has not expired)")
)
NOT_FOUND = stored_sentence(
    N_(
        "Odoo answered 'not found' for database '%(database)s': check GRANTKEEPER_ODOO_DATABASE "
        "(json2 needs Odoo 19 or later)"
    )
)
REFUSED_ACCESS = stored_sentence(N_("Odoo refused access: %(problem)s"))
ANSWERED_ERROR = stored_sentence(N_("Odoo answered with an error: %(problem)s"))
NO_DATABASE = stored_sentence(N_("Odoo has no database '%(database)s' it can open: check GRANTKEEPER_ODOO_DATABASE"))
DATABASE_DOWN = N_("Odoo could not open its database; try again later or ask Odoo's administrator")
NO_MESSAGE = N_("no message")
NO_ANSWER = stored_sentence(N_("Odoo at %(host)s:%(port)s did not answer within %(seconds)s s"))
HTTP_STATUS = stored_sentence(
    N_("Odoo at %(host)s:%(port)s answered HTTP %(status)s: check the host, port and protocol")
)
UNREACHABLE = stored_sentence(N_("cannot reach Odoo at %(host)s:%(port)s: %(error)s"))
NO_PLAN = stored_sentence(N_("Odoo has no analytic plan named '%(plan)s' (plans: %(plans)s)"))
NO_ACCOUNT = stored_sentence(
    N_("Odoo has no analytic account %(account)s (or this user may not read it); check the account id")
)
ARCHIVED_ACCOUNT = stored_sentence(
    N_("Odoo's analytic account %(account)s (%(name)s) is archived; link an active account or unarchive it in Odoo")
)
PLANLESS_ACCOUNT = stored_sentence(N_("Odoo's analytic account %(account)s (%(name)s) has no plan"))
OTHER_PLAN = stored_sentence(
    N_(
        "Odoo's analytic account %(account)s (%(name)s) is in the plan '%(plan)s', not '%(wanted)s'; "
        "correct the account id or the plan"
    )
)
NOT_PROJECT_PLAN = stored_sentence(
    N_(
        "Odoo's analytic account %(account)s (%(name)s) is in the plan '%(plan)s', not in the project plan "
        "'%(project)s'; name its plan on the link"
    )
)


class OdooLinkProblem(OdooError):
    """The grant's link does not point at a usable analytic account (missing, archived, another plan)."""


@dataclass(frozen=True)
class OdooSettings:
    host: str
    port: int
    database: str
    login: str
    secret: str  # password or API key; never logged, never shown
    protocol: str = "jsonrpc"
    timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise OdooError(f"protocol: '{self.protocol}' is not one of {', '.join(PROTOCOLS)}")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise OdooError(f"port: '{self.port}' is not a port number")

    def __repr__(self) -> str:  # dataclass repr would print the secret
        return f"OdooSettings(host={self.host!r}, port={self.port}, database={self.database!r}, login={self.login!r}, protocol={self.protocol!r})"

    @property
    def is_json2(self) -> bool:
        return self.protocol.startswith("json2")


@dataclass(frozen=True, slots=True)
class AnalyticLine:
    """One posted analytic line, as Grantkeeper needs it. ``spent`` is positive for costs, in company currency."""

    odoo_id: int
    day: date
    description: str
    spent: Decimal
    currency: str | None
    general_account_id: int | None
    general_account: str
    analytic_account_id: int | None
    write_date: datetime | None
    move_line_id: int | None = None


@dataclass(frozen=True)
class OwnAmount:
    """A journal item's own currency and amount (``amount_currency``, ``currency_id``) beside its company balance."""

    amount: Decimal  # in ``currency``, positive for costs
    currency: str
    balance: Decimal  # in company currency, positive for costs


@dataclass(frozen=True)
class AccountCheck:
    """What Odoo says about the linked analytic account: it exists, is active, and is in the named plan."""

    account_id: int
    name: str
    plan_id: int
    plan_name: str
    column: str  # the analytic-line column holding this plan's accounts


# ---------------------------------------------------------------- transports


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float, secure: bool = False) -> None:
        super().__init__()
        self._timeout = timeout
        self._secure = secure

    def make_connection(self, host: Any) -> Any:
        connection: http.client.HTTPConnection
        if self._secure:
            connection = xmlrpc.client.SafeTransport.make_connection(self, host)  # type: ignore[arg-type]
        else:
            connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection


class _XmlRpcConnector(XmlRPCConnector):
    """odoolib's XML-RPC connector with a timeout (it has none and can hang for ever)."""

    def __init__(self, host: str, port: int, timeout: float, secure: bool) -> None:
        super().__init__(host, port)
        self.url = f"{'https' if secure else 'http'}://{host}:{port}/xmlrpc/2"
        self._transport_args = (timeout, secure)

    def send(self, service_name: str, method: str, *args: Any) -> Any:
        proxy = xmlrpc.client.ServerProxy(
            f"{self.url}/{service_name}", transport=_TimeoutTransport(*self._transport_args), allow_none=True
        )
        return getattr(proxy, method)(*args)


_JSON_HEADERS = {"Content-Type": "application/json"}


class _JsonRpcConnector(JsonRPCConnector):
    """odoolib's JSON-RPC connector with our timeout instead of httpx's fixed 5 s, and one kept-alive connection."""

    def __init__(self, host: str, port: int, timeout: float, secure: bool) -> None:
        super().__init__(host, port)
        self.url = f"{'https' if secure else 'http'}://{host}:{port}/jsonrpc"
        self._http = httpx.Client(timeout=timeout)

    def send(self, service_name: str, method: str, *args: Any) -> Any:
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {"service": service_name, "method": method, "args": args},
        }
        response = self._http.post(self.url, content=_dumps(payload), headers=_JSON_HEADERS)
        response.raise_for_status()
        result = _loads(response.content)
        if result.get("error"):
            raise JsonRPCException(result["error"])
        return result.get("result", False)

    def close(self) -> None:
        self._http.close()


class _Json2Refused(Exception):
    """An HTTP status from json2 other than 200, with Odoo's message if it sent one."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Json2Connection:
    """Odoo 19's ``/json/2/<model>/<method>``: bearer key, database header, arguments by name, our timeout."""

    def __init__(self, settings: OdooSettings) -> None:
        scheme = "https" if settings.protocol.endswith("s") else "http"
        self._http = httpx.Client(
            base_url=f"{scheme}://{settings.host}:{settings.port}/json/2/",
            timeout=settings.timeout,
            headers={
                "Authorization": f"bearer {settings.secret}",
                "X-Odoo-Database": settings.database,
                "Content-Type": "application/json; charset=utf-8",
            },
        )

    def call(self, model: str, method: str, kwargs: dict[str, Any]) -> Any:
        response = self._http.post(f"{model}/{method}", content=_dumps(kwargs))
        if response.status_code == 200:
            return _loads(response.content)
        message = ""
        try:
            body = _loads(response.content)
            if isinstance(body, dict):
                message = str(body.get("message") or "")
        except ValueError:
            pass
        raise _Json2Refused(response.status_code, message)

    def close(self) -> None:
        self._http.close()


# ---------------------------------------------------------------- messages


_DB_SERVER = re.compile(r'connection to server (at|on) "?[^"]*"?( \([^)]*\))?(, port \d+)? failed:\s*', re.I)
_NO_DATABASE = re.compile(r'database "([^"]+)" does not exist')
_WARNING_PREFIX = re.compile(r"^warning -- \w+\s*", re.I)


def odoo_message(text: str, settings: OdooSettings) -> str:
    """Odoo's message as a user may read it: no secret, no traceback, no database server address."""
    text = str(text or "")
    if settings.secret:
        text = text.replace(settings.secret, "***")
    if "Traceback (most recent call last)" in text:
        text = text.split("Traceback (most recent call last)")[0]
    text = _WARNING_PREFIX.sub("", text.strip())
    missing = _NO_DATABASE.search(text)
    if missing or _DB_SERVER.search(text):
        return NO_DATABASE % {"database": settings.database} if missing else DATABASE_DOWN
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)[:500] or NO_MESSAGE


def _fault_message(fault: xmlrpc.client.Fault) -> str:
    """Odoo 17+ puts the message in faultCode (a string) and the traceback in faultString."""
    if isinstance(fault.faultCode, str) and fault.faultCode.strip():
        return fault.faultCode
    lines = [line for line in str(fault.faultString or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _many2one(value: Any) -> tuple[int | None, str]:
    if isinstance(value, (list, tuple)) and value:
        return int(value[0]), str(value[1]) if len(value) > 1 else ""
    return None, ""


# ---------------------------------------------------------------- the client


class OdooClient:
    """Reads from one Odoo database. Every failure becomes an OdooError."""

    def __init__(self, settings: OdooSettings) -> None:
        self.settings = settings
        self._json2: _Json2Connection | None = None
        self._rpc: Connection | None = None
        if settings.is_json2:
            self._json2 = _Json2Connection(settings)
        else:
            secure = settings.protocol.endswith("s")
            connector_class = _XmlRpcConnector if settings.protocol.startswith("xmlrpc") else _JsonRpcConnector
            connector = connector_class(settings.host, settings.port, settings.timeout, secure)
            self._rpc = Connection(connector, settings.database, settings.login, settings.secret)

    def close(self) -> None:
        if self._json2 is not None:
            self._json2.close()
        elif self._rpc is not None and isinstance(self._rpc.connector, _JsonRpcConnector):
            self._rpc.connector.close()

    def _refused(self) -> str:
        """Odoo refused the login (or the API key): which one, on which database."""
        if self.settings.is_json2:
            return REFUSED_KEY % {"database": self.settings.database}
        return REFUSED_LOGIN % {"login": self.settings.login, "database": self.settings.database}

    def call(self, model: str, method: str, **kwargs: Any) -> Any:
        """One ORM call, every argument by name (json2 takes nothing else)."""
        settings = self.settings
        try:
            if self._json2 is not None:
                return self._json2.call(model, method, kwargs)
            assert self._rpc is not None
            self._rpc.check_login(force=False)
            return self._rpc.get_service("object").execute_kw(
                settings.database, self._rpc.user_id, settings.secret, model, method, [], kwargs
            )
        except AuthenticationError:
            raise OdooError(self._refused()) from None
        except _Json2Refused as refused:
            if refused.status == 401:
                raise OdooError(REFUSED_EXPIRED_KEY % {"database": settings.database}) from None
            if refused.status == 404:
                raise OdooError(NOT_FOUND % {"database": settings.database}) from None
            if refused.status == 403:
                raise OdooError(
                    REFUSED_ACCESS % {"problem": odoo_message(refused.message or "forbidden", settings)}
                ) from None
            raise OdooError(
                ANSWERED_ERROR % {"problem": odoo_message(refused.message or f"HTTP {refused.status}", settings)}
            ) from None
        except xmlrpc.client.Fault as fault:
            message = _fault_message(fault)
            if message.strip() in ("Access Denied", "AccessDenied"):
                raise OdooError(self._refused()) from None
            raise OdooError(ANSWERED_ERROR % {"problem": odoo_message(message, settings)}) from None
        except JsonRPCException as exc:
            error = exc.error if isinstance(exc.error, dict) else {}
            data = error.get("data") or {}
            if data.get("name") == "odoo.exceptions.AccessDenied":
                raise OdooError(self._refused()) from None
            message = data.get("message") or error.get("message") or ""
            raise OdooError(ANSWERED_ERROR % {"problem": odoo_message(str(message), settings)}) from None
        except (httpx.TimeoutException, TimeoutError):
            raise OdooError(
                NO_ANSWER % {"host": settings.host, "port": settings.port, "seconds": f"{settings.timeout:g}"}
            ) from None
        except httpx.HTTPStatusError as exc:
            raise OdooError(
                HTTP_STATUS % {"host": settings.host, "port": settings.port, "status": exc.response.status_code}
            ) from None
        except (httpx.HTTPError, OSError, xmlrpc.client.ProtocolError) as exc:
            raise OdooError(
                UNREACHABLE % {"host": settings.host, "port": settings.port, "error": type(exc).__name__}
            ) from None

    def check(self) -> int:
        """Log in and return the number of analytic lines visible, to test the settings."""
        return int(self.call("account.analytic.line", "search_count", domain=[]))

    def plan_column(self, plan_name: str | None) -> str:
        """The analytic-line column holding accounts of ``plan_name`` (``account_id`` if none given).

        Odoo 17+ keeps only the "project" plan in ``account_id``; every other root plan
        has its own ``x_plan<id>_id`` column, found by its label.
        """
        if not plan_name:
            return PROJECT_COLUMN
        fields = self.call("account.analytic.line", "fields_get", attributes=["string", "type"])
        for name, spec in fields.items():
            if name.startswith("x_plan") and name.endswith("_id") and spec.get("string") == plan_name:
                return name
        if fields.get(PROJECT_COLUMN, {}).get("string") == plan_name:
            return PROJECT_COLUMN
        known = sorted(spec.get("string", name) for name, spec in fields.items() if name.startswith("x_plan"))
        plans = ", ".join(known) or "—"
        raise OdooError("plan: " + NO_PLAN % {"plan": plan_name, "plans": plans})

    def check_account(
        self, account_id: int, plan_name: str | None, *, known: tuple[int, str] | None = None
    ) -> AccountCheck:
        """The linked analytic account exists, is active and belongs to ``plan_name``; OdooLinkProblem if not.

        ``known``: (plan id, column) from an earlier check; when the account is still in
        that plan, the column is not looked up again (one request instead of two).
        """
        rows = self.call(
            "account.analytic.account",
            "search_read",
            domain=[("id", "=", account_id)],
            fields=["name", "plan_id", "root_plan_id", "active"],
            context={"active_test": False},
        )
        if not rows:
            raise OdooLinkProblem("analytic account: " + NO_ACCOUNT % {"account": account_id})
        row = rows[0]
        name = str(row.get("name") or "")
        plan_id, plan_label = _many2one(row.get("root_plan_id") or row.get("plan_id"))
        if not row.get("active", True):
            raise OdooLinkProblem("analytic account: " + ARCHIVED_ACCOUNT % {"account": account_id, "name": name})
        if plan_id is None:
            raise OdooLinkProblem("analytic account: " + PLANLESS_ACCOUNT % {"account": account_id, "name": name})
        if plan_name and plan_label != plan_name:
            self.plan_column(plan_name)  # a plan that does not exist at all is named as such
            raise OdooLinkProblem(
                "analytic plan: "
                + OTHER_PLAN % {"account": account_id, "name": name, "plan": plan_label, "wanted": plan_name}
            )
        if known is not None and known[0] == plan_id:
            column = known[1]
        else:
            column = self.plan_column(plan_label if plan_name else None)
            if not plan_name and column == PROJECT_COLUMN:
                fields = self.call("account.analytic.line", "fields_get", attributes=["string"])
                project = fields.get(PROJECT_COLUMN, {}).get("string")
                if project and project != plan_label:
                    raise OdooLinkProblem(
                        "analytic plan: "
                        + NOT_PROJECT_PLAN
                        % {"account": account_id, "name": name, "plan": plan_label, "project": project}
                    )
        return AccountCheck(account_id, name, plan_id, plan_label, column)

    def line_ids(self, analytic_account_ids: list[int], *, plan_column: str = PROJECT_COLUMN) -> set[int]:
        """The ids of every posted analytic line of the accounts: one cheap ``search`` (ids only)."""
        found: set[int] = set()
        last_id = 0
        while True:
            page = self.call(
                "account.analytic.line",
                "search",
                domain=[(plan_column, "in", analytic_account_ids), ("id", ">", last_id)],
                limit=IDS_PAGE_SIZE,
                order="id asc",
            )
            found.update(int(i) for i in page)
            if len(page) < IDS_PAGE_SIZE:
                return found
            last_id = int(page[-1])

    def analytic_lines(
        self,
        analytic_account_ids: list[int],
        *,
        plan_column: str = PROJECT_COLUMN,
        since: datetime | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[AnalyticLine]:
        """Posted analytic lines of the given accounts, changed since ``since``, paged by id."""
        domain: list[Any] = [(plan_column, "in", analytic_account_ids)]
        if since is not None:
            domain.append(("write_date", ">=", since.strftime("%Y-%m-%d %H:%M:%S")))
        fields = [*LINE_FIELDS, plan_column] if plan_column not in LINE_FIELDS else LINE_FIELDS
        last_id = 0
        while True:
            # Paging by id (not offset) stays correct when lines change during the sync.
            page = self.call(
                "account.analytic.line",
                "search_read",
                domain=[*domain, ("id", ">", last_id)],
                fields=fields,
                limit=page_size,
                order="id asc",
            )
            to_line = self._to_line
            for row in page:
                yield to_line(row, plan_column)
            if len(page) < page_size:
                return
            last_id = int(page[-1]["id"])

    def own_amounts(self, move_line_ids: list[int]) -> dict[int, OwnAmount]:
        """Each journal item's own currency and amount (a EUR bill's EUR amount), by journal item id."""
        found: dict[int, OwnAmount] = {}
        for start in range(0, len(move_line_ids), OWN_PAGE_SIZE):
            chunk = move_line_ids[start : start + OWN_PAGE_SIZE]
            for row in self.call(
                "account.move.line",
                "search_read",
                domain=[("id", "in", chunk)],
                fields=["amount_currency", "currency_id", "balance"],
            ):
                _id, currency = _many2one(row.get("currency_id"))
                if currency:
                    found[int(row["id"])] = OwnAmount(
                        Decimal(str(row.get("amount_currency") or 0)), currency, Decimal(str(row.get("balance") or 0))
                    )
        return found

    @staticmethod
    def _to_line(row: dict[str, Any], plan_column: str) -> AnalyticLine:
        # Called once per line of a sync (100,000s): the common shapes first, ``_many2one`` for the rest.
        get = row.get
        general = get("general_account_id")
        account_id: int | None
        if type(general) is list and len(general) == 2:
            account_id, account_name = int(general[0]), str(general[1])
        else:
            account_id, account_name = _many2one(general)
        currency = get("currency_id")
        currency_name = str(currency[1]) if type(currency) is list and len(currency) == 2 else _many2one(currency)[1]
        move_line = get("move_line_id")
        move_line_id = int(move_line[0]) if type(move_line) is list and move_line else _many2one(move_line)[0]
        write_date = get("write_date")
        amount = get("amount") or 0
        day = row["date"]
        return AnalyticLine(
            int(row["id"]),
            date.fromisoformat(day[:10] if type(day) is str else str(day)[:10]),
            str(get("name") or ""),
            # Costs are negative in Odoo; Grantkeeper records spending as positive amounts.
            -Decimal(str(amount)),
            currency_name or None,
            account_id,
            account_name,
            _many2one(get(plan_column))[0],
            datetime.fromisoformat(str(write_date)) if write_date else None,
            move_line_id,
        )
