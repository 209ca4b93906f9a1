// Passing listening sockets between processes (SCM_RIGHTS), for an upgrade without a moment
// of refused connections. Control messages need CMSG_* macros, which Swift cannot call.
//
// Invariants: a control buffer is sized for TF_DESCRIPTORS_PER_MESSAGE descriptors and
// aligned for struct cmsghdr; only descriptors the kernel says it delivered are read out of
// it; any that cannot be returned to the caller are closed, so none leaks.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdatapath.h"

typedef union {
    char buffer[CMSG_SPACE(sizeof(int) * TF_DESCRIPTORS_PER_MESSAGE)];
    struct cmsghdr align;
} tf_control_buffer;

int tf_send_descriptors(int socket, const int *fds, int count) {
    if (count < 1 || count > TF_DESCRIPTORS_PER_MESSAGE) return -EINVAL;
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    tf_control_buffer control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
    memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)count);
    for (;;) {
        ssize_t sent = sendmsg(socket, &message, MSG_NOSIGNAL);
        if (sent == 1) return 0;
        if (sent < 0 && errno == EINTR) continue;
        return sent < 0 ? -errno : -EIO;
    }
}

int tf_receive_descriptors(int socket, int *fds, int max) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    tf_control_buffer control;
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof(control.buffer);
    ssize_t received;
    do {
        received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return -errno;
    if (received == 0) return 0;
    int count = 0;
    int overflow = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int delivered[TF_DESCRIPTORS_PER_MESSAGE];
        if (n > TF_DESCRIPTORS_PER_MESSAGE) n = TF_DESCRIPTORS_PER_MESSAGE;
        memcpy(delivered, CMSG_DATA(header), n * sizeof(int));
        for (size_t i = 0; i < n; i++) {
            if (count < max) {
                fds[count++] = delivered[i];
            } else {
                close(delivered[i]);
                overflow = 1;
            }
        }
    }
    if (overflow || (message.msg_flags & MSG_CTRUNC)) {
        for (int i = 0; i < count; i++) close(fds[i]);
        return -EMSGSIZE;
    }
    return count;
}
