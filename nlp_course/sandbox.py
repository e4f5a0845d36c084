"""Running code that a model wrote, without letting it harm the machine or fake its own success.

``execute(program)`` runs one Python program in a fresh interpreter (``sys.executable -I -S -B``: no
site-packages, only the standard library, no bytecode files) in a new temporary working directory, with
stdin closed, a minimal environment (PATH, HOME and TMPDIR pointing at the working directory, a UTF-8
locale), in a new session and process group, under resource limits. It always returns an
``ExecutionResult``; the caller never runs the program's code itself and survives whatever it does.

The verdict. A footer appended to the program prints a random token (``secrets.token_hex``, new for
every run) once the program, and the tests it contains, have run. ``passed`` is true only when the
exit status is 0 AND the token was printed (it is removed from the reported stdout), so ``os._exit(0)``
or ``sys.exit(0)`` before the tests is "failed", not "passed". Known limit: a program that reads its own
source (``open(__file__)``) can find the token and print it; the token stops accidents and lazy forgeries,
not a program written to game its tests. A program that ends inside an unclosed string or with a line
continuation swallows the footer and fails. ``unittest.main()`` must be called with ``exit=False``.

Statuses (``STATUSES``):

- ``"passed"``: exit status 0 and the token printed.
- ``"failed"``: any other normal end: an exception (the traceback is in ``stderr``), a syntax error,
  a non-zero exit status, or exit status 0 without the token.
- ``"timed out"``: still running at ``timeout`` seconds of wall time (then killed), or stopped by its
  CPU-time limit (SIGXCPU).
- ``"out of memory"``: ended by a ``MemoryError`` (the address-space limit, ``memory_mb``).
- ``"crashed"``: killed by a signal (a segmentation fault, an abort), or the sandbox could not start.
  Under bubblewrap and namespaces an exit status of 129 to 192 is read as a signal (128 + its number).

Limits, set in the child before the program runs: address space ``memory_mb``, CPU time
``ceil(timeout) + 1`` s (then SIGXCPU, a second later SIGKILL), file size ``FILE_SIZE_MB``, open files
``OPEN_FILES``, no core files, and ``PROCESSES`` processes when the caller is not root (the kernel does
not apply that limit to root). The caller keeps its own wall-clock deadline and ALWAYS ends a run by
SIGKILL to the whole process group, then reaps the child; stdout and stderr are read by the caller with
a selector (no threads), keeping the first ``max_output`` bytes of each and draining the rest, so that
endless output neither blocks nor fills memory, and a pipe held open by a stray process is let go. If the
caller itself is killed, the run's first process dies with it (bwrap's ``--die-with-parent``, else
``setpriv --pdeathsig``), and with it the whole PID namespace; under "limits only" its descendants may
survive.

Isolation tiers, the strongest one that works here is detected once and cached (``isolation_tier()``);
``tier=`` forces one; the result says which one ran:

- ``"bubblewrap"`` (``bwrap``, Debian package ``bubblewrap``): its own PID, network, IPC and UTS
  namespaces (``--unshare-all``: no network at all, not even to the host's 127.0.0.1), all
  capabilities dropped, ``--die-with-parent``, ``--new-session``. The file system is a read-only view of
  /usr and the Python installation only (not /root, /home, /etc, the course's files, the caller's
  /tmp), /proc of its own, a minimal /dev, /proc/sys read-only, and a writable working directory that is
  a ``WORKDIR_MB`` tmpfs of its own. Stops: reading the caller's files, writing or deleting any file
  outside the working directory, filling the disk, the network, seeing or signalling other processes,
  processes outliving the run (killing the namespace's first process kills every process in it, even a
  ``setsid`` grandchild). Does not stop: kernel exploits (the kernel is shared: no seccomp filter, no VM),
  reading world-readable system files under /usr, and, as root, a fork bomb is only bounded by the time
  limit (RLIMIT_NPROC does not apply to root). Inside many containers (Docker's default seccomp
  profile) bwrap cannot create namespaces: then the next tier is used.
- ``"namespaces"`` (``unshare --user --map-root-user --pid --fork --kill-child --net --ipc --uts
  --mount-proc``): its own PIDs (grandchildren die with the run) and no network. Does not stop: reading,
  writing and deleting any file the calling user may (the file system is the caller's), writes to
  /proc/sys that the caller's user may do, kernel exploits, fork bombs as root.
- ``"limits only"``: only the resource limits, the process group and the temporary working directory;
  ``isolation_tier()`` warns once when this is the best there is. Stops: endless loops, output, memory and
  single huge files; processes of the group; ``setsid`` descendants are found afterwards by a per-run
  marker in their environment and killed (best effort: one that execs with a cleared environment
  survives). Does not stop: anything the caller's user may do: reading secrets, writing or deleting
  files, the network, signalling the caller's processes; run as root, the program may even raise its
  own limits. Use it only for code you would run yourself.

No tier stops a program that games its tests from the inside (monkeypatching ``assert`` targets, reading
the expected answers): this module contains damage, it does not judge honesty.

Taught in: 09_evaluation.
"""

