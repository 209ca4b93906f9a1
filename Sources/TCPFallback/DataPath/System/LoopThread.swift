import CDataPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A named OS thread for one data loop: the loop blocks in epoll_wait, which has no place on
/// Swift's cooperative thread pool.
///
/// Contract: the body is retained until it returns; `join` is called at most once per thread.
struct LoopThread: Sendable {
    private let thread: pthread_t

    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts `body` on a new thread called `name` (at most 15 bytes show).
    init(name: String, _ body: @escaping @Sendable () -> Void) throws(SocketError) {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            tf_name_thread(start.name)
            start.body()
            return nil
        }, start)
        guard result == 0 else {
            Unmanaged<Start>.fromOpaque(start).release()
            throw SocketError(errno: result, operation: "pthread_create")
        }
        self.thread = thread
    }

    /// Lets the thread end on its own, its resources freed then (nobody joins it).
    func detach() {
        _ = pthread_detach(thread)
    }

    /// Waits for the thread to end.
    func join() {
        _ = pthread_join(thread, nil)
    }
}
