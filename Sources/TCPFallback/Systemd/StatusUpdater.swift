import Synchronization

/// Keeps systemd's `STATUS=` current: at once when a backend changes state, and every
/// couple of seconds for the connection count, sending only when the text changed.
public final class StatusUpdater: Sendable {
    private let listeners: ListenerSet
    private let notifier: SystemdNotifier
    private let interval: Duration
    private let lastSent = Locked<String?>(nil)

    public init(listeners: ListenerSet, notifier: SystemdNotifier, interval: Duration = .seconds(2)) {
        self.listeners = listeners
        self.notifier = notifier
        self.interval = interval
    }

    /// The status line as it stands.
    public var current: String {
        let all = listeners.all
        if !listeners.isNamed, let only = all.first, all.count == 1 {
            return ServiceStatus.describe(only.proxy.registry.snapshot, openConnections: only.proxy.counters.values.openClientConnections)
        }
        return ServiceStatus.describe(all.map { ($0.name, $0.proxy.registry.snapshot) }, openConnections: listeners.openClientConnections)
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

    /// Follows backend events and the clock until cancelled. Events are followed on the
    /// listeners there are at the start; those a reload adds are seen within `interval`.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for entry in listeners.all {
                let events = await entry.proxy.registry.events()
                group.addTask {
                    for await _ in events { self.update() }
                }
            }
            group.addTask {
                while (try? await Task.sleep(for: self.interval)) != nil { self.update() }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
