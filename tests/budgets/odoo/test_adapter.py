"""The Odoo adapter against a server speaking Odoo's JSON-RPC and XML-RPC protocols."""

import logging
from decimal import Decimal

import pytest

from budgets.odoo import OdooClient, OdooError, OdooSettings


def settings(odoo, protocol="jsonrpc", **changes):
    values = dict(
        host="127.0.0.1",
        port=odoo.port,
        database="odoo",
        login="sync",
        secret="api-key-123",
        protocol=protocol,
        timeout=5.0,
    )
    values.update(changes)
    return OdooSettings(**values)


@pytest.mark.parametrize("protocol", ["jsonrpc", "xmlrpc", "json2"])
def test_reads_grant_lines_from_the_plan_column_as_positive_spending(odoo, protocol):
    odoo.add_line(1, "2026-02-03", -270.00, account=41, name="Facilitator fee")
    odoo.add_line(2, "2026-02-04", -54.10, account=41, general=(610, "6200 Travel"))
    odoo.add_line(3, "2026-02-05", -999.00, account=99)  # another grant's account
    client = OdooClient(settings(odoo, protocol))
    column = client.plan_column("Grants")
    assert column == "x_plan2_id"
    lines = list(client.analytic_lines([41], plan_column=column))
    assert [(l.odoo_id, l.spent, l.general_account, l.currency) for l in lines] == [
        (1, Decimal("270.0"), "6100 Salaries", "XCD"),
        (2, Decimal("54.1"), "6200 Travel", "XCD"),
    ]
    assert lines[0].description == "Facilitator fee" and str(lines[0].day) == "2026-02-03"


def test_pages_by_id_until_the_last_line(odoo):
    for index in range(1, 26):
        odoo.add_line(index, "2026-03-01", -1.0, account=41)
    client = OdooClient(settings(odoo))
    lines = list(client.analytic_lines([41], plan_column="x_plan2_id", page_size=10))
    assert [l.odoo_id for l in lines] == list(range(1, 26))
    searches = [c for c in odoo.calls if c == ("object", "execute_kw")]
    assert len(searches) == 3


def test_incremental_sync_asks_only_for_lines_changed_since(odoo):
    from datetime import datetime

    odoo.add_line(1, "2026-03-01", -1.0, account=41, write_date="2026-03-01 09:00:00")
    odoo.add_line(2, "2026-03-02", -2.0, account=41, write_date="2026-04-01 09:00:00")
    client = OdooClient(settings(odoo))
    lines = list(client.analytic_lines([41], plan_column="x_plan2_id", since=datetime(2026, 3, 15)))
    assert [l.odoo_id for l in lines] == [2]


@pytest.mark.parametrize("protocol", ["jsonrpc", "xmlrpc", "json2"])
def test_wrong_key_is_one_clear_error_without_the_secret(odoo, protocol, caplog):
    caplog.set_level(logging.DEBUG)
    client = OdooClient(settings(odoo, protocol, secret="wrong-secret-456"))
    with pytest.raises(OdooError) as caught:
        client.check()
    expected = "refused the API key on database 'odoo'" if protocol == "json2" else "refused the login 'sync'"
    assert expected in str(caught.value)
    assert "wrong-secret-456" not in str(caught.value)
    assert "wrong-secret-456" not in caplog.text


def test_unknown_plan_names_the_known_plans(odoo):
    with pytest.raises(OdooError, match="no analytic plan named 'Projects'.*Grants"):
        OdooClient(settings(odoo)).plan_column("Projects")


@pytest.mark.parametrize("protocol", ["jsonrpc", "xmlrpc", "json2"])
def test_a_server_that_does_not_answer_in_time_is_an_error_not_a_hang(odoo, protocol):
    odoo.delay = 2.0
    client = OdooClient(settings(odoo, protocol, timeout=0.3))
    with pytest.raises(OdooError, match="did not answer within 0.3 s"):
        client.check()


def test_nobody_listening_is_a_clear_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OdooClient(OdooSettings(host="127.0.0.1", port=port, database="odoo", login="sync", secret="k"))
    with pytest.raises(OdooError, match=f"cannot reach Odoo at 127.0.0.1:{port}"):
        client.check()


def test_settings_never_print_the_secret():
    shown = repr(OdooSettings(host="h", port=8069, database="d", login="l", secret="top-secret"))
    assert "top-secret" not in shown


