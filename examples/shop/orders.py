#!/usr/bin/env python3
"""Demo shop: the orders service (port 9102).

    GET  /orders               every order (?customer_id=N to filter)
    GET  /orders/{id}          {"id", "customer_id", "product_ids", "total"}
    POST /orders               {"customer_id", "product_ids"} -> 201; total computed from the catalogue
    GET  /healthz
"""

import signal
import sys

from shoplib import ORDERS, PRODUCTS, HttpError, Store, int_param, order_total, require, serve

store = Store(ORDERS)


def list_orders(req):
    orders = store.all()
    if "customer_id" in req.query:
        cid = int_param(req.query["customer_id"], "customer_id")
        orders = [o for o in orders if o["customer_id"] == cid]
    return 200, orders


def get_order(req):
    return 200, store.get(int_param(req.params["id"]))


def create_order(req):
    doc = req.json()
    customer_id = require(doc, "customer_id", int)
    product_ids = require(doc, "product_ids", list)
    known = {p["id"] for p in PRODUCTS}
    if not product_ids or not all(isinstance(i, int) and i in known for i in product_ids):
        raise HttpError(400, "product_ids must list known product ids")
    return 201, store.add({"customer_id": customer_id, "product_ids": product_ids,
                           "total": order_total(product_ids)})


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve("orders", 9102, [
        ("GET", "/orders", list_orders),
        ("GET", "/orders/{id}", get_order),
        ("POST", "/orders", create_order),
    ])
