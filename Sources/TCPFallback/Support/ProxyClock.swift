/// Monotonic time and sleeping, injectable so that tests of probe delays and stats intervals
/// can move time forward instead of waiting for it.
public protocol ProxyClock: Sendable {
    /// Time since an arbitrary fixed origin; only differences mean anything.
    var now: Duration { get }
    /// Suspends for `duration`; throws `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The real clock: `ContinuousClock`, which keeps counting while the machine is suspended.
public struct SystemClock: ProxyClock {
    private static let origin = ContinuousClock.now

    public init() {}

    public var now: Duration { Self.origin.duration(to: .now) }

    public func sleep(for duration: Duration) async throws {
        try await ContinuousClock().sleep(for: duration)
    }
}
