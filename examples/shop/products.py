#!/usr/bin/env python3
"""Demo shop: the products service (port 9103).

    GET /products              the catalogue
    GET /products?ids=1,2      only these (in the order asked)
    GET /products/{id}         one product
    GET /healthz
"""

import signal
import sys

from shoplib import PRODUCTS, HttpError, Store, int_param, serve

store = Store(PRODUCTS)


def list_products(req):
    if "ids" not in req.query:
        return 200, store.all()
    try:
        ids = [int_param(x.strip()) for x in req.query["ids"].split(",") if x.strip()]
    except HttpError:
        raise HttpError(400, "ids must be a comma-separated list of integers")
    by_id = {p["id"]: p for p in store.all()}
    return 200, [by_id[i] for i in ids if i in by_id]


def get_product(req):
    return 200, store.get(int_param(req.params["id"]))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve("products", 9103, [
        ("GET", "/products", list_products),
        ("GET", "/products/{id}", get_product),
    ])
