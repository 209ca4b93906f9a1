// Starting the new binary of an upgrade (ctl upgrade). posix_spawn_file_actions_addclosefrom_np
// is a GNU extension the Swift Glibc module does not show.
//
// Invariants: the file actions are initialised and destroyed here, on every path; the child
// keeps descriptors 0, 1 and 2 only, whatever this process has open (some descriptors, such as
// a control client's connection, are not close-on-exec).
#define _GNU_SOURCE
#include <spawn.h>
#include <string.h>

#include "cdatapath.h"

int tf_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[]) {
    posix_spawn_file_actions_t actions;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    result = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    // A bare name (as the shell ran it) is looked up in PATH, as the shell did.
    if (result == 0) {
        result = strchr(path, '/') ? posix_spawn(pid, path, &actions, NULL, argv, envp)
                                   : posix_spawnp(pid, path, &actions, NULL, argv, envp);
    }
    posix_spawn_file_actions_destroy(&actions);
    return result;
}
