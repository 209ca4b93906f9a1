import NIOCore
import Synchronization

/// Pings the systemd watchdog at half its interval, but only while every event loop is
/// alive: each ping round asks every loop to check in, and the next ping goes out only if
/// all of them did. A loop that hangs stops the pings, and systemd restarts the service.
public final class Watchdog: Sendable {
    /// The loops that must check in, asked anew each round: a reload adds and removes listeners.
    private let loops: @Sendable () -> [any WatchedLoop]
    private let timer: any EventLoop
    private let period: TimeAmount
    private let ping: @Sendable () -> Void
    private let state = Locked(RoundState())
    private let task = Locked<RepeatedTask?>(nil)

    /// The current round and the loops that have not checked in for it yet.
    private struct RoundState {
        var round = 0
        var outstanding: Set<ObjectIdentifier> = []
    }

    /// - Parameters:
    ///   - interval: the watchdog interval (`WATCHDOG_USEC`); pings go out every half of it.
    ///   - ping: sends `WATCHDOG=1`.
    public convenience init(group: any EventLoopGroup, interval: Duration, ping: @escaping @Sendable () -> Void) {
        let loops: [any WatchedLoop] = group.makeIterator().map { NIOWatchedLoop(loop: $0) }
        self.init(loops: { loops }, timer: group.next(), interval: interval, ping: ping)
    }

    /// - Parameters:
    ///   - loops: every loop that must check in now (the listeners' `watchedLoops`).
    ///   - timer: where the pings are scheduled.
    public init(loops: @escaping @Sendable () -> [any WatchedLoop], timer: any EventLoop, interval: Duration, ping: @escaping @Sendable () -> Void) {
        self.loops = loops
        self.timer = timer
        self.period = TimeAmount(interval / 2)
        self.ping = ping
    }

    public func start() {
        let scheduled = timer.scheduleRepeatedTask(initialDelay: .zero, delay: period) { [self] _ in
            tick()
        }
        task.withLock { $0 = scheduled }
    }

    public func stop() {
        task.withLock { $0?.cancel() }
    }

    private func tick() {
        let loops = loops()
        let present = Set(loops.map(\.identity))
        // Round 0 has no check-ins to look at yet; afterwards every loop of the previous round
        // that still runs must have answered it (a loop of a listener removed meanwhile does
        // not count: it stopped on purpose).
        let (current, allAlive) = state.withLock { state -> (Int, Bool) in
            let alive = state.round == 0 || state.outstanding.isDisjoint(with: present)
            state.round += 1
            state.outstanding = present
            return (state.round, alive)
        }
        if allAlive { ping() }
        for loop in loops {
            let identity = loop.identity
            loop.checkIn { [self] in
                state.withLock { state in
                    if state.round == current { state.outstanding.remove(identity) }
                }
            }
        }
    }
}

/// A thread the watchdog hears from: it runs a check-in closure when it is not stuck.
public protocol WatchedLoop: Sendable {
    /// Runs `work` on the loop's own thread, soon.
    func checkIn(_ work: @escaping @Sendable () -> Void)
    /// Tells this loop from the others across rounds.
    var identity: ObjectIdentifier { get }
}

/// A SwiftNIO event loop as a `WatchedLoop`.
public struct NIOWatchedLoop: WatchedLoop {
    let loop: any EventLoop

    public init(loop: any EventLoop) { self.loop = loop }

    public func checkIn(_ work: @escaping @Sendable () -> Void) { loop.execute(work) }

    public var identity: ObjectIdentifier { ObjectIdentifier(loop) }
}

extension DataLoop: WatchedLoop {
    func checkIn(_ work: @escaping @Sendable () -> Void) { mailbox.post(.run(work)) }

    var identity: ObjectIdentifier { ObjectIdentifier(self) }
}
