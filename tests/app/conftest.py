"""Fixtures of the app tests: the demo organisation loaded once per module (see demo_world)."""

from tests.app.demo_world import loaded_demo  # noqa: F401  (a fixture, made available to the modules here)
