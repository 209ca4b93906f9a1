// libsystemd: readiness and status (sd_notify), the watchdog, socket activation
// (sd_listen_fds_with_names) and the journal (sd_journal_sendv).
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
