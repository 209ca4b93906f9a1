import ServiceLifecycle

/// Work that goes on until shutdown: systemd's status, the periodic stats lines.
struct RepeatingService: Service, CustomStringConvertible {
    let description: String
    let work: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown { await work() }
    }
}