@pytest.mark.parametrize(("field", "value"), [("protocol", "soap"), ("port", "8069")])
def test_bad_settings_name_the_field(field, value):
    values = dict(host="h", port=8069, database="d", login="l", secret="s")
    values[field] = value
    with pytest.raises(OdooError, match=field):
        OdooSettings(**values)


# ---------------------------------------------------------------- Odoo 17's errors and Odoo 19's json2


ALL = ["jsonrpc", "xmlrpc", "json2"]


@pytest.mark.parametrize("protocol", ALL)
def test_an_access_error_shows_odoos_message_and_no_traceback(odoo, protocol):
    odoo.denied_models.add("account.analytic.line")
    with pytest.raises(OdooError) as caught:
        OdooClient(settings(odoo, protocol)).check()
    message = str(caught.value)
    assert "You are not allowed to access 'account.analytic.line' records" in message
    assert "Analytic Accounting" in message
    for leak in ("Traceback", "warning --", "/opt/odoo", "api-key-123"):
        assert leak not in message


def test_an_xmlrpc_fault_with_the_message_in_fault_code_is_not_shown_empty(odoo):
    import xmlrpc.client

    from budgets.odoo import _fault_message

    fault = xmlrpc.client.Fault("warning -- UserError\n\nThe plan is archived", "")  # type: ignore[arg-type]
    assert _fault_message(fault).endswith("The plan is archived")
    odoo.denied_models.add("account.analytic.line")
    with pytest.raises(OdooError, match=r"^Odoo answered with an error: You are not allowed"):
        OdooClient(settings(odoo, "xmlrpc")).check()


@pytest.mark.parametrize("protocol", ALL)
def test_an_unknown_database_is_named_without_odoos_database_server(odoo, protocol):
    from tests.budgets.odoo.fake_odoo import DB_SERVER

    with pytest.raises(OdooError) as caught:
        OdooClient(settings(odoo, protocol, database="coalitoin")).check()
    message = str(caught.value)
    assert "'coalitoin'" in message and "GRANTKEEPER_ODOO_DATABASE" in message
    for leak in ("pg-internal", "10.20.30.40", "5432", DB_SERVER, "Traceback"):
        assert leak not in message


def test_json2_passes_every_argument_by_name_and_never_asks_for_the_documentation(odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    client = OdooClient(settings(odoo, "json2"))
    check = client.check_account(41, "Grants")
    lines = list(client.analytic_lines([41], plan_column=check.column))
    ids = client.line_ids([41], plan_column=check.column)
    assert [l.odoo_id for l in lines] == [1] and ids == {1}
    assert odoo.doc_requests == 0  # a least-privilege user gets 403 there
    assert ("common", "login") not in odoo.calls  # json2 takes the key alone


def test_json2_server_errors_carry_odoos_message_only(odoo):
    client = OdooClient(settings(odoo, "json2"))
    with pytest.raises(OdooError) as caught:
        client.call("account.analytic.line", "unlink_everything", domain=[])
    assert str(caught.value) == (
        "Odoo answered with an error: The method 'unlink_everything' does not exist on the model "
        "'account.analytic.line'"
    )


def test_the_linked_account_is_checked_plan_and_all(odoo):
    from budgets.odoo import OdooLinkProblem

    odoo.plans["x_plan3_id"] = "Donors"
    odoo.add_account(41, "GA-1 grant account")
    odoo.add_account(43, "A donor's account", plan="x_plan3_id")
    odoo.add_account(44, "Closed grant", active=False)
    client = OdooClient(settings(odoo))
    check = client.check_account(41, "Grants")
    assert (check.name, check.plan_name, check.column) == ("GA-1 grant account", "Grants", "x_plan2_id")
    with pytest.raises(OdooLinkProblem, match="no analytic account 4242"):
        client.check_account(4242, "Grants")
    with pytest.raises(OdooLinkProblem, match="is in the plan 'Donors', not 'Grants'"):
        client.check_account(43, "Grants")
    with pytest.raises(OdooLinkProblem, match="archived"):
        client.check_account(44, "Grants")
    with pytest.raises(OdooLinkProblem, match="not in the project plan 'Project'; name its plan"):
        client.check_account(41, None)
