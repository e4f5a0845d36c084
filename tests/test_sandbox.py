"""The sandbox that runs model-written code: verdicts that cannot be faked by exiting early, and hostile
programs contained in every isolation tier that works on this machine.

Every test checks, after it ran, that no process it started is left (by a per-test marker string in the
command lines of the processes it spawns) and that the caller holds no new child, descriptor or thread.
Hostile programs run with ``timeout=1.0``; the slow ones run on all tiers at once, in threads.
"""

import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nlp_course import sandbox
from nlp_course.sandbox import STATUSES, TIERS, SandboxError, execute, isolation_tier, tier_available

HOSTILE_TIMEOUT = 1.0
PID_NAMESPACE_TIERS = ("bubblewrap", "namespaces")
UNAVAILABLE = {
    "bubblewrap": "bwrap is not installed (apt-get install -y bubblewrap) or cannot create namespaces here "
                  "(e.g. inside Docker's default seccomp profile)",
    "namespaces": "unshare --user --pid --net is not allowed here (user namespaces disabled or blocked)",
}


# ---------------------------------------------------------------- helpers
def children() -> set[int]:
    """The caller's own child processes (of every thread)."""
    found = set()
    for task in os.listdir("/proc/self/task"):
        try:  # a thread of another library may end between the listing and the read: it has no children then
            with open(f"/proc/self/task/{task}/children") as file:
                found |= {int(pid) for pid in file.read().split()}
        except FileNotFoundError:
            continue
    return found