from __future__ import annotations

import math
import numbers
import os
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass

from nlp_course.errors import CourseError

TIERS = ("bubblewrap", "namespaces", "limits only")
STATUSES = ("passed", "failed", "timed out", "out of memory", "crashed")
FILE_SIZE_MB = 10
OPEN_FILES = 64
PROCESSES = 512  # RLIMIT_NPROC, only for a caller that is not root: it counts all the user's processes
WORKDIR_MB = 64  # the size of the working directory's tmpfs under bubblewrap
RUN_MARKER_VAR = "NLP_SANDBOX_RUN"  # in every sandboxed process's environment, to find strays afterwards
PROGRAM_NAME = "program.py"
_DRAIN_AFTER_EXIT = 0.1  # seconds to keep reading once the program has exited (a stray may hold the pipe)
_TAIL_BYTES = 4096  # the end of each stream kept besides its head: the token and the last traceback line


class SandboxError(CourseError, ValueError):
    """Bad arguments to ``execute``, or a forced isolation tier this machine cannot provide."""


@dataclass(frozen=True)
class ExecutionResult:
    """What one run did. ``stdout``/``stderr`` are the first ``max_output`` bytes of each, decoded with
    ``errors="replace"``; ``truncated`` says whether more was written; ``signal`` is the number of the
    signal that ended the program, if one did; ``returncode`` is the sandbox process's exit status."""

    status: str
    passed: bool
    stdout: str
    stderr: str
    duration: float
    returncode: int | None
    tier: str
    truncated: bool = False
    signal: int | None = None


# ---------------------------------------------------------------- what runs in the child
def _limits(timeout: float, memory_mb: int) -> list[tuple[int, int, int]]:
    cpu = math.ceil(timeout) + 1
    limits = [(resource.RLIMIT_AS, memory_mb << 20, memory_mb << 20), (resource.RLIMIT_CPU, cpu, cpu + 1),
              (resource.RLIMIT_FSIZE, FILE_SIZE_MB << 20, FILE_SIZE_MB << 20),
              (resource.RLIMIT_NOFILE, OPEN_FILES, OPEN_FILES), (resource.RLIMIT_CORE, 0, 0)]
    if os.geteuid() != 0:
        limits.append((resource.RLIMIT_NPROC, PROCESSES, PROCESSES))
    return limits


# Run by ``python -c`` in the sandbox: set the limits (never above a hard limit already there), become a
# tiny init when this is the first process of a PID namespace (so that the program is not PID 1, which
# ignores signals, and a signal death shows as 128 + its number, as bubblewrap reports it), then run
# program.py as __main__ with its own file name in tracebacks.
_LAUNCHER = """\
def _launch(limits, path):
    import os, resource, sys, __main__
    for kind, soft, hard in limits:
        current = resource.getrlimit(kind)[1]
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        resource.setrlimit(kind, (soft, hard))
    if os.getpid() == 1:
        child = os.fork()
        while child:
            pid, status = os.wait()
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                os._exit(code if code >= 0 else 128 - code)
    sys.argv[:] = [path]
    __main__.__file__ = path
    with open(path, "rb") as source:
        return compile(source.read(), path, "exec")
exec(globals().pop("_launch")({limits!r}, {path!r}))
"""

_FOOTER = """

# ---- added by nlp_course.sandbox: reached only if everything above ran ----
import os as _sandbox_os, sys as _sandbox_sys
try:
    _sandbox_sys.stdout.flush()
except Exception:
    pass
_sandbox_os.write(1, {token!r})
"""


