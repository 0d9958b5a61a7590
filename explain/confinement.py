"""Confining the current process before it runs code nobody vouches for (a pickled model).

Standard library only, so that the sandbox's child process (explain/sandbox_child.py) imports no
more than it needs. `confine` applies, in this order, and raises ConfinementError if any step is not
possible (the caller must then stop: nothing is ever run half-confined):

1. resource limits: address space, CPU seconds, open files, file size, no core files;
2. no capabilities: the bounding, ambient, effective, permitted and inheritable sets emptied, so a
   worker running as root leaves a child that cannot raise its limits, load modules or mount;
3. no_new_privs, then a Landlock ruleset: read-only access to the directories Python imports from,
   read-write to the private work directory, nothing else on the filesystem (so not the service's
   variable directory, keys or database, nor /proc/<worker>/environ); no TCP bind or connect (ABI 4);
   no signals to, nor abstract Unix sockets of, processes outside the sandbox (ABI 6);
4. a seccomp filter: the native architecture only (the x32 ABI and 32-bit entry points kill the
   process), and socket(2), socketpair(2), ptrace(2), process_vm_readv/writev, io_uring, bpf,
   perf_event_open, userfaultfd, keyrings, namespaces and new processes fail with EPERM. Without a
   socket the child can reach no server, TCP or Unix (PostgreSQL's socket trusts local users).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class ConfinementError(RuntimeError):
    """The sandbox cannot be set up here; the message says what is missing."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int  # RLIMIT_AS: address space, so also what the model's libraries map
    cpu_seconds: int  # RLIMIT_CPU: SIGXCPU at this, SIGKILL a few seconds later
    open_files: int  # RLIMIT_NOFILE
    file_bytes: int  # RLIMIT_FSIZE: the largest file the child may write


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Landlock: the same system call numbers on every architecture.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # rights a file takes
READ_ONLY = FS_READ_FILE | FS_READ_DIR
# The work directory: files made, written, read, removed; no links, devices, sockets, pipes or programs.
READ_WRITE = (
    READ_ONLY | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG | FS_TRUNCATE
)

# seccomp
SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = 0x7E020000  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET

# System calls that fail with EPERM: sockets (every family: no TCP, no Unix socket, no netlink), other
# processes' memory, kernel interfaces that have been ways out of sandboxes, keyrings, namespaces,
# leaving the process group the parent kills, and new processes (fork, vfork).
DENIED = {
    "x86_64": {
        "socket": 41,
        "socketpair": 53,
        "fork": 57,
        "vfork": 58,
        "ptrace": 101,
        "setpgid": 109,
        "setsid": 112,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "unshare": 272,
        "perf_event_open": 298,
        "setns": 308,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "kcmp": 312,
        "bpf": 321,
        "userfaultfd": 323,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "pidfd_getfd": 438,
    },
    "aarch64": {
        "unshare": 97,
        "ptrace": 117,
        "setpgid": 154,
        "setsid": 157,
        "socket": 198,
        "socketpair": 199,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "perf_event_open": 241,
        "setns": 268,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "kcmp": 272,
        "bpf": 280,
        "userfaultfd": 282,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "pidfd_getfd": 438,
    },
}
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
SYS_CLONE3 = 435  # its flags sit in memory a filter cannot read: ENOSYS, and glibc falls back to clone
# Signals (where Landlock cannot scope them, before ABI 6): only to the child itself or its group.
SYS_KILL = {"x86_64": 62, "aarch64": 129}
SYS_TKILL = {"x86_64": 200, "aarch64": 130}
SYS_TGKILL = {"x86_64": 234, "aarch64": 131}


def _fail(what: str) -> ConfinementError:
    code = ctypes.get_errno()
    return ConfinementError(f"{what}: {os.strerror(code)} (errno {code})")