def running_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (a zombie's command line is empty)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as file:
                    if marker.encode() in file.read():
                        found.append(int(name))
            except OSError:
                continue
    return found


def gone_by(marker: str, deadline: float) -> list[int]:
    """The processes with ``marker`` still alive at ``deadline`` (checks until then, returns early if none)."""
    while (left := running_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def kill_all(marker: str) -> None:
    for pid in running_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def marked(body: str, marker: str) -> str:
    """A program that re-executes itself as ``python -S -c body marker``: it and every process it forks carry
    ``marker`` in their command line, so that the test can look for them afterwards."""
    return f"import os, sys\nos.execv(sys.executable, [sys.executable, '-S', '-c', {body!r}, {marker!r}])\n"


def contained(program: str, tier: str, marker: str, **options) -> sandbox.ExecutionResult:
    """Run ``program``; it must come back soon after its timeout, and no ``marker`` process may survive it.

    The margins are generous on purpose: on a busy machine the kernel takes seconds to reap a few hundred
    forked processes (and ``on_every_tier`` runs the tiers at once, with one marker). What is asserted is that
    the run ends and nothing it started outlives it, not how fast.
    """
    timeout = options.setdefault("timeout", HOSTILE_TIMEOUT)
    start = time.monotonic()
    try:
        result = execute(program, tier=tier, **options)
        assert time.monotonic() - start < timeout + 5, (tier, time.monotonic() - start)
        assert gone_by(marker, start + timeout + 15) == [], f"{tier}: processes left running"
    finally:
        kill_all(marker)
    assert result.tier == tier and result.status in STATUSES
    return result


def on_every_tier(program: str, marker: str, **options) -> dict[str, sandbox.ExecutionResult]:
    """``contained`` on every available tier at once (slow hostile programs, and a check of thread safety)."""
    tiers = [tier for tier in TIERS if tier_available(tier)]
    with ThreadPoolExecutor(len(tiers)) as pool:
        futures = {tier: pool.submit(contained, program, tier, marker, **options) for tier in tiers}
    return {tier: future.result() for tier, future in futures.items()}


@pytest.fixture(params=TIERS)
def tier(request):
    if not tier_available(request.param):
        pytest.skip(f"tier {request.param!r} unavailable: {UNAVAILABLE[request.param]}")
    return request.param


@pytest.fixture
def marker():
    return f"sandbox-test-{secrets.token_hex(8)}"


@pytest.fixture(autouse=True)
def nothing_leaks():
    isolation_tier()  # the one-off probes happen before the counts
    fds, kids, threads = set(os.listdir("/proc/self/fd")), children(), set(threading.enumerate())
    yield
    # only what is new counts: a descriptor, child or thread of another library may go away meanwhile
    assert not set(os.listdir("/proc/self/fd")) - fds, "open file descriptors leaked"
    assert not children() - kids, "child processes left unreaped"
    assert not set(threading.enumerate()) - threads, "threads left running"


# ---------------------------------------------------------------- verdicts
def test_this_machine_gets_the_strongest_tier_available():
    best = isolation_tier()
    assert best in TIERS and tier_available(best)
    assert all(not tier_available(t) for t in TIERS[:TIERS.index(best)])
    assert tier_available("limits only")


def test_a_correct_program_passes_in_a_fresh_directory_that_is_removed(tier):
    result = execute("import os\ndef add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint(os.getcwd())\n",
                     tier=tier)
    assert (result.status, result.passed, result.returncode, result.tier) == ("passed", True, 0, tier)
    workdir = result.stdout.strip()
    assert "nlp-sandbox-" in workdir and not os.path.exists(workdir) and result.stderr == "" and not result.truncated
    assert 0 < result.duration < 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.passed = False


def test_a_failing_assert_fails_with_its_traceback(tier):
    result = execute("def check(f):\n    assert f(1) == 2\ncheck(lambda x: x)\n", tier=tier)
    assert (result.status, result.passed, result.returncode) == ("failed", False, 1)
    assert "Traceback" in result.stderr and 'File "program.py", line 2' in result.stderr
    assert result.stderr.rstrip().endswith("AssertionError")


def test_a_syntax_error_fails():
    result = execute("def f(:\n    return 1\n")
    assert (result.status, result.passed) == ("failed", False) and "SyntaxError" in result.stderr


def test_exiting_early_with_status_0_is_not_a_pass(tier):
    tests_after = "\nassert 1 + 1 == 3, 'the tests'\n"
    for early_exit in ("import os\nos._exit(0)", "import sys\nsys.exit(0)", "raise SystemExit"):
        result = execute(early_exit + tests_after, tier=tier)
        assert (result.status, result.passed, result.returncode) == ("failed", False, 0), early_exit
    forged = execute(f"print({secrets.token_hex(16)!r})\nimport os\nos._exit(0)" + tests_after, tier=tier)
    assert not forged.passed


def test_the_token_is_removed_from_stdout_even_past_max_output():
    result = execute("import sys\nsys.stdout.write('x' * 50)\n", max_output=10)
    assert result.passed and result.stdout == "x" * 10 and result.truncated
    exact = execute("print('abc', end='')\n")
    assert exact.passed and exact.stdout == "abc" and not exact.truncated


def test_known_limit_a_program_that_reads_its_own_source_can_forge_the_token():
    """Documented in the module: the token is in the program's file, so a program written to cheat finds it."""
    cheat = ("import os, re\nprint(re.findall('[0-9a-f]{32}', open(__file__).read())[-1])\n"
             "os._exit(0)\nassert False, 'the tests never run'\n")
    assert execute(cheat).status == "passed"


def test_a_segmentation_fault_is_a_crash(tier):
    result = execute("import ctypes\nctypes.string_at(0)\n", tier=tier)
    assert (result.status, result.signal, result.passed) == ("crashed", signal.SIGSEGV, False)


def test_bad_arguments_are_refused(monkeypatch):
    for options in ({"timeout": 0}, {"timeout": float("nan")}, {"memory_mb": 8}, {"max_output": -1},
                    {"tier": "docker"}):
        with pytest.raises(SandboxError):
            execute("pass", **options)
    with pytest.raises(SandboxError):
        execute(b"print(1)")
    monkeypatch.setitem(sandbox._AVAILABLE, "bubblewrap", False)
    with pytest.raises(SandboxError, match="does not work on this machine"):
        execute("pass", tier="bubblewrap")


def test_limits_only_is_chosen_last_and_warned_about_once(monkeypatch, recwarn):
    monkeypatch.setattr(sandbox, "_AVAILABLE", {"bubblewrap": False, "namespaces": False})
    monkeypatch.setattr(sandbox, "_WARNED", [])
    assert isolation_tier() == "limits only" and isolation_tier() == "limits only"
    warned = [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert len(warned) == 1 and "limits only" in str(warned[0].message)
    assert execute("print(1)").tier == "limits only"


# ---------------------------------------------------------------- slow hostile programs: all tiers at once
def test_an_infinite_loop_is_killed(marker):
    for tier, result in on_every_tier(marked("while True:\n    pass\n", marker), marker).items():
        assert (result.status, result.passed) == ("timed out", False), tier
        assert HOSTILE_TIMEOUT <= result.duration < HOSTILE_TIMEOUT + 0.5, tier


def test_a_program_ignoring_sigterm_is_killed(marker):
    body = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)\n"
    for tier, result in on_every_tier(marked(body, marker), marker).items():
        assert result.status == "timed out", tier


def test_a_bounded_fork_bomb_is_contained(marker):
    """At most 2,000 forks, bounded by the program itself: as root, RLIMIT_NPROC does not apply, and the
    limits-only tier must not put the machine at risk."""
    body = "import os, time\nfor _ in range(2000):\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n"
    for tier, result in on_every_tier(marked(body, marker), marker, memory_mb=256).items():
        assert result.status in ("timed out", "failed") and not result.passed, (tier, result.status)


def test_endless_output_is_truncated_and_still_ends(marker):
    body = "import sys\nwhile True:\n    sys.stdout.write('o' * 999 + '\\n')\n    sys.stderr.write('e' * 99 + '\\n')\n"
    for tier, result in on_every_tier(marked(body, marker), marker, max_output=4096).items():
        assert result.status == "timed out" and result.truncated, tier
        assert result.stdout == ("o" * 999 + "\n") * 4 + "o" * 96 and len(result.stderr) == 4096, tier


# ---------------------------------------------------------------- quick hostile programs, tier by tier
SETSID_GRANDCHILD = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, '-S', '-c', 'import time; time.sleep(60)', {marker!r}],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL{env})
while {marker!r}.encode() not in open(f'/proc/{{child.pid}}/cmdline', 'rb').read():
    time.sleep(0.005)
