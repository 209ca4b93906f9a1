/// The delays between attempts to reach a service that failed: from `initial`, doubling up to
/// `maximum`, each spread by ±20% so tens of proxies that lost etcd together do not come
/// back in step. `reset()` after a success.
struct ReconnectBackoff: Sendable {
    let initial: Duration
    let maximum: Duration
    private var next: Duration

    init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
        self.next = initial
    }

    /// The delay before the next attempt.
    mutating func delay() -> Duration {
        let base = next
        next = min(next * 2, maximum)
        return base * Double.random(in: 0.8...1.2)
    }

    mutating func reset() { next = initial }
}