def _bwrap_prefix(workdir: str, program: str) -> list[str]:
    """bubblewrap's arguments: read-only system and Python, a private tmpfs as the working directory."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                 "/etc/localtime"):
        args += ["--ro-bind-try", name, name]
    bound = ["/usr"]
    for path in sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix,
                                                      os.path.dirname(sys.executable))}):
        if not any(path == done or path.startswith(done + "/") for done in bound):
            args += ["--ro-bind", path, path]
            bound.append(path)
    args += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev",
             "--size", str(WORKDIR_MB << 20), "--tmpfs", workdir, "--ro-bind", program, program,
             "--remount-ro", "/", "--chdir", workdir, "--"]
    return args


def _command(tier: str, workdir: str, program: str, limits: list[tuple[int, int, int]]) -> list[str]:
    python = [sys.executable, "-I", "-S", "-B", "-X", "utf8", "-u",
              "-c", _LAUNCHER.format(limits=limits, path=PROGRAM_NAME)]
    if tier == "bubblewrap":
        return _bwrap_prefix(workdir, program) + python
    # bwrap has --die-with-parent; the others get the same from setpriv, where it exists: killing the
    # caller (the thread that started the run) kills the sandbox's first process
    die_with_caller = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    if tier == "namespaces":
        return die_with_caller + ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child",
                                  "--net", "--ipc", "--uts", "--mount-proc", "--"] + python
    return die_with_caller + python


def _environment(workdir: str, marker: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", RUN_MARKER_VAR: marker}


# ---------------------------------------------------------------- the caller's side
class _Stream:
    """One pipe: the first ``keep`` bytes, the byte count, the last bytes, and whether ``token`` passed."""

    def __init__(self, fd: int, keep: int, token: bytes = b""):
        self.fd, self.keep, self.token = fd, keep, token
        self.head, self.tail, self.total, self.found = bytearray(), b"", 0, False

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if len(self.head) < self.keep:
            self.head += data[: self.keep - len(self.head)]
        window = self.tail + data
        if self.token and not self.found and self.token in window:
            self.found = True
        self.tail = window[-_TAIL_BYTES:]


def _has_exited(pid: int) -> bool:
    """Whether the child has ended, without reaping it (its PID, hence its group, stays ours to kill)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _collect(pid: int, streams: list[_Stream], deadline: float) -> tuple[bool, float]:
    """Read both pipes until the program ends (and its pipes close, or a short grace passes) or the
    deadline. Returns (timed out, when it ended)."""
    ended = None
    with selectors.DefaultSelector() as selector:
        for stream in streams:
            os.set_blocking(stream.fd, False)
            selector.register(stream.fd, selectors.EVENT_READ, stream)
        while True:
            now = time.monotonic()
            if ended is None and _has_exited(pid):
                ended = now
            if ended is None and now >= deadline:
                return True, now
            if ended is not None and (not selector.get_map() or now >= ended + _DRAIN_AFTER_EXIT):
                return False, ended
            limit = (ended + _DRAIN_AFTER_EXIT if ended is not None else deadline) - now
            wait = min(limit, 0.05 if selector.get_map() else 0.002)
            for key, _ in selector.select(max(wait, 0)):
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    key.data.feed(data)
                else:
                    selector.unregister(key.fd)


def _marked_processes(marker: str) -> list[int]:
    needle = f"{RUN_MARKER_VAR}={marker}".encode()
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as environ:
                    if needle in environ.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                continue
    return found


