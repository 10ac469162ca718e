"""Starting and watching the real portico binary.

A Gateway writes its configuration into its own directory, runs
`PORTICO_BIN run -c FILE` with stderr in gateway.log, waits until the
listener accepts connections, and at the end checks the log for sanitizer
reports and unexpected `[error]` lines.  The process is tracked by its PID
only.
"""

import copy
import os
import resource
import re
import signal
import socket
import subprocess
import time

from .yamlgen import to_yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "ERROR: ThreadSanitizer",
)

# Lines a gateway may log at [error] when a test breaks an upstream on purpose.
UPSTREAM_ERRORS = (r"(?i)upstream|target|connect|refused|reset|timed? ?out|timeout|unreachable"
                   r"|unavailable|no healthy|bad gateway|502|503|504")

_handed_out = set()


def portico_bin():
    path = os.environ.get("PORTICO_BIN") or os.path.join(REPO, "build", "portico")
    return os.path.abspath(path)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now (and that
    this process has not handed out before)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port")


def port_open(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def sanitizer_problems(text):
    return [m for m in SANITIZER_MARKERS if m in text]


def tail(text, n=60):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


def gateway_env(extra=None):
    """Environment for the gateway: the test's, plus sanitizer defaults."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def run_portico(*args, env=None, timeout=20, cwd=None, stdin=subprocess.DEVNULL):
    """Run the binary to completion (check, version, ...): CompletedProcess
    with text stdout/stderr.  Fails on any sanitizer report."""
    p = subprocess.run([portico_bin()] + [str(a) for a in args], env=gateway_env(env), cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, stdin=stdin,
                       text=True, errors="replace")
    probs = sanitizer_problems(p.stderr)
    assert not probs, "sanitizer report from %r:\n%s" % (args, p.stderr)
    return p


class Gateway:
    """One portico process.

    config: a dict (written as YAML; server.listen, server.workers (1) and
    server.drain_timeout (5s) filled in when absent) or a string (written
    as is).  In either, the tokens @PORT@, @ADMIN_PORT@ and @DIR@ are
    replaced by the listener port, a free admin port and the gateway's
    directory.
    args: a full argument list instead of `run -c FILE` (@CONFIG@ = the file).
    expect_errors: regexes for `[error]` lines this test provokes on purpose.
    """

    def __init__(self, workdir, config=None, *, args=None, env=None, workers=1, expect_errors=(),
                 port=None, ready_timeout=10.0, filename="portico.yaml", nofile=None):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self._admin_port = None
        self.config = config
        self.args = args
        self.env = env
        self.workers = workers
        self.expect_errors = list(expect_errors)
        self.ready_timeout = ready_timeout
        self.nofile = nofile  # RLIMIT_NOFILE (soft = hard) for the process, or None
        self.config_path = os.path.join(self.dir, filename)
        self.log_path = os.path.join(self.dir, "gateway.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.proc = None
        self.returncode = None
        self.checked = False

    # -- configuration -------------------------------------------------

    @property
    def admin_port(self):
        if self._admin_port is None:
            self._admin_port = free_port()
        return self._admin_port

    def render(self, config):
        if isinstance(config, dict):
            cfg = copy.deepcopy(config)
            server = cfg.setdefault("server", {})
            server.setdefault("listen", ["127.0.0.1:%d" % self.port])
            if self.workers is not None:
                server.setdefault("workers", self.workers)
            # A test that fails with a request still in flight should not make
            # teardown wait for the 30 s default.
            server.setdefault("drain_timeout", "5s")
            text = to_yaml(cfg)
        else:
            text = config
        text = text.replace("@PORT@", str(self.port)).replace("@DIR@", self.dir)
        if "@ADMIN_PORT@" in text:
            text = text.replace("@ADMIN_PORT@", str(self.admin_port))
        return text

    def write_config(self, config=None):
        if config is not None:
            self.config = config
        text = self.render(self.config)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        return text

    # -- process -------------------------------------------------------

    def start(self, wait=True):
        if self.args is None:
            self.write_config()
            argv = ["run", "-c", self.config_path]
        else:
            if self.config is not None:
                self.write_config()
            argv = [a.replace("@CONFIG@", self.config_path).replace("@PORT@", str(self.port))
                    for a in self.args]
        self._log_f = open(self.log_path, "ab")
        self._out_f = open(self.stdout_path, "ab")
        preexec = None
        if self.nofile is not None:
            n = self.nofile

            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        self.proc = subprocess.Popen([portico_bin()] + argv, stdout=self._out_f, stderr=self._log_f,
                                     stdin=subprocess.DEVNULL, env=gateway_env(self.env), cwd=self.dir,
                                     preexec_fn=preexec)
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=None, port=None):
        """Wait until the listener accepts TCP connections."""
        port = port or self.port
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("portico exited with code %s before accepting on port %d; log:\n%s"
                                     % (self.proc.returncode, port, tail(self.log())))
            if port_open(port):
                return
            time.sleep(0.02)
        raise AssertionError("portico did not accept on port %d within %.0fs; log:\n%s"
                             % (port, timeout or self.ready_timeout, tail(self.log())))

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def admin_url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.admin_port, path)

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def reload(self, config=None):
        """Rewrite the configuration (when given) and send SIGHUP."""
        if config is not None:
            self.write_config(config)
        self.signal(signal.SIGHUP)

    def wait_exit(self, timeout=15.0):
        """Wait for the process to end; returns its exit code (None on timeout)."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=15.0, expect_code=0):
        """SIGTERM, wait, and assert the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
            raise AssertionError("portico did not exit within %.0fs of SIGTERM; log:\n%s"
                                 % (timeout, tail(self.log())))
        if expect_code is not None:
            assert rc == expect_code, "portico exited with %s (want %s); log:\n%s" % (
                rc, expect_code, tail(self.log()))
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def rss_kb(self):
        """Current VmRSS in KiB (None once the process is gone)."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    # -- log -----------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def expect_error(self, pattern):
        self.expect_errors.append(pattern)

    def log_problems(self):
        """Sanitizer reports and [error] lines no expect_errors pattern covers."""
        text = self.log()
        problems = ["sanitizer report (%s) in the gateway log" % m for m in sanitizer_problems(text)]
        for line in text.splitlines():
            if "[error]" in line and not any(re.search(p, line) for p in self.expect_errors):
                problems.append("unexpected error line: %s" % line)
        return problems

    def finish(self):
        """Teardown: stop if still running (exit code 0 expected), check the log."""
        problems = []
        if self.checked:
            return problems
        self.checked = True
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.stop()
                except AssertionError as e:
                    problems.append(str(e))
            for f in (self._log_f, self._out_f):
                f.close()
        problems += self.log_problems()
        return problems
