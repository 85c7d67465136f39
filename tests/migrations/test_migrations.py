"""The migrations produce exactly the models' schema (no drift), FAB's tables included."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect


def test_migrated_schema_matches_the_models(app):
    from core.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_fab_tables_are_created_by_our_migrations(app):
    from core.extensions import db

    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {"ab_user", "ab_role", "ab_user_role", "ab_permission_view", "alembic_version"} <= tables
    assert {"funders", "grants", "grant_memberships", "reporting_periods", "audit_log"} <= tables


def test_every_model_table_comes_from_a_migration(app):
    from core.extensions import db

    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    missing = {table.name for table in db.metadata.sorted_tables} - tables
    assert not missing


def test_the_revisions_form_one_line_from_the_frozen_initial_schema(app):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}; chain the new revision after the head"
    assert script.get_base() == "0001"
