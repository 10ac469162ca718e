"""Test harness for the black-box integration suite (see docs/testing.md)."""

from .backend import Backend, RawBackend, Reply, WsBackend, echo_reply, raw_reply  # noqa: F401
from .checks import (PROBLEM_CT, REQID_RE, assert_problem, header_tokens,  # noqa: F401
                     parse_traceparent)
from .config import config, one_route, route, service  # noqa: F401
from .gateway import (REPO, UPSTREAM_ERRORS, Gateway, free_port, port_open, portico_bin,  # noqa: F401
                      run_portico)
from .rawhttp import (HttpResponse, RawConn, build_request, chunked, parse_response,  # noqa: F401
                      parse_responses, raw, request)
