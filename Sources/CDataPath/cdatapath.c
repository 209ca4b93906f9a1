#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include "cdatapath.h"

int tf_accept(int fd, struct sockaddr *address, socklen_t *length) {
    return accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int tf_pipe(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

long tf_splice(int from, int to, unsigned long count) {
    return (long)splice(from, NULL, to, NULL, count, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int tf_available_cpus(void) {
    // Machines with more than CPU_SETSIZE (1024) CPUs need a bigger, allocated set.
    for (size_t count = CPU_SETSIZE; count <= 1 << 16; count *= 4) {
        cpu_set_t *set = CPU_ALLOC(count);
        if (set == NULL) return -ENOMEM;
        size_t size = CPU_ALLOC_SIZE(count);
        if (sched_getaffinity(0, size, set) == 0) {
            int result = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return result;
        }
        int error = errno;
        CPU_FREE(set);
        if (error != EINVAL) return -error;
    }
    return -EINVAL;
}

void tf_name_thread(const char *name) {
    pthread_setname_np(pthread_self(), name);
}
