import ServiceLifecycle

/// A part that was opened before the group runs (the control socket, the metrics endpoint,
/// the watchdog) and only has to be closed at shutdown.
struct CloseOnShutdown: Service, CustomStringConvertible {
    let description: String
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