def _stop(process: subprocess.Popen, tier: str, marker: str) -> None:
    """SIGKILL to the whole group, reap the child; under "limits only", also kill marked strays."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    if tier == "limits only":
        for _ in range(20):  # a stray may fork while it is being killed: sweep until none is left
            strays = [pid for pid in _marked_processes(marker) if pid != os.getpid()]
            if not strays:
                break
            for pid in strays:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)


def _remove_tree(path: str) -> None:
    for root, dirs, _ in os.walk(path):  # a program may have left directories without permissions
        for name in dirs:
            try:
                os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


def _ending_signal(returncode: int, tier: str) -> int | None:
    if returncode < 0:
        return -returncode
    if tier != "limits only" and 128 < returncode <= 128 + 64:
        return returncode - 128
    return None


def _verdict(timed_out: bool, returncode: int, tier: str, token_found: bool, stderr_tail: bytes):
    """(status, ending signal) from how the program ended."""
    ending = None if timed_out else _ending_signal(returncode, tier)
    if timed_out or ending == signal.SIGXCPU:
        return "timed out", ending
    if ending is not None:
        return "crashed", ending
    if returncode == 0 and token_found:
        return "passed", None
    last = [line for line in stderr_tail.decode("utf-8", "replace").splitlines() if line.strip()][-1:]
    if last and last[0].startswith("MemoryError"):
        return "out of memory", None
    return "failed", None


def _check_arguments(program, timeout, memory_mb, max_output, tier) -> None:
    if not isinstance(program, str):
        raise SandboxError(f"program must be a str of Python source, got {type(program).__name__}.")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 < timeout < math.inf:
        raise SandboxError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 64:
        raise SandboxError(f"memory_mb must be an int of at least 64 (Python needs that much), got {memory_mb!r}.")
    if isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 0:
        raise SandboxError(f"max_output must be an int >= 0 (bytes), got {max_output!r}.")
    if tier is not None and tier not in TIERS:
        raise SandboxError(f"tier must be one of {', '.join(map(repr, TIERS))} or None, got {tier!r}.")


def _run(program: str, timeout: float, memory_mb: int, max_output: int, tier: str) -> ExecutionResult:
    token = secrets.token_hex(16)
    token_line = f"{token}\n".encode()
    marker = secrets.token_hex(16)
    workdir = tempfile.mkdtemp(prefix="nlp-sandbox-")
    try:
        path = os.path.join(workdir, PROGRAM_NAME)
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as file:  # never fails: compile does
            file.write(program + _FOOTER.format(token=token_line))
        command = _command(tier, workdir, path, _limits(timeout, memory_mb))
        start = time.monotonic()
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, cwd=workdir, env=_environment(workdir, marker),
                                       start_new_session=True, close_fds=True)
        except OSError as error:
            return ExecutionResult("crashed", False, "", f"the sandbox could not start: {error}", 0.0, None, tier)
        with process:
            out = _Stream(process.stdout.fileno(), max_output + len(token_line), token_line)
            err = _Stream(process.stderr.fileno(), max_output)
            try:
                timed_out, ended = _collect(process.pid, [out, err], start + timeout)
            finally:
                _stop(process, tier, marker)
        status, ending = _verdict(timed_out, process.returncode, tier, out.found, err.tail)
        stdout = bytes(out.head).replace(token_line, b"", 1) if out.found else bytes(out.head)
        shown = out.total - (len(token_line) if out.found else 0)
        return ExecutionResult(
            status=status, passed=status == "passed", duration=ended - start, returncode=process.returncode,
            stdout=stdout[:max_output].decode("utf-8", "replace"), tier=tier, signal=ending,
            stderr=bytes(err.head).decode("utf-8", "replace"), truncated=shown > max_output or err.total > max_output)
    finally:
        _remove_tree(workdir)


# ---------------------------------------------------------------- tiers
_TIER_LOCK = threading.Lock()
_AVAILABLE: dict[str, bool] = {}
_WARNED: list[bool] = []
_PROBE = "import os\nassert os.getcwd() == os.environ['HOME']\nprint('sandbox probe')\n"


def _probe(tier: str) -> bool:
    tool = {"bubblewrap": "bwrap", "namespaces": "unshare"}.get(tier)
    if tool and shutil.which(tool) is None:
        return False
    result = _run(_PROBE, timeout=20.0, memory_mb=256, max_output=256, tier=tier)
    return result.passed and result.stdout == "sandbox probe\n"


def tier_available(tier: str) -> bool:
    """Whether ``tier`` works on this machine: tried once with a tiny program, then remembered."""
    if tier not in TIERS:
        raise SandboxError(f"tier must be one of {', '.join(map(repr, TIERS))}, got {tier!r}.")
    with _TIER_LOCK:
        if tier not in _AVAILABLE:
            _AVAILABLE[tier] = tier == "limits only" or _probe(tier)
        return _AVAILABLE[tier]


def available_tiers() -> tuple[str, ...]:
    """Every tier that works here, strongest first (``"limits only"`` always does)."""
    return tuple(tier for tier in TIERS if tier_available(tier))


def isolation_tier() -> str:
    """The strongest tier that works here; warns once when it is ``"limits only"``."""
    tier = next(tier for tier in TIERS if tier_available(tier))
    with _TIER_LOCK:
        warn = tier == "limits only" and not _WARNED
        if warn:
            _WARNED.append(True)
    if warn:
        warnings.warn("nlp_course.sandbox: neither bubblewrap nor user namespaces work here, so programs run "
                      "with resource limits only: they can read, write and delete your files and use the "
                      "network. Install bubblewrap (apt-get install bubblewrap) or run only code you trust.",
                      RuntimeWarning, stacklevel=2)
    return tier


def execute(program: str, timeout: float = 3.0, memory_mb: int = 1024, max_output: int = 4096,
            tier: str | None = None) -> ExecutionResult:
    """Run ``program`` (Python source) in the sandbox; see the module's docstring for what that means.

    ``timeout`` is wall-clock seconds, ``memory_mb`` the address-space limit, ``max_output`` the bytes of
    stdout and of stderr kept; ``tier`` forces an isolation tier (``SandboxError`` if it does not work here).
    """
    _check_arguments(program, timeout, memory_mb, max_output, tier)
    if tier is None:
        tier = isolation_tier()
    elif not tier_available(tier):
        raise SandboxError(f"the isolation tier {tier!r} does not work on this machine; "
                           f"available: {', '.join(available_tiers())}.")
    return _run(program, float(timeout), memory_mb, max_output, tier)
