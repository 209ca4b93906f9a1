// Glibc's Swift module leaves out <sys/epoll.h>, and accept4 needs _GNU_SOURCE.
#include <sys/epoll.h>

/// accept4(fd, NULL, NULL, SOCK_NONBLOCK).
int cepoll_accept_nonblocking(int fd);
