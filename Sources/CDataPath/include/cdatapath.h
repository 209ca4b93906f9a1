// The few Linux calls the data path needs that Glibc's Swift module leaves out: <sys/epoll.h>
// and <sys/eventfd.h> are not in it, accept4, pipe2 and splice need _GNU_SOURCE, and CPU_COUNT
// is a macro.
// Each function is a thin wrapper that keeps the kernel's contract (return value, errno).
#ifndef TCP_FALLBACK_CDATAPATH_H
#define TCP_FALLBACK_CDATAPATH_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/// Socket types and flags as plain ints. Glibc declares SOCK_STREAM and the others as cases of
/// an enum in <bits/socket_type.h>, which every C module that includes <sys/socket.h> (ours,
/// libsystemd's, BoringSSL's) may claim: which one owns it depends on the build order, and a
/// Swift file that does not import the owner "cannot find 'SOCK_STREAM' in scope". These are
/// declared here, in a module the Swift side imports explicitly (`SocketFlags`).
static const int tf_sock_stream = SOCK_STREAM;
static const int tf_sock_dgram = SOCK_DGRAM;
static const int tf_sock_nonblock = SOCK_NONBLOCK;
static const int tf_sock_cloexec = SOCK_CLOEXEC;

/// accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC).
int tf_accept(int fd, struct sockaddr *address, socklen_t *length);

/// pipe2(fds, O_NONBLOCK | O_CLOEXEC): fds[0] is the read end, fds[1] the write end.
int tf_pipe(int fds[2]);

/// splice(from, NULL, to, NULL, count, SPLICE_F_MOVE | SPLICE_F_NONBLOCK): moves up to `count`
/// bytes between a socket and a pipe inside the kernel. Returns the bytes moved, 0 at the end
/// of the socket's stream, or -1 with errno (EAGAIN: nothing to move without blocking).
long tf_splice(int from, int to, unsigned long count);

/// The number of CPUs this thread may run on (sched_getaffinity), or -errno.
int tf_available_cpus(void);

/// pthread_setname_np on the calling thread (names show in top -H, perf and core dumps).
void tf_name_thread(const char *name);

/// The most descriptors one tf_send_descriptors call passes (the kernel's SCM_MAX_FD is 253).
#define TF_DESCRIPTORS_PER_MESSAGE 200

/// sendmsg(2) of one byte carrying `count` (at most TF_DESCRIPTORS_PER_MESSAGE) descriptors
/// as SCM_RIGHTS on a connected unix socket: the receiver gets its own descriptors for the
/// same open files. Returns 0, or -errno.
int tf_send_descriptors(int socket, const int *fds, int count);

/// recvmsg(2) of one message sent by tf_send_descriptors: stores up to `max` received
/// descriptors (close-on-exec) in `fds` and returns how many; 0 at the end of the stream;
/// -errno on failure. Descriptors beyond `max` (the message was truncated) are closed, and
/// -EMSGSIZE returned.
int tf_receive_descriptors(int socket, int *fds, int max);

/// Starts `path` with `argv` and `envp` (null-terminated arrays) as posix_spawn does (posix_spawnp
/// for a name without '/', looked up in PATH), the child keeping only descriptors 0, 1 and 2 (glibc's posix_spawn_file_actions_addclosefrom_np,
/// which Glibc's module does not show). Returns 0 and sets *pid, or an errno value.
int tf_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[]);

#endif