print('grandchild in its own session:', os.getsid(child.pid) == child.pid)
"""


def test_a_setsid_grandchild_dies_with_the_run(tier, marker):
    """PID namespaces kill it with their first process; limits only finds it by the run's environment marker."""
    result = contained(SETSID_GRANDCHILD.format(marker=marker, env=""), tier, marker)
    assert result.passed and result.stdout == "grandchild in its own session: True\n"


def test_known_limit_without_namespaces_a_setsid_grandchild_with_a_clean_environment_survives(marker):
    if not tier_available("limits only"):
        pytest.skip("limits only is always available")
    try:
        result = execute(SETSID_GRANDCHILD.format(marker=marker, env=", env={}"), tier="limits only")
        assert result.passed
        assert running_with(marker), "documented escape no longer happens: update the module's docstring"
    finally:
        kill_all(marker)
        assert gone_by(marker, time.monotonic() + 2) == []


def test_a_memory_bomb_runs_out_of_memory(tier, marker):
    program = f"# {marker}\nblocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n"
    result = contained(program, tier, marker, memory_mb=256)
    assert (result.status, result.passed) == ("out of memory", False) and "MemoryError" in result.stderr


def test_a_disk_filler_is_stopped_at_the_file_size_limit(tier, marker):
    program = "chunk = b'x' * 2**20\nwith open('big.bin', 'wb') as f:\n    for _ in range(100):\n        f.write(chunk)\n"
    result = contained(program, tier, marker)
    assert result.status == "failed" and "File too large" in result.stderr


def test_under_bubblewrap_many_files_fill_only_a_small_private_tmpfs(marker):
    if not tier_available("bubblewrap"):
        pytest.skip(UNAVAILABLE["bubblewrap"])
    program = "for i in range(10):\n    open(f'f{i}', 'wb').write(b'x' * (9 * 2**20))\n"
    result = contained(program, "bubblewrap", marker)
    assert result.status == "failed" and "No space left on device" in result.stderr


def test_reading_stdin_gets_end_of_file_at_once(tier):
    result = execute("import sys\nassert sys.stdin.read() == ''\nprint('eof')\n", tier=tier, timeout=HOSTILE_TIMEOUT)
    assert result.passed and result.stdout == "eof\n" and result.duration < HOSTILE_TIMEOUT


def test_files_outside_the_working_directory(tier, tmp_path):
    """bubblewrap: neither written nor deleted. The weaker tiers promise nothing here (module docstring):
    the program has the caller's rights, and this test pins that down."""
    escape, victim = Path(f"/tmp/sandbox-escape-{secrets.token_hex(8)}"), tmp_path / "victim.txt"
    victim.write_text("keep me")
    program = (f"import os\nfor name, act in [('write', lambda: open({str(escape)!r}, 'w').write('x')),\n"
               f"                  ('delete', lambda: os.remove({str(victim)!r}))]:\n"
               "    try:\n        act()\n        print(name, 'done')\n"
               "    except OSError as error:\n        print(name, 'refused', type(error).__name__)\n")
    try:
        result = execute(program, tier=tier, timeout=HOSTILE_TIMEOUT)
        assert result.passed
        if tier == "bubblewrap":
            assert "write refused" in result.stdout and "delete refused" in result.stdout
            assert not escape.exists() and victim.read_text() == "keep me"
        else:
            assert result.stdout == "write done\ndelete done\n" and escape.exists() and not victim.exists()
    finally:
        escape.unlink(missing_ok=True)


