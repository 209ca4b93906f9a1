import NIOCore
import Synchronization

/// Pings the systemd watchdog at half its interval, but only while every event loop is
/// alive: each ping round asks every loop to check in, and the next ping goes out only if
/// all of them did. A loop that hangs stops the pings, and systemd restarts the service.
public final class Watchdog: Sendable {
    private let loops: [any WatchedLoop]
    private let timer: any EventLoop
    private let period: TimeAmount
    private let ping: @Sendable () -> Void
    /// Round in which each loop last checked in.
    private let checkIns: Locked<[Int]>
    private let round = Locked(0)
    private let task = Locked<RepeatedTask?>(nil)

    /// - Parameters:
    ///   - interval: the watchdog interval (`WATCHDOG_USEC`); pings go out every half of it.
    ///   - ping: sends `WATCHDOG=1`.
    public convenience init(group: any EventLoopGroup, interval: Duration, ping: @escaping @Sendable () -> Void) {
        self.init(loops: group.makeIterator().map { NIOWatchedLoop(loop: $0) }, timer: group.next(), interval: interval, ping: ping)
    }

    /// - Parameters:
    ///   - loops: every loop that must check in (the proxy's `watchedLoops`).
    ///   - timer: where the pings are scheduled.
    public init(loops: [any WatchedLoop], timer: any EventLoop, interval: Duration, ping: @escaping @Sendable () -> Void) {
        self.loops = loops
        self.timer = timer
        self.period = TimeAmount(interval / 2)
        self.ping = ping
        self.checkIns = Locked(Array(repeating: 0, count: loops.count))
    }

    public func start() {
        guard !loops.isEmpty else { return }
        let scheduled = timer.scheduleRepeatedTask(initialDelay: .zero, delay: period) { [self] _ in
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
            loop.checkIn { [self] in
                checkIns.withLock { $0[index] = current }
            }
        }
    }
}

/// A thread the watchdog hears from: it runs a check-in closure when it is not stuck.
public protocol WatchedLoop: Sendable {
    /// Runs `work` on the loop's own thread, soon.
    func checkIn(_ work: @escaping @Sendable () -> Void)
}

/// A SwiftNIO event loop as a `WatchedLoop`.
public struct NIOWatchedLoop: WatchedLoop {
    let loop: any EventLoop

    public init(loop: any EventLoop) { self.loop = loop }

    public func checkIn(_ work: @escaping @Sendable () -> Void) { loop.execute(work) }
}

extension DataLoop: WatchedLoop {
    func checkIn(_ work: @escaping @Sendable () -> Void) { mailbox.post(.run(work)) }
}
