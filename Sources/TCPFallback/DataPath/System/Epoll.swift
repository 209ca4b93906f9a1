import CDataPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One epoll instance, owned by one data loop.
///
/// Contract: `close()` is called once, after which no other method is. Descriptors added
/// stay in the set until they are closed (closing removes them; nothing here duplicates
/// descriptors, so a close always does).
struct Epoll {
    let fd: Int32

    /// Events a relayed socket is registered for, once and for good: readable, writable,
    /// peer half-closed; edge-triggered, so each change of state is reported once.
    static let streamEvents = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
    /// A listening socket of our own: a new connection wakes the loop (edge-triggered).
    static let listenerEvents = EPOLLIN.rawValue | EPOLLET.rawValue
    /// A listening socket shared by every loop (from systemd): EPOLLEXCLUSIVE wakes one loop
    /// per new connection instead of all of them.
    static let sharedListenerEvents = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue

    static let readable = EPOLLIN.rawValue
    static let writable = EPOLLOUT.rawValue
    static let peerHalfClosed = EPOLLRDHUP.rawValue
    static let error = EPOLLERR.rawValue
    static let hangUp = EPOLLHUP.rawValue

    init() throws(SocketError) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw SocketError(errno: errno, operation: "epoll_create1") }
        self.fd = fd
    }

    /// Adds `descriptor`; `key` comes back with each of its events. Returns 0 or errno.
    func add(_ descriptor: Int32, events: UInt32, key: UInt64) -> Int32 {
        var event = epoll_event(events: events, data: epoll_data_t(u64: key))
        return epoll_ctl(fd, EPOLL_CTL_ADD, descriptor, &event) == 0 ? 0 : errno
    }

    /// Removes `descriptor` (only for sockets that stay open after the loop lets go of them).
    func remove(_ descriptor: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(fd, EPOLL_CTL_DEL, descriptor, &event)
    }

    /// Waits up to `timeout` milliseconds (-1: no limit) and returns how many events are in
    /// `events`; 0 on timeout or interruption.
    func wait(into events: UnsafeMutableBufferPointer<epoll_event>, timeout: Int32) -> Int {
        let count = epoll_wait(fd, events.baseAddress, Int32(events.count), timeout)
        return count < 0 ? 0 : Int(count)
    }

    func close() {
        _ = Glibc.close(fd)
    }
}

/// An eventfd that wakes a loop from another thread (its mailbox has commands).
///
/// Contract: `signal` may be called from any thread until `close`; `drain` only by the loop.
struct WakeSignal: Sendable {
    let fd: Int32

    init() throws(SocketError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard fd >= 0 else { throw SocketError(errno: errno, operation: "eventfd") }
        self.fd = fd
    }

    func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    /// Resets the counter so the next `signal` is a new edge.
    func drain() {
        var value: UInt64 = 0
        _ = Glibc.read(fd, &value, 8)
    }

    func close() {
        _ = Glibc.close(fd)
    }
}
