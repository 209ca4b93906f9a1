/// Raw memory of the data path: each loop's scratch buffer and its pool of blocks for bytes a
/// peer could not take yet.
///
/// Invariants: a block is `BlockPool.blockSize` bytes, allocated by a pool and owned by
/// exactly one holder at a time (the pool's free list or one `HeldBytes`); it is used and
/// freed only on its loop's thread. `HeldBytes` never reads past `end` or before `start`.

/// Blocks of one size for one loop, kept for reuse up to a bound, so a busy loop does not go
/// to the allocator for every stalled write and an idle one gives memory back.
final class BlockPool {
    static let blockSize = 64 * 1024
    /// Free blocks kept beyond this many are freed.
    private let keep: Int
    private var free: [UnsafeMutableRawPointer] = []

    init(keep: Int = 32) {
        self.keep = keep
    }

    func take() -> UnsafeMutableRawPointer {
        free.popLast() ?? UnsafeMutableRawPointer.allocate(byteCount: Self.blockSize, alignment: 16)
    }

    func give(_ block: UnsafeMutableRawPointer) {
        if free.count < keep {
            free.append(block)
        } else {
            block.deallocate()
        }
    }

    deinit {
        for block in free { block.deallocate() }
    }
}

/// The buffer every read of a loop goes into: bytes are written on to the peer straight from
/// here, so an idle connection holds no buffer of its own.
struct ScratchBuffer {
    let bytes: UnsafeMutableRawBufferPointer

    init(size: Int = BlockPool.blockSize) {
        bytes = .allocate(byteCount: size, alignment: 16)
    }

    func deallocate() { bytes.deallocate() }
}

/// Bytes read from one side that the other side could not take yet: at most one block.
struct HeldBytes {
    private var block: UnsafeMutableRawPointer?
    private var start = 0
    private var end = 0

    var isEmpty: Bool { block == nil }

    /// Keeps `bytes` (at most a block), taking a block from `pool`. Only when empty.
    mutating func hold(_ bytes: UnsafeRawBufferPointer, pool: BlockPool) {
        precondition(block == nil && bytes.count <= BlockPool.blockSize && !bytes.isEmpty)
        let taken = pool.take()
        taken.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        block = taken
        start = 0
        end = bytes.count
    }

    /// Writes what is held to `fd`; once all of it is gone the block goes back to `pool`.
    mutating func flush(to fd: Int32, pool: BlockPool) -> IOOutcome {
        guard let block else { return .transferred(0) }
        let outcome = SocketCalls.write(fd, from: UnsafeRawBufferPointer(start: block + start, count: end - start))
        if case .transferred(let written) = outcome {
            start += written
            if start == end { release(to: pool) }
        }
        return outcome
    }

    /// Drops what is held (the connection is closing).
    mutating func release(to pool: BlockPool) {
        guard let taken = block else { return }
        pool.give(taken)
        block = nil
        start = 0
        end = 0
    }
}
