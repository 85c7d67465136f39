"""The Odoo adapter: reads posted analytic lines through odoo-client-lib, safely.

One small surface over ``odoolib`` (ODOO.md): explicit timeouts on every
protocol (odoolib's XML-RPC has none), one error type (``OdooError``) whose
message never carries the password or API key, paging by id, and the plan
column found with ``fields_get`` because Odoo 17+ keeps each analytic plan in
its own ``x_plan<id>_id`` column.
"""

from __future__ import annotations

import http.client
import logging
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
import odoolib
from odoolib.json2 import Json2Connection
from odoolib.rpc import Connection, JsonRPCConnector, XmlRPCConnector
from odoolib.tools import AuthenticationError, JsonRPCException

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
    "partner_id",
    "product_id",
    "category",
    "write_date",
]


class OdooError(RuntimeError):
    """Anything that went wrong talking to Odoo, in words, without secrets."""


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


@dataclass(frozen=True)
class AnalyticLine:
    """One posted analytic line, as Grantkeeper needs it. ``spent`` is positive for costs."""

    odoo_id: int
    day: date
    description: str
    spent: Decimal
    currency: str | None
    general_account_id: int | None
    general_account: str
    analytic_account_id: int | None
    write_date: datetime | None


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
        self.url = f"{'https' if secure else 'http'}://{host}:{port}/xmlrpc"
        self._transport_args = (timeout, secure)

    def send(self, service_name: str, method: str, *args: Any) -> Any:
        proxy = xmlrpc.client.ServerProxy(
            f"{self.url}/{service_name}", transport=_TimeoutTransport(*self._transport_args), allow_none=True
        )
        return getattr(proxy, method)(*args)


class _JsonRpcConnector(JsonRPCConnector):
    """odoolib's JSON-RPC connector with our timeout instead of httpx's fixed 5 s."""

    def __init__(self, host: str, port: int, timeout: float, secure: bool) -> None:
        super().__init__(host, port)
        self.url = f"{'https' if secure else 'http'}://{host}:{port}/jsonrpc"
        self._timeout = timeout

    def send(self, service_name: str, method: str, *args: Any) -> Any:
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {"service": service_name, "method": method, "args": args},
        }
        response = httpx.post(self.url, json=payload, timeout=self._timeout)
        response.raise_for_status()
        result = response.json()
        if result.get("error"):
            raise JsonRPCException(result["error"])
        return result.get("result", False)


def _connect(settings: OdooSettings) -> Any:
    secure = settings.protocol.endswith("s")
    if settings.protocol.startswith("json2"):
        return Json2Connection(
            odoolib.get_connector(settings.host, settings.protocol, settings.port), settings.database, settings.secret
        )
    connector_class = _XmlRpcConnector if settings.protocol.startswith("xmlrpc") else _JsonRpcConnector
    connector = connector_class(settings.host, settings.port, settings.timeout, secure)
    return Connection(connector, settings.database, settings.login, settings.secret)


def _scrub(text: str, settings: OdooSettings) -> str:
    return text.replace(settings.secret, "***") if settings.secret else text


def _many2one(value: Any) -> tuple[int | None, str]:
    if isinstance(value, (list, tuple)) and value:
        return int(value[0]), str(value[1]) if len(value) > 1 else ""
    return None, ""


