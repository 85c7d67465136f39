"""Creating users with one of the five roles, and the passwords of new accounts."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from flask import Flask

from config.roles import ROLE_NAMES


class UserError(ValueError):
    pass


def create_user(
    app: Flask,
    username: str,
    email: str,
    role: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
) -> object:
    """Create a user with one of the five roles. The password is never logged."""
    with app.app_context():
        sm = app.appbuilder.sm
        if role not in ROLE_NAMES:
            raise UserError(f"role: '{role}' is not one of {', '.join(ROLE_NAMES)}")
        if not password:
            raise UserError("password: must not be empty")
        if sm.find_user(username=username) is not None:
            raise UserError(f"username: '{username}' already exists")
        role_row = sm.find_role(role)
        if role_row is None:
            raise UserError(f"role: '{role}' has not been created; run 'python run.py init' first")
        user = sm.add_user(
            username=username,
            first_name=first_name or username,
            last_name=last_name or "-",
            email=email,
            role=role_row,
            password=password,
        )
        if not user:
            raise UserError(f"could not create '{username}' (is the e-mail '{email}' already used?)")
        return user


@dataclass
class Credential:
    username: str
    password: str
    generated: bool


def password_from_env_or_new(username: str) -> Credential:
    """``GRANTKEEPER_PASSWORD_<USER>`` (dots become underscores), else a new random one."""
    variable = "GRANTKEEPER_PASSWORD_" + username.upper().replace(".", "_")
    value = os.environ.get(variable)
    if value:
        return Credential(username, value, generated=False)
    return Credential(username, secrets.token_urlsafe(12), generated=True)
