import CDataPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pipe that carries one direction of a bulk transfer inside the kernel: the source socket
/// is spliced into `writeFD` and `readFD` is spliced on to the destination socket, so the bytes
/// are never copied to user space.
struct Pipe {
    let readFD: Int32
    let writeFD: Int32
}

/// The pipes of one loop, kept for reuse up to a bound.
///
/// Invariants: a pipe is owned by exactly one holder at a time (this pool's free list or one
/// `Session.Flow`) and used only on its loop's thread; a pipe is given back only when empty,
/// so a taken pipe never holds another session's bytes. One that still holds bytes is
/// `discard`ed: both ends are closed. Both ends are non-blocking and close-on-exec.
final class PipePool {
    /// What one splice moves at most: the default pipe capacity (16 pages).
    static let capacity = 64 * 1024
    /// Free pipes kept beyond this many are closed.
    private let keep: Int
    private var free: [Pipe] = []

    init(keep: Int = 16) {
        self.keep = keep
    }

    /// A free pipe, or a new one; nil when none can be made (the descriptor limit): the
    /// caller then copies through user space instead.
    func take() -> Pipe? {
        if let pipe = free.popLast() { return pipe }
        var fds: [Int32] = [-1, -1]
        guard tf_pipe(&fds) == 0 else { return nil }
        return Pipe(readFD: fds[0], writeFD: fds[1])
    }

    /// Takes back a pipe that holds no bytes.
    func give(_ pipe: Pipe) {
        if free.count < keep { free.append(pipe) } else { discard(pipe) }
    }

    /// Closes a pipe that may still hold bytes (its session ended before they were sent).
    func discard(_ pipe: Pipe) {
        _ = Glibc.close(pipe.readFD)
        _ = Glibc.close(pipe.writeFD)
    }

    deinit {
        for pipe in free { discard(pipe) }
    }
}
