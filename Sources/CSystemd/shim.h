// The few libsystemd calls the proxy makes: readiness and status (sd_notify), the watchdog,
// socket activation and the journal.
//
// They are declared here rather than by including <systemd/sd-daemon.h>: that header pulls
// in <sys/socket.h>, and a module that includes system headers can end up owning their
// declarations (SOCK_DGRAM, ...) so that Swift files importing only Glibc no longer see them,
// depending on build order. The prototypes are those of libsystemd's documented ABI.
#ifndef TCP_FALLBACK_CSYSTEMD_SHIM_H
#define TCP_FALLBACK_CSYSTEMD_SHIM_H

#include <stdint.h>

// Without libsystemd's development files the build would only fail at link time, on undefined
// sd_* symbols: say what is missing instead. (__has_include looks for the header without
// including it.)
#if defined(__has_include) && !__has_include(<systemd/sd-daemon.h>)
#error "libsystemd's development files are missing: install libsystemd-dev (Debian, Ubuntu) or systemd-devel (Fedora), then build again"
#endif

/// sd_notify(3): sends state lines such as "READY=1" to $NOTIFY_SOCKET.
int sd_notify(int unset_environment, const char *state);

/// sd_watchdog_enabled(3): > 0 with the interval in *usec when a watchdog is expected.
int sd_watchdog_enabled(int unset_environment, uint64_t *usec);

/// sd_listen_fds_with_names(3): number of passed sockets (from fd 3), with their names.
int sd_listen_fds_with_names(int unset_environment, char ***names);

/// sd_journal_sendv(3): one entry from `n` "FIELD=value" buffers; `iov` points at
/// `struct iovec iov[n]`.
int sd_journal_sendv(const void *iov, int n);

#define TCP_FALLBACK_SD_LISTEN_FDS_START 3

#endif
