import pytest

from tests.odoo.fake_odoo import FakeOdoo


@pytest.fixture
def odoo():
    server = FakeOdoo().start()
    yield server
    server.stop()
