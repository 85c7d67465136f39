"""Extension singletons, in one module (FAB.md trap 3: one metadata for FAB and us)."""

from __future__ import annotations

from flask_appbuilder import Model
from flask_appbuilder.utils.legacy import get_sqla_class
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

db = get_sqla_class()(model_class=Model)
assert db.metadata is Model.metadata, "FAB and Grantkeeper must share one metadata"
migrate = Migrate()
csrf = CSRFProtect()
