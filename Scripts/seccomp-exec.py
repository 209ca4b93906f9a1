#!/usr/bin/python3
"""Runs a command under the system call filter of a systemd unit, the way systemd applies it,
so the tests can show that the proxy works inside its unit's SystemCallFilter= without a
running systemd:

    Scripts/seccomp-exec.py UNIT_FILE -- COMMAND [ARGUMENT...]

The unit's SystemCallFilter= lines are read in order (an allow list first, then "~" deny
lists), groups such as @system-service are expanded with `systemd-analyze syscall-filter`,
and every other call fails with the unit's SystemCallErrorNumber= (EPERM by default), as
systemd does. Needs Debian's python3-seccomp (hence /usr/bin/python3)."""
import errno
import os
import subprocess
import sys

import seccomp


def expand(name, seen=None):
    """The system calls a name stands for: itself, or a @group's members, recursively."""
    if not name.startswith("@"):
        return {name}
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    text = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True).stdout
    calls = set()
    for line in text.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        calls |= expand(word, seen)
    return calls


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: seccomp-exec.py UNIT_FILE -- COMMAND [ARGUMENT...]")
    allowed, error = None, errno.EPERM
    for line in open(sys.argv[1]):
        line = line.strip()
        if line.startswith("SystemCallErrorNumber="):
            error = getattr(errno, line.split("=", 1)[1])
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.split("=", 1)[1]
        deny = value.startswith("~")
        names = set()
        for word in value.lstrip("~").split():
            names |= expand(word)
        if deny:
            allowed = (allowed if allowed is not None else set()) - names
        else:
            # systemd adds @default to an allow list.
            allowed = (allowed or set()) | names | expand("@default")
    if allowed is None:
        sys.exit(f"{sys.argv[1]} has no SystemCallFilter=")
    rules = seccomp.SyscallFilter(defaction=seccomp.ERRNO(error))
    for call in sorted(allowed):
        try:
            rules.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError):
            pass  # not a system call on this architecture
    rules.load()
    os.execvp(sys.argv[3], sys.argv[3:])


main()