def test_a_socket_to_the_host_fails_where_there_is_a_network_namespace(tier):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        program = (f"import socket\nsocket.create_connection(('127.0.0.1', {server.getsockname()[1]}), timeout=0.5)"
                   "\nprint('connected')\n")
        result = execute(program, tier=tier, timeout=HOSTILE_TIMEOUT)
    if tier in PID_NAMESPACE_TIERS:
        assert result.status == "failed", result.stderr
        assert "ConnectionRefusedError" in result.stderr or "Network is unreachable" in result.stderr
    else:
        assert result.passed and result.stdout == "connected\n", "limits only has the caller's network"


def test_shell_commands_through_posix_and_ctypes_are_contained_like_the_program(tier, marker):
    """A shell started by ``posix.system`` or libc's ``system`` has the program's powers, no more: under
    bubblewrap it cannot create a file outside; a process it leaves in the background dies with the run."""
    escapes = [Path(f"/tmp/sandbox-escape-{secrets.token_hex(8)}") for _ in range(2)]
    program = (f"import ctypes, posix, sys\n"
               f"posix.system(f\"touch {escapes[0]}; {{sys.executable}} -S -c 'import time; time.sleep(60)' "
               f"{marker} &\")\n"
               f"ctypes.CDLL('libc.so.6').system(b'touch {escapes[1]}')\nprint('ran')\n")
    try:
        result = contained(program, tier, marker)
        assert result.passed and result.stdout == "ran\n"
        assert [path.exists() for path in escapes] == [tier != "bubblewrap"] * 2
    finally:
        for path in escapes:
            path.unlink(missing_ok=True)


def test_bubblewrap_drops_capabilities_and_hides_the_host():
    if not tier_available("bubblewrap"):
        pytest.skip(UNAVAILABLE["bubblewrap"])
    program = (f"import os, socket\nstatus = open('/proc/self/status').read()\n"
               "print([line.split()[1] for line in status.splitlines() if line.startswith('CapEff')][0])\n"
               f"print(os.path.exists({__file__!r}), os.path.exists('/etc/shadow'), os.getpid() < 10)\n"
               "print([name for _, name in socket.if_nameindex()])\n"
               "try:\n    open('/proc/sys/kernel/hostname', 'w')\nexcept OSError as error:\n    print(error.errno)\n")
    result = execute(program, tier="bubblewrap")
    assert result.passed, result.stderr
    assert result.stdout.splitlines() == ["0000000000000000", "False False True", "['lo']", "30"]  # 30: EROFS


CALLER = """\
import os, sys, threading
from nlp_course.sandbox import execute
for tier in sys.argv[1:]:
    threading.Thread(target=execute, args=(os.environ["PROGRAM"],), kwargs={"tier": tier, "timeout": 60}).start()
"""


def test_killing_the_caller_kills_the_runs(marker, tmp_path):
    tiers = [tier for tier in TIERS if tier_available(tier)]
    program = marked("import time\ntime.sleep(60)\n", marker)  # in the environment: not in the caller's cmdline
    caller = subprocess.Popen([sys.executable, "-c", CALLER, *tiers], stdin=subprocess.DEVNULL,
                              env={**os.environ, "TMPDIR": str(tmp_path), "PROGRAM": program})
    try:
        deadline = time.monotonic() + 20
        while len(running_with(marker)) < len(tiers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(running_with(marker)) == len(tiers), "the programs did not start"
    finally:
        caller.kill()
        caller.wait()
    try:
        assert gone_by(marker, time.monotonic() + 2) == []
    finally:
        kill_all(marker)


# ---------------------------------------------------------------- many runs
def test_two_hundred_short_programs_in_a_row_leak_nothing():
    before = len(os.listdir("/proc/self/fd"))
    results = [execute(f"print({i})", timeout=5.0) for i in range(200)]
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(200)] and all(r.passed for r in results)
    assert len(os.listdir("/proc/self/fd")) == before
