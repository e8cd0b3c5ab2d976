"""Checking a bundle in a child process with operating-system limits.

The sandbox's tracer stops a script's own loops, but one C-level call (`max` over a list of
100,000 long lists, `list(zip(*b))`) cannot be interrupted from inside the process that runs
it. Validation and the dry run therefore run in a child process with a CPU-time and an
address-space limit set by the kernel, and a wall-clock limit enforced from here: a bundle that
exceeds them is refused with a problem that says so, within seconds, and the server or the
command line that asked is unharmed.

Children come from a fork server that has already imported the engine, so each check costs a
fork, not a fresh interpreter."""
from __future__ import annotations

import multiprocessing
from typing import Any, Callable

try:
    import resource
except ImportError:  # pragma: no cover - POSIX only, as the deployment
    resource = None  # type: ignore[assignment]

CPU_SECONDS = 60  # a dry run of six journeys takes about 2 s of CPU
ADDRESS_SPACE_BYTES = 3 * 2**30  # the engine needs a few hundred MiB
WALL_SECONDS = 180  # a loaded machine may be slower; CPU time is the real fence

_context = None


def _fork_server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["engine.studio.validation"])
    return _context


class LimitExceeded(Exception):
    """The child used up its CPU time, memory or wall-clock time, or died."""


def _child(connection, function: Callable, args: tuple, cpu_seconds: int, address_space: int) -> None:
    if resource is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    try:
        connection.send(("ok", function(*args)))
    except MemoryError:
        connection.send(("limit", "memory"))
    except BaseException as exc:  # reported to the parent, which raises it there
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()


def run_limited(function: Callable, *args: Any, cpu_seconds: int | None = None,
                address_space: int | None = None, wall_seconds: float | None = None) -> Any:
    """function(*args) in a child process under the limits (the module's, unless given); its
    result, or LimitExceeded."""
    cpu_seconds = cpu_seconds or CPU_SECONDS
    address_space = address_space or ADDRESS_SPACE_BYTES
    wall_seconds = wall_seconds or WALL_SECONDS
    context = _fork_server()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, function, args, cpu_seconds, address_space), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(wall_seconds):
            raise LimitExceeded(f"more than {wall_seconds:g} seconds")
        try:
            kind, value = receiver.recv()
        except EOFError:  # killed by the kernel (SIGXCPU after its CPU time, or out of memory)
            raise LimitExceeded(f"more than {cpu_seconds} seconds of processor time or "
                                f"{address_space // 2**20:,} MiB of memory") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()
    if kind == "limit":
        raise LimitExceeded(f"more than {address_space // 2**20:,} MiB of memory")
    if kind == "error":
        raise RuntimeError(f"checking the bundle failed: {value}")
    return value


