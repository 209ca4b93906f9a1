// The few Linux calls the data path needs that Glibc's Swift module leaves out: <sys/epoll.h>
// and <sys/eventfd.h> are not in it, accept4 needs _GNU_SOURCE, and CPU_COUNT is a macro.
// Each function is a thin wrapper that keeps the kernel's contract (return value, errno).
#ifndef TCP_FALLBACK_CDATAPATH_H
#define TCP_FALLBACK_CDATAPATH_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/// accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC).
int tf_accept(int fd, struct sockaddr *address, socklen_t *length);

/// The number of CPUs this thread may run on (sched_getaffinity), or -errno.
int tf_available_cpus(void);

/// pthread_setname_np on the calling thread (names show in top -H, perf and core dumps).
void tf_name_thread(const char *name);

#endif
