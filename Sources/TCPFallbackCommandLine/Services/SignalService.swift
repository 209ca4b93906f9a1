import Logging
import ServiceLifecycle
import TCPFallback
import UnixSignals

/// The signals: SIGHUP reloads (reopens the log, re-reads `-config`), SIGUSR1 logs the stats,
/// SIGUSR2 writes the profile so far; SIGTERM and SIGINT end this service, and its end shuts
/// the whole group down, in reverse order of the list. The signals are trapped before the
/// listeners open, so none that comes during start-up is lost.
struct SignalService: Service {
    let signals: UnixSignalsSequence
    let logger: Logger
    let hangUp: @Sendable () async -> Void
    let logStats: @Sendable () async -> Void
    let writeProfile: @Sendable () -> Void
    let stopping: @Sendable () -> Void

    func run() async throws {
        for await signal in signals.cancelOnGracefulShutdown() {
            switch signal {
            case .sighup:
                await hangUp()
            case .sigusr1:
                await logStats()
            case .sigusr2:
                writeProfile()
            default:
                stopping()
                logger.notice("received \(signal), shutting down", metadata: ["event": "shutdown"])
                return
            }
        }
    }
}
