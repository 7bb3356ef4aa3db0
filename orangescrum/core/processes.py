"""Local helper services (broker, Spark cluster, emulators): loopback ports and clean stops."""

from __future__ import annotations

import signal
import socket
import subprocess
from types import TracebackType
from typing import Self

from orangescrum.core.errors import OrangeScrumError

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As servers bind: a port whose last connections linger in TIME_WAIT is still free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def claim_port(port: int | None, how_to_choose: str) -> int:
    """The requested port if it is free (else a clear error), or a free one when none is asked."""
    if port is None:
        return free_port()
    if not port_is_free(port):
        raise OrangeScrumError(
            f"Port {port} is already in use; stop what listens there or choose another "
            f"port ({how_to_choose})."
        )
    return port


def stop_process(process: subprocess.Popen[bytes], timeout_seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the timeout."""
    process.terminate()
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """`preexec_fn` of a helper process that must not outlive the one that started it.

    Linux: asks the kernel (prctl PR_SET_PDEATHSIG) to send the child SIGTERM when the
    thread that started it ends, even when that process is killed with SIGKILL and so
    cannot stop its children itself; the child then shuts down as on any SIGTERM (JupyterLab
    stops its kernels), so an interrupted command or test run leaves no server behind. Start
    the child from a thread that outlives it (the main thread, as the CLI and tests do).
    Elsewhere (no libc.so.6) it does nothing.
    """
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class ManagedService:
    """A helper process used as `with Service(...) as service:`; subclasses start and stop it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
