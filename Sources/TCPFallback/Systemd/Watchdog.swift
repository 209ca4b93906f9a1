import NIOCore
import Synchronization

/// Pings the systemd watchdog at half its interval, but only while every event loop is
/// alive: each ping round asks every loop to check in, and the next ping goes out only if
/// all of them did. A loop that hangs stops the pings, and systemd restarts the service.
public final class Watchdog: Sendable {
    private let loops: [any EventLoop]
    private let period: TimeAmount
    private let ping: @Sendable () -> Void
    /// Round in which each loop last checked in.
    private let checkIns: Mutex<[Int]>
    private let round = Mutex(0)
    private let task = Mutex<RepeatedTask?>(nil)

    /// - Parameters:
    ///   - interval: the watchdog interval (`WATCHDOG_USEC`); pings go out every half of it.
    ///   - ping: sends `WATCHDOG=1`.
    public init(group: any EventLoopGroup, interval: Duration, ping: @escaping @Sendable () -> Void) {
        self.loops = Array(group.makeIterator())
        self.period = TimeAmount(interval / 2)
        self.ping = ping
        self.checkIns = Mutex(Array(repeating: 0, count: loops.count))
    }

    public func start() {
        guard let first = loops.first else { return }
        let scheduled = first.scheduleRepeatedTask(initialDelay: .zero, delay: period) { [self] _ in
            tick()
        }
        task.withLock { $0 = scheduled }
    }

    public func stop() {
        task.withLock { $0?.cancel() }
    }

    private func tick() {
        let current = round.withLock { value -> Int in
            defer { value += 1 }
            return value
        }
        // Round 0 has no check-ins to look at yet; afterwards all loops must have answered
        // the previous round.
        let allAlive = current == 0 || checkIns.withLock { $0.allSatisfy { $0 == current - 1 } }
        if allAlive { ping() }
        for (index, loop) in loops.enumerated() {
            loop.execute { [self] in
                checkIns.withLock { $0[index] = current }
            }
        }
    }
}
