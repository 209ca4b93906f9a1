/// The deadlines of one loop's sessions, soonest first: a binary heap in which each session
/// has at most one entry and knows where it is, so that replacing or cancelling a deadline
/// costs O(log n) and a finished connection leaves nothing behind.
struct TimerQueue {
    private var heap: [Session] = []

    /// The soonest deadline, if any.
    var nextDeadline: UInt64? { heap.first?.deadline }

    /// Sets (or moves) `session`'s deadline.
    mutating func schedule(_ session: Session, at deadline: UInt64) {
        if session.timerIndex >= 0 { remove(session) }
        session.deadline = deadline
        session.timerIndex = heap.count
        heap.append(session)
        siftUp(heap.count - 1)
    }

    /// Removes `session`'s deadline, if it has one.
    mutating func cancel(_ session: Session) {
        if session.timerIndex >= 0 { remove(session) }
    }

    /// Takes the soonest session whose deadline is at or before `now`.
    mutating func popExpired(now: UInt64) -> Session? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        remove(first)
        return first
    }

    private mutating func remove(_ session: Session) {
        let index = session.timerIndex
        session.timerIndex = -1
        let last = heap.removeLast()
        guard index < heap.count else { return }
        heap[index] = last
        last.timerIndex = index
        siftDown(index)
        siftUp(last.timerIndex)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count && heap[left + 1].deadline < heap[left].deadline { smallest = left + 1 }
            guard heap[smallest].deadline < heap[parent].deadline else { return }
            swapAt(parent, smallest)
            parent = smallest
        }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        heap[a].timerIndex = a
        heap[b].timerIndex = b
    }
}
