// A sampling CPU profiler: SIGPROF from setitimer(ITIMER_PROF) interrupts whichever thread is
// using CPU, and the handler records that thread's stack (program counter, then return
// addresses found by walking frame pointers) into memory allocated before sampling starts.
// The handler allocates nothing and takes no lock; memory it reads is read with
// process_vm_readv, which fails instead of faulting on a bad frame pointer.
#ifndef TCP_FALLBACK_CPROFILER_H
#define TCP_FALLBACK_CPROFILER_H

#include <stddef.h>
#include <stdint.h>

/// Deepest stack recorded; deeper frames are cut off.
#define TF_PROFILER_MAX_DEPTH 64

/// Allocates room for `capacity` samples, installs the handler and starts the timer at `hz`
/// samples per CPU-second. Returns 0, or -errno.
int tf_profiler_start(int hz, size_t capacity);

/// Stops the timer and waits for running handlers; the samples stay until the next start.
void tf_profiler_stop(void);

/// Pauses sampling, copies the samples taken since the last call into `out` (each sample is
/// its depth followed by that many addresses, leaf first), forgets them, and resumes.
/// Returns the number of words written; `*dropped` gets how many samples did not fit.
size_t tf_profiler_collect(uintptr_t *out, size_t out_words, size_t *dropped);

/// Room `tf_profiler_collect` needs at most, in words.
size_t tf_profiler_collect_capacity(void);

#endif
