import ServiceLifecycle
import TCPFallback

/// The listeners, their loops and their checks, started before the group runs: at shutdown
/// (the last service to go) they stop accepting, let open connections finish within the
/// grace, and stop; so do the listeners a reload took out that are still finishing.
struct ListenersService: Service {
    let listeners: ListenerSet
    let grace: Duration
    let reloader: ConfigurationReloader?

    func run() async throws {
        try? await gracefulShutdown()
        // A reload in progress finishes first, and none starts after: the set is final.
        await reloader?.stopReloading()
        await withDiscardingTaskGroup { group in
            for entry in listeners.all {
                group.addTask { await entry.proxy.shutdown(grace: grace) }
            }
        }
        await reloader?.finishRetiring()
    }
}