def machine() -> str:
    """The architecture the filter is written for, or ConfinementError (fail closed elsewhere)."""
    name = platform.machine()
    if name not in AUDIT_ARCH:
        raise ConfinementError(f"no seccomp filter is written for the {name!r} architecture")
    return name


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers; 0 where it has none or it is disabled."""
    version = _libc.syscall(
        SYS_LANDLOCK_CREATE_RULESET,
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(int(version), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE to MAKE_SYM
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def set_limits(limits: Limits) -> None:
    """Lower the resource limits (soft and hard: without capabilities they cannot be raised again)."""
    settings = [
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        # SIGXCPU at the soft limit (the parent reports it); SIGKILL at the hard one if that is caught.
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 2),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in settings:
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError) as error:
            raise ConfinementError(f"cannot set resource limit {which}: {error}") from error


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """Empty every capability set. The bounding set needs CAP_SETPCAP to shrink: a process without it
    (a worker not running as root) has no capabilities to lose and gains none (no_new_privs)."""
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        raise _fail("capget")
    if data[0].effective or data[1].effective:
        cap = 0
        while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            cap += 1
        if ctypes.get_errno() != errno.EINVAL:  # EINVAL: past the last capability this kernel has
            raise _fail(f"dropping capability {cap} from the bounding set")
    if (
        _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0
        and ctypes.get_errno() != errno.EINVAL
    ):
        raise _fail("clearing the ambient capabilities")
    empty = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), empty) != 0:
        raise _fail("capset")
    if _libc.capget(ctypes.byref(header), data) != 0 or any(
        (d.effective, d.permitted, d.inheritable) != (0, 0, 0) for d in data
    ):
        raise ConfinementError("capabilities are still held after dropping them")


def _landlock_rule(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            access &= FILE_RIGHTS
        attr = ctypes.create_string_buffer(struct.pack("=Qi", access, fd))
        if _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, attr, 0) != 0:
            raise _fail(f"Landlock rule for {path}")
    finally:
        os.close(fd)


def landlock(read_only: Iterable[str], read_write: Iterable[str], abi: int) -> None:
    """Restrict the process to these paths (and their contents), with no TCP and, from ABI 6, no
    signals or abstract Unix sockets beyond the sandbox. Needs no_new_privs set."""
    handled_fs = _fs_rights(abi)
    handled_net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = ctypes.create_string_buffer(struct.pack("=QQQ", handled_fs, handled_net, scoped))
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise _fail("creating the Landlock ruleset")
    try:
        for path in read_only:
            _landlock_rule(ruleset, path, READ_ONLY & handled_fs)
        for path in read_write:
            _landlock_rule(ruleset, path, READ_WRITE & handled_fs)
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise _fail("enforcing the Landlock ruleset")
    finally:
        os.close(ruleset)


# --- seccomp: a classic BPF program, assembled here ------------------------------------------------

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (args' low words: little-endian)


class _Program:
    """Instructions with symbolic jump targets, resolved to the relative offsets BPF takes."""

    def __init__(self) -> None:
        self.code: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def load(self, offset: int) -> None:
        self.code.append((_LD_W_ABS, 0, 0, offset))

    def jump(self, op: int, value: int, yes: object = 0, no: object = 0) -> None:
        self.code.append((op, yes, no, value))

    def ret(self, value: int) -> None:
        self.code.append((_RET_K, 0, 0, value))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        def offset(target: object, at: int) -> int:
            if isinstance(target, int):
                return target
            distance = self.labels[str(target)] - at - 1
            if not 0 <= distance <= 255:
                raise ConfinementError("seccomp filter too long for a jump")
            return distance

        return b"".join(
            struct.pack("=HBBI", op, offset(yes, i), offset(no, i), value)
            for i, (op, yes, no, value) in enumerate(self.code)
        )


def seccomp_program(arch: str, *, scoped_signals: bool, pid: int) -> bytes:
    """The filter for `arch`. Without Landlock's signal scoping, kill(2) and tgkill(2) may only
    name the child itself (or its own process group, which holds nothing else)."""
    p = _Program()
    p.load(_ARCH)
    p.jump(_JEQ_K, AUDIT_ARCH[arch], 0, "kill")
    p.load(_NR)
    if arch == "x86_64":
        p.jump(_JGE_K, X32_SYSCALL_BIT, "kill", 0)
    for number in sorted(DENIED[arch].values()):
        p.jump(_JEQ_K, number, "eperm", 0)
    p.jump(_JEQ_K, SYS_CLONE3, "enosys", 0)
    p.jump(_JEQ_K, SYS_CLONE[arch], 0, "after_clone")
    p.load(_ARG0)  # clone's flags: threads yes, processes and namespaces no
    p.jump(_JSET_K, CLONE_NAMESPACES, "eperm", 0)
    p.jump(_JSET_K, CLONE_THREAD, "allow", "eperm")
    p.label("after_clone")
    if not scoped_signals:
        p.jump(_JEQ_K, SYS_TKILL[arch], "eperm", 0)
        p.jump(_JEQ_K, SYS_KILL[arch], "signal", 0)
        p.jump(_JEQ_K, SYS_TGKILL[arch], "signal", "allow")
        p.label("signal")
        p.load(_ARG0)
        p.jump(_JEQ_K, pid, "allow", 0)
        p.jump(_JEQ_K, 0, "allow", 0)
        p.jump(_JEQ_K, (-pid) & 0xFFFFFFFF, "allow", "eperm")
    p.label("allow")
    p.ret(SECCOMP_RET_ALLOW)
    p.label("eperm")
    p.ret(SECCOMP_RET_ERRNO | errno.EPERM)
    p.label("enosys")
    p.ret(SECCOMP_RET_ERRNO | errno.ENOSYS)
    p.label("kill")
    p.ret(SECCOMP_RET_KILL_PROCESS)
    return p.assemble()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp(program: bytes, arch: str) -> None:
    """Install the filter on every thread of the process (TSYNC); no_new_privs must be set."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    flags = ctypes.c_uint(SECCOMP_FILTER_FLAG_TSYNC)
    if _libc.syscall(SYS_SECCOMP[arch], SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(fprog)) != 0:
        raise _fail("installing the seccomp filter")


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def confine(*, read_only: Iterable[str], read_write: Iterable[str], limits: Limits) -> int:
    """Confine this process for good (see the module's docstring). Returns the Landlock ABI used.
    Checks what the kernel offers before changing anything."""
    arch = machine()
    abi = landlock_abi()
    if abi < 1:
        raise ConfinementError(
            "Landlock is not available on this kernel (Linux 5.13 or later, with lsm=landlock)"
        )
    if not Path("/proc/self/task").is_dir():
        raise ConfinementError("/proc is not mounted: cannot check that the process has one thread")
    if _threads() != 1:
        # Landlock confines the calling thread only: another thread would stay free.
        raise ConfinementError(f"the process has {_threads()} threads; it must have one when it is confined")
    set_limits(limits)
    drop_capabilities()
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _fail("setting no_new_privs")
    landlock(read_only, read_write, abi)
    seccomp(seccomp_program(arch, scoped_signals=abi >= 6, pid=os.getpid()), arch)
    return abi
