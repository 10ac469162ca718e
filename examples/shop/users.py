#!/usr/bin/env python3
"""Demo shop: the users service (port 9101).

    GET  /users          every user
    GET  /users/{id}     one user
    POST /users          {"name", "email"} -> 201 with the new user
    GET  /healthz
"""

import signal
import sys

from shoplib import USERS, HttpError, Store, int_param, require, serve

store = Store(USERS)


def list_users(req):
    return 200, store.all()


def get_user(req):
    return 200, store.get(int_param(req.params["id"]))


def create_user(req):
    doc = req.json()
    name = require(doc, "name", str)
    email = require(doc, "email", str)
    if "@" not in email:
        raise HttpError(400, "email must contain @")
    return 201, store.add({"name": name, "email": email})


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve("users", 9101, [
        ("GET", "/users", list_users),
        ("GET", "/users/{id}", get_user),
        ("POST", "/users", create_user),
    ])
