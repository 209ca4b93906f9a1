import NIOConcurrencyHelpers

/// A value behind a lock: `Synchronization.Mutex`'s `withLock`, on a pthread mutex.
///
/// Not `Mutex` itself: on Linux its contended path (a spin, then FUTEX_LOCK_PI, in the
/// standard library, which is not built for ThreadSanitizer) hands the lock over where
/// ThreadSanitizer cannot see it, so two holders of one Mutex are reported as a race
/// (Scripts/sanitize.sh thread). ThreadSanitizer intercepts pthread_mutex_lock and unlock, and
/// sees every hand-over of this lock.
package final class Locked<Value>: @unchecked Sendable {
    private let lock = NIOLock()
    private var value: Value

    package init(_ value: consuming sending Value) {
        self.value = value
    }

    package func withLock<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
