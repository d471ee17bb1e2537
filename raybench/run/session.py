"""Which Ray a command uses: the only place raybench starts or joins Ray.

:func:`ray_session` joins the cluster ``--address`` names, else the one ``$RAY_ADDRESS``
names (``ray job submit`` sets it for the job's command, so a run submitted as a job
uses the job's cluster and runtime environment), else starts a new local Ray that is
this command's alone. A cluster address is probed first (:func:`probe_address`): a few
seconds, then one line, instead of Ray's minutes of retries.

A local Ray listens on 127.0.0.1 only (GCS, raylet, workers, agents, dashboard and
metrics), unless ``listen`` names another address of this host. A small watcher
process stops what Ray would leave running for a minute if raybench is killed.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from raybench.actors.telemetry import dashboard_url as current_dashboard_url
from raybench.errors import ConfigError, RunError, error_line
from raybench.run.reaper import stat

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
LOOPBACK = "127.0.0.1"
_REAPER = Path(__file__).with_name("reaper.py")

ADDRESS_HELP = ("expected auto (the Ray started on this host with `ray start --head`) or "
                "HOST:PORT of a Ray head (its GCS port, 6379 by default)")


# -- which cluster ------------------------------------------------------------------------
def cluster_address(address: Optional[str]) -> tuple[Optional[str], str]:
    """The Ray cluster a command joins and where that came from.

    Args:
        address: ``--address`` (None: not given).

    Returns:
        ``(address, "--address")``, ``($RAY_ADDRESS, "RAY_ADDRESS")`` or ``(None, "local")``
        when a new local Ray is to be started.
    """
    if address:
        return address, "--address"
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "local":
        return env, "RAY_ADDRESS"
    return None, "local"


def _resolve(host: str, port: int, timeout_s: float) -> list:
    """getaddrinfo with a deadline (a dead resolver must not hang the command)."""
    found: list = []
    failure: list = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            failure.append(exc)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if failure or not found:
        return []
    return found


def probe_address(address: str, timeout_s: float = PROBE_TIMEOUT_S, what: str = "--address") -> str:
    """Check that a Ray cluster answers at ``address`` within ``timeout_s`` seconds.

    Sweeps, peak searches and runs call this before ``ray.init``, which would otherwise
    retry for minutes.

    Args:
        address: ``auto``, ``HOST:PORT`` (a Ray head's GCS) or ``ray://HOST:PORT``.
        timeout_s: Seconds for name resolution, the connection and Ray's answer, each.
        what: How the message names the value (``--address``, ``RAY_ADDRESS``).

    Returns:
        The address to pass to ``ray.init``: ``HOST:PORT`` (``auto`` resolved).

    Raises:
        ConfigError: One line naming the address and why no cluster answers there.
    """
    given = address.strip()
    address = given
    if given == "auto":  # the head `ray start` recorded on this host (Ray's own file)
        from ray._private.services import find_bootstrap_address

        address = find_bootstrap_address(None)
        if not address:
            raise ConfigError(f"{what} auto: no Ray was started on this host with `ray start "
                              "--head` (or leave --address out for a local Ray)")
        given = f"auto ({address})"
    client = address.startswith("ray://")
    hostport = address[len("ray://"):] if client else address
    if "://" in hostport:
        raise ConfigError(f"{what} {given}: {ADDRESS_HELP} (a dashboard URL is for "
                          "`ray job submit`)")
    host, sep, port_text = hostport.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ConfigError(f"{what} {given}: {ADDRESS_HELP}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what} {given}: port {port_text!r} is not a number from 1 to "
                          f"65535 ({ADDRESS_HELP})")
    port = int(port_text)
    infos = _resolve(host, port, timeout_s)
    if not infos:
        raise ConfigError(f"{what} {given}: cannot resolve host {host!r}")
    family, kind, proto, _, sockaddr = infos[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout_s)
            sock.connect(sockaddr)
    except socket.timeout:
        raise ConfigError(f"{what} {given}: no answer within {timeout_s:g} s; is a Ray head "
                          "running there (`ray start --head`)?") from None
    except OSError as exc:
        reason = "connection refused" if exc.errno == errno.ECONNREFUSED else (
            exc.strerror or str(exc))
        raise ConfigError(f"{what} {given}: no Ray cluster answers there ({reason}); start "
                          "one with `ray start --head`, or leave --address out for a local "
                          "Ray") from None
    if not client and os.environ.get("RAY_USE_TLS", "0").lower() not in ("1", "true"):
        _check_gcs(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}", given, what,
                   timeout_s, may_send_token=given.startswith("auto")
                   or os.environ.get("RAY_AUTH_MODE", "").lower() == "token")
    return address


def _check_gcs(target: str, given: str, what: str, timeout_s: float,
               may_send_token: bool) -> None:
    """Ask the server at ``target`` for its Ray cluster id.

    The host's authentication token is sent only where Ray itself would send it
    (``RAY_AUTH_MODE=token``, or ``auto``): never to an address merely typed.
    """
    import grpc

    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    def ask(metadata: tuple):
        with grpc.insecure_channel(target) as channel:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            try:
                stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s,
                                  metadata=metadata)
            except grpc.RpcError as exc:
                return exc.code()
        return grpc.StatusCode.OK

    refused = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    code = ask(())
    if code in refused and may_send_token:
        code = ask(_token_metadata())
        if code in refused:
            raise ConfigError(f"{what} {given}: the Ray cluster there refuses this host's "
                              "authentication token (Ray reads it from $RAY_AUTH_TOKEN, "
                              "$RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; `ray get-auth-token` "
                              "on its head prints it)")
    if code in refused:
        raise ConfigError(f"{what} {given}: the Ray cluster there uses token authentication; "
                          "set RAY_AUTH_MODE=token (and the cluster's token in $RAY_AUTH_TOKEN "
                          "or ~/.ray/auth_token)")
    if code != grpc.StatusCode.OK:
        raise ConfigError(f"{what} {given}: something answers there, but not a Ray head's GCS "
                          f"({code.name.lower()}); {ADDRESS_HELP}")


def _token_metadata() -> tuple:
    """The ``authorization`` header Ray sends with its token (empty without one)."""
    try:
        from ray._raylet import AuthenticationTokenLoader

        return tuple(AuthenticationTokenLoader.instance().get_token_for_http_header(
            ignore_auth_mode=True).items())
    except Exception:  # a Ray without token authentication
        return ()


def check_listen(host: Optional[str]) -> str:
    """The address a local Ray listens on: ``host``, checked to be one of this host's.

    Raises:
        ConfigError: ``host`` cannot be bound here (one line naming it).
    """
    host = (host or LOOPBACK).strip()
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.bind(infos[0][4])
    except (OSError, UnicodeError, IndexError):
        raise ConfigError(f"--listen {host}: not an address of this host (allowed: 127.0.0.1, "
                          "0.0.0.0 or one of this host's addresses)") from None
    return LOOPBACK if ipaddress.ip_address(infos[0][4][0]).is_loopback else host


# -- the Ray of a command ----------------------------------------------------------------
@dataclass
class RaySession:
    """The Ray a command runs on, as far as people need to find it."""

    local: bool  # a Ray started for this command (it stops with it)
    address: str  # the GCS address
    source: str  # "--address", "RAY_ADDRESS" or "local"
    loopback: bool = False  # every port on 127.0.0.1 only
    dashboard_url: Optional[str] = None
    logs_dir: Optional[str] = None  # Ray's session logs on this host (workers, agents)
    token_auth: bool = False


def _token_auth_enabled() -> bool:
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        return bool(is_token_auth_enabled())
    except Exception:  # an older or newer Ray without token authentication
        return os.environ.get("RAY_AUTH_MODE", "").lower() == "token"


@contextmanager
def ray_session(address: Optional[str] = None, num_gpus: int = 0, cpus_needed: int = 1,
                dashboard: bool = False, listen: Optional[str] = None,
                job_name: Optional[str] = None, ray_log: Optional[Path] = None,
                verbose: bool = False) -> Iterator[Optional[RaySession]]:
    """Join the cluster the command names, reuse a connected Ray, or start a local one.

    Args:
        address: ``--address`` (None: ``$RAY_ADDRESS``, else a new local Ray).
        num_gpus: GPUs a new local Ray declares (simulated systems on a host without
            GPUs place like the real ones); 0 to let Ray detect them.
        cpus_needed: Fewest CPUs a new local Ray declares.
        dashboard: Whether a new local Ray serves its dashboard.
        listen: Where a new local Ray listens (default 127.0.0.1).
        job_name: The name the dashboard's Jobs page shows for this driver.
        ray_log: A file for Ray's own log records in this process (its warnings), instead
            of the terminal (None: Ray's default, the terminal).
        verbose: Ray's records on the terminal too, and the workers' output streamed to it.

    Yields:
        The session, or None when this process was already connected to Ray.

    Raises:
        ConfigError: No cluster answers at the address, or ``listen`` is not an address
            of this host (one line, before anything starts).
        RunError: Ray did not start or could not be joined.
    """
    import ray

    if ray.is_initialized():  # a test's Ray, or a sweep trial inside a Ray task
        yield None
        return
    target, source = cluster_address(address)
    if target is not None and listen:
        raise ConfigError(f"--listen {listen}: applies to a local Ray only, not to the "
                          f"cluster at {target} (from {source})")
    if target is not None:
        target = probe_address(target, what=source)
        loopback = _loopback_only_head(target)
    else:
        listen = check_listen(listen)
        loopback = listen == LOOPBACK
    with _single_host(loopback), _ray_records(ray_log, verbose):
        with _connected(target, source, num_gpus, cpus_needed, dashboard, listen, job_name,
                        verbose) as session:
            session.loopback = loopback
            yield session


@contextmanager
def _single_host(enabled: bool) -> Iterator[None]:
    """Ray's single-host mode (its default on macOS and Windows): this host's Ray address
    is 127.0.0.1, so a local Ray binds every gRPC server, agent and metrics port to it,
    and a driver finds a head that listens on 127.0.0.1 only.

    Ray reads the switch from its environment when imported (so the processes a local
    Ray starts get it from there) and keeps it in ``ray_constants`` (this process may
    have imported Ray already, so it is set there too). Both are put back on exit.
    """
    if not enabled:
        yield
        return
    from ray._private import ray_constants

    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved_env, saved = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved_env


def _loopback_only_head(address: str) -> bool:
    """Whether ``address`` is a head on 127.0.0.1 that this host's own address does not
    reach (a head started in Ray's single-host mode)."""
    host, _, port = address.rpartition(":")
    try:
        if "://" in host or not ipaddress.ip_address(
                socket.gethostbyname(host.strip("[]"))).is_loopback:
            return False
    except (OSError, ValueError):
        return False
    from ray._private.services import get_node_ip_address

    try:
        with socket.create_connection((get_node_ip_address(), int(port)), timeout=PROBE_TIMEOUT_S):
            return False
    except OSError:
        return True


@contextmanager
def _ray_records(ray_log: Optional[Path], verbose: bool) -> Iterator[None]:
    """Send the ``ray`` logger's records to ``ray_log`` (and the terminal if verbose)."""
    if ray_log is None:
        yield
        return
    logger = logging.getLogger("ray")
    saved = list(logger.handlers)  # Ray's own terminal handler, installed by its import
    handler = logging.FileHandler(ray_log)  # ray.init gives it Ray's own format
    logger.handlers = [handler] + (saved if verbose else [])
    try:
        yield
    finally:
        logger.handlers = saved
        handler.close()


@contextmanager
def _connected(target: Optional[str], source: str, num_gpus: int, cpus_needed: int,
               dashboard: bool, listen: str, job_name: Optional[str],
               verbose: bool) -> Iterator[RaySession]:
    import ray

    kwargs: dict = {"logging_level": logging.WARNING, "log_to_driver": verbose}
    if job_name:
        kwargs["job_config"] = ray.job_config.JobConfig(metadata={"job_name": job_name})
    if target is not None:
        kwargs["address"] = target
    else:  # a new local cluster, even if another one runs on this host
        kwargs.update(address="local", num_cpus=max(os.cpu_count() or 1, cpus_needed),
                      include_dashboard=dashboard)
        if num_gpus:
            kwargs["num_gpus"] = num_gpus
        if listen not in (LOOPBACK, "0.0.0.0", "::"):
            kwargs["_node_ip_address"] = listen
        if dashboard:
            kwargs["dashboard_host"] = listen
    term_handler = signal.getsignal(signal.SIGTERM)
    children = {pid for pid, _ in _descendants(os.getpid(), depth=1)}
    reaper = None
    try:  # also an interrupted ray.init stops what it started
        try:
            context = ray.init(**kwargs)
        except Exception as exc:  # Ray's own start-up or connection errors
            raise RunError((f"could not join the Ray cluster at {target}" if target else
                            "the local Ray did not start") + f": {error_line(exc)}") from None
        _keep_signal_handler(signal.SIGTERM, term_handler)
        info = getattr(context, "address_info", {}) or {}
        session = RaySession(
            local=target is None, address=info.get("gcs_address") or target or "",
            source=source, dashboard_url=current_dashboard_url(), token_auth=_token_auth_enabled(),
            logs_dir=str(Path(info["session_dir"]) / "logs") if info.get("session_dir") else None)
        if session.local:
            reaper = _start_reaper(children)
        yield session
    finally:
        ray.shutdown()
        _keep_signal_handler(signal.SIGTERM, term_handler)
        if reaper is not None:
            reaper.stdin.close()  # the watcher stops whatever Ray left, then exits


def _keep_signal_handler(signum: int, handler) -> None:
    """Put back the caller's handler that ``ray.init`` replaced (main thread only)."""
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signum, handler)


def _descendants(pid: int, depth: int = 1 << 30) -> list[tuple[int, str]]:
    """``(pid, start time)`` of the processes below ``pid``, ``depth`` levels deep
    (Linux /proc; none elsewhere)."""
    if not os.path.isdir("/proc"):
        return []
    children: dict[int, list[int]] = {}
    start: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        fields = stat(int(entry)) if entry.isdigit() else None
        if not fields:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        start[int(entry)] = fields[19]
    found, todo = [], [(child, 1) for child in children.get(pid, [])]
    while todo:
        child, level = todo.pop()
        found.append((child, start[child]))
        if level < depth:
            todo.extend((grandchild, level + 1) for grandchild in children.get(child, []))
    return found


def _start_reaper(before: set[int]) -> Optional[subprocess.Popen]:
    """A watcher that kills this local Ray's processes once this process is gone.

    Killed with SIGKILL, raybench cannot stop its Ray: Ray's GCS and raylet die with it,
    but the dashboard and runtime-env agents stay up for about a minute, listening. The
    watcher (``reaper.py``, in its own session so Ctrl-C does not reach it) reads the
    pids of the processes ``ray.init`` started (children of this process not in
    ``before``) and of theirs, and kills those still alive when the pipe closes.
    """
    roots = [(pid, start) for pid, start in _descendants(os.getpid(), depth=1)
             if pid not in before]
    if not roots:
        return None
    ray_processes = roots + [found for pid, _ in roots for found in _descendants(pid)]
    try:
        reaper = subprocess.Popen(
            [sys.executable, str(_REAPER)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        lines = "".join(f"{pid} {start}\n" for pid, start in ray_processes)
        reaper.stdin.write(lines.encode())
        reaper.stdin.flush()
    except OSError as exc:
        log.warning("could not start the watcher of the local Ray: %s", exc)
        return None
    return reaper
