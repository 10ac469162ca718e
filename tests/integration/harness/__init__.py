"""Test harness for the black-box integration suite (see docs/testing.md)."""

from .backend import Backend, RawBackend, Reply, WsBackend, echo_reply, raw_reply
from .checks import PROBLEM_CT, REQID_RE, assert_problem, header_tokens, parse_traceparent
from .config import config, one_route, route, service
from .load import Load, wait_until
from .gateway import REPO, UPSTREAM_ERRORS, Gateway, free_port, port_open, portico_bin, run_portico
from .rawhttp import (HttpResponse, RawConn, build_request, chunked, parse_response, parse_responses, raw,
                      request)

__all__ = [
    "Backend", "RawBackend", "Reply", "WsBackend", "echo_reply", "raw_reply",
    "PROBLEM_CT", "REQID_RE", "assert_problem", "header_tokens", "parse_traceparent",
    "config", "one_route", "route", "service",
    "Load", "wait_until",
    "REPO", "UPSTREAM_ERRORS", "Gateway", "free_port", "port_open", "portico_bin", "run_portico",
    "HttpResponse", "RawConn", "build_request", "chunked", "parse_response", "parse_responses", "raw", "request",
]
