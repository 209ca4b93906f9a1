import Synchronization

/// Keeps systemd's `STATUS=` current: at once when a backend changes state, and every
/// couple of seconds for the connection count, sending only when the text changed.
public final class StatusUpdater: Sendable {
    private let proxy: TCPFallbackProxy
    private let notifier: SystemdNotifier
    private let interval: Duration
    private let lastSent = Locked<String?>(nil)

    public init(proxy: TCPFallbackProxy, notifier: SystemdNotifier, interval: Duration = .seconds(2)) {
        self.proxy = proxy
        self.notifier = notifier
        self.interval = interval
    }

    /// The status line as it stands.
    public var current: String {
        ServiceStatus.describe(proxy.registry.snapshot, openConnections: proxy.counters.values.openClientConnections)
    }

    /// Sends the status if it differs from the last one sent.
    public func update() {
        let text = current
        let changed = lastSent.withLock { last -> Bool in
            defer { last = text }
            return last != text
        }
        if changed { notifier.status(text) }
    }

    /// Follows backend events and the clock until cancelled.
    public func run() async {
        let events = await proxy.registry.events()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in events { self.update() }
            }
            group.addTask {
                while (try? await Task.sleep(for: self.interval)) != nil { self.update() }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
