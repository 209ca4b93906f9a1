#define _GNU_SOURCE
#include "cprofiler.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

typedef struct {
    atomic_int ready;
    int depth;
    uintptr_t pcs[TF_PROFILER_MAX_DEPTH];
} sample_t;

static sample_t *samples;
static size_t sample_capacity;
static atomic_size_t next_sample;
static atomic_size_t dropped_samples;
static atomic_int enabled;
static atomic_int handlers_running;
static struct itimerval timer;
static struct sigaction previous_action;
static pid_t self_pid;

/// Reads the two words of a frame record at `address` (saved frame pointer, return address)
/// with one system call that fails instead of faulting: 0 on success.
static int read_frame(uintptr_t address, uintptr_t frame[2]) {
    struct iovec local = {frame, 2 * sizeof(uintptr_t)};
    struct iovec remote = {(void *)address, 2 * sizeof(uintptr_t)};
    return process_vm_readv(self_pid, &local, 1, &remote, 1, 0) == (ssize_t)(2 * sizeof(uintptr_t)) ? 0 : -1;
}

static void on_sigprof(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)info;
    int saved_errno = errno;
    atomic_fetch_add(&handlers_running, 1);
    if (!atomic_load(&enabled)) goto done;
    size_t index = atomic_fetch_add(&next_sample, 1);
    if (index >= sample_capacity) {
        atomic_fetch_add(&dropped_samples, 1);
        goto done;
    }
    sample_t *sample = &samples[index];
    ucontext_t *uc = (ucontext_t *)context;
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.regs[29];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.sp;
#else
    uintptr_t pc = 0, fp = 0, sp = 0;
#endif
    int depth = 0;
    sample->pcs[depth++] = pc;
    // Each frame: [fp] = caller's fp, [fp + 8] = return address. Frames grow upwards from
    // sp; stop at anything that does not look like the next frame.
    uintptr_t low = sp;
    while (depth < TF_PROFILER_MAX_DEPTH && fp >= low && fp - sp < (64u << 20) && (fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t frame[2];
        if (read_frame(fp, frame) != 0) break;
        uintptr_t caller_fp = frame[0], return_address = frame[1];
        if (return_address == 0) break;
        sample->pcs[depth++] = return_address;
        if (caller_fp <= fp) break;
        low = fp + 2 * sizeof(uintptr_t);
        fp = caller_fp;
    }
    sample->depth = depth;
    atomic_store_explicit(&sample->ready, 1, memory_order_release);
done:
    atomic_fetch_sub(&handlers_running, 1);
    errno = saved_errno;
}

static void wait_for_handlers(void) {
    struct timespec pause = {0, 100000};
    while (atomic_load(&handlers_running) > 0) nanosleep(&pause, NULL);
}

static void set_timer(int on) {
    struct itimerval off;
    memset(&off, 0, sizeof(off));
    setitimer(ITIMER_PROF, on ? &timer : &off, NULL);
}

int tf_profiler_start(int hz, size_t capacity) {
    if (hz <= 0 || hz > 1000 || capacity == 0) return -EINVAL;
    if (atomic_load(&enabled)) return -EALREADY;
    sample_t *buffer = calloc(capacity, sizeof(sample_t));
    if (buffer == NULL) return -ENOMEM;
    free(samples);
    samples = buffer;
    sample_capacity = capacity;
    atomic_store(&next_sample, 0);
    atomic_store(&dropped_samples, 0);
    self_pid = getpid();

    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = on_sigprof;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGPROF, &action, &previous_action) != 0) return -errno;

    long interval = 1000000L / hz;
    timer.it_interval.tv_sec = interval / 1000000L;
    timer.it_interval.tv_usec = interval % 1000000L;
    timer.it_value = timer.it_interval;
    atomic_store(&enabled, 1);
    set_timer(1);
    return 0;
}

void tf_profiler_stop(void) {
    if (!atomic_load(&enabled)) return;
    set_timer(0);
    atomic_store(&enabled, 0);
    wait_for_handlers();
    sigaction(SIGPROF, &previous_action, NULL);
}

size_t tf_profiler_collect_capacity(void) {
    return sample_capacity * (TF_PROFILER_MAX_DEPTH + 1);
}

size_t tf_profiler_collect(uintptr_t *out, size_t out_words, size_t *dropped) {
    int was_enabled = atomic_load(&enabled);
    if (was_enabled) {
        set_timer(0);
        atomic_store(&enabled, 0);
        wait_for_handlers();
    }
    size_t taken = atomic_load(&next_sample);
    if (taken > sample_capacity) taken = sample_capacity;
    size_t written = 0;
    for (size_t index = 0; index < taken && samples != NULL; index++) {
        sample_t *sample = &samples[index];
        if (!atomic_load_explicit(&sample->ready, memory_order_acquire)) continue;
        if (written + 1 + (size_t)sample->depth > out_words) break;
        out[written++] = (uintptr_t)sample->depth;
        memcpy(&out[written], sample->pcs, (size_t)sample->depth * sizeof(uintptr_t));
        written += (size_t)sample->depth;
        atomic_store(&sample->ready, 0);
    }
    if (dropped) *dropped = atomic_exchange(&dropped_samples, 0);
    atomic_store(&next_sample, 0);
    if (was_enabled) {
        atomic_store(&enabled, 1);
        set_timer(1);
    }
    return written;
}