class OdooClient:
    """Reads from one Odoo database. Every failure becomes an OdooError."""

    def __init__(self, settings: OdooSettings) -> None:
        self.settings = settings
        self._connection = _connect(settings)

    def _call(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            proxy = self._connection.get_model(model)
            return proxy.__getattr__(method)(*args, **kwargs)
        except AuthenticationError:
            raise OdooError(
                f"Odoo refused the login '{self.settings.login}' on database '{self.settings.database}': "
                "check the login and the API key"
            ) from None
        except xmlrpc.client.Fault as fault:
            raise OdooError(
                f"Odoo answered with an error: {_scrub(str(fault.faultString).splitlines()[-1] if fault.faultString else str(fault.faultCode), self.settings)}"
            ) from None
        except JsonRPCException as exc:
            error = exc.error if isinstance(exc.error, dict) else {}
            message = (error.get("data") or {}).get("message") or error.get("message") or "unknown error"
            raise OdooError(f"Odoo answered with an error: {_scrub(str(message), self.settings)}") from None
        except (httpx.TimeoutException, TimeoutError):
            raise OdooError(
                f"Odoo at {self.settings.host}:{self.settings.port} did not answer within {self.settings.timeout:g} s"
            ) from None
        except (httpx.HTTPError, OSError, xmlrpc.client.ProtocolError) as exc:
            raise OdooError(
                f"cannot reach Odoo at {self.settings.host}:{self.settings.port}: {type(exc).__name__}"
            ) from None
        except ValueError as exc:  # json2 maps 404/422/500 to ValueError
            raise OdooError(f"Odoo answered with an error: {_scrub(str(exc), self.settings)}") from None

    def check(self) -> int:
        """Log in and return the number of analytic lines visible, to test the settings."""
        return int(self._call("account.analytic.line", "search_count", []))

    def plan_column(self, plan_name: str | None) -> str:
        """The analytic-line column holding accounts of ``plan_name`` (``account_id`` if none given).

        Odoo 17+ keeps only the "project" plan in ``account_id``; every other root plan
        has its own ``x_plan<id>_id`` column, found by its label.
        """
        if not plan_name:
            return "account_id"
        fields = self._call("account.analytic.line", "fields_get", [], attributes=["string", "type"])
        for name, spec in fields.items():
            if name.startswith("x_plan") and name.endswith("_id") and spec.get("string") == plan_name:
                return name
        if fields.get("account_id", {}).get("string") == plan_name:
            return "account_id"
        known = sorted(spec.get("string", name) for name, spec in fields.items() if name.startswith("x_plan"))
        raise OdooError(f"plan: Odoo has no analytic plan named '{plan_name}' (plans: {', '.join(known) or 'none'})")

    def analytic_lines(
        self,
        analytic_account_ids: list[int],
        *,
        plan_column: str = "account_id",
        since: datetime | None = None,
        page_size: int = 500,
    ) -> Iterator[AnalyticLine]:
        """Posted analytic lines of the given accounts, changed since ``since``, paged by id."""
        domain: list[Any] = [(plan_column, "in", analytic_account_ids)]
        if since is not None:
            domain.append(("write_date", ">=", since.strftime("%Y-%m-%d %H:%M:%S")))
        fields = [*LINE_FIELDS, plan_column] if plan_column not in LINE_FIELDS else LINE_FIELDS
        last_id = 0
        while True:
            # Paging by id (not offset) stays correct when lines change during the sync.
            page = self._call(
                "account.analytic.line",
                "search_read",
                [*domain, ("id", ">", last_id)],
                fields=fields,
                limit=page_size,
                order="id asc",
            )
            for row in page:
                yield self._to_line(row, plan_column)
            if len(page) < page_size:
                return
            last_id = int(page[-1]["id"])

    @staticmethod
    def _to_line(row: dict[str, Any], plan_column: str) -> AnalyticLine:
        account_id, account_name = _many2one(row.get("general_account_id"))
        analytic_id, _ = _many2one(row.get(plan_column))
        _currency_id, currency_name = _many2one(row.get("currency_id"))
        write_date = row.get("write_date")
        return AnalyticLine(
            odoo_id=int(row["id"]),
            day=date.fromisoformat(str(row["date"])[:10]),
            description=str(row.get("name") or ""),
            # Costs are negative in Odoo; Grantkeeper records spending as positive amounts.
            spent=-Decimal(str(row.get("amount") or 0)),
            currency=currency_name or None,
            general_account_id=account_id,
            general_account=account_name,
            analytic_account_id=analytic_id,
            write_date=datetime.fromisoformat(str(write_date)) if write_date else None,
        )
