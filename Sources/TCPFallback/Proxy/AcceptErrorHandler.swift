import Logging
import NIOCore

/// Sits on the listening channel behind NIO's `AcceptBackoffHandler`: counts accept errors
/// (EMFILE, ENFILE, ...) and logs at most one line a second about them, so running out of
/// descriptors neither floods the log nor stops the listener.
final class AcceptErrorHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel

    private let counters: ProxyCounters
    private let logger: Logger
    private var lastLog: NIODeadline?
    private var suppressed = 0

    init(counters: ProxyCounters, logger: Logger) {
        self.counters = counters
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        counters.acceptErrors.add(1, ordering: .relaxed)
        let now = NIODeadline.now()
        if let lastLog, now - lastLog < .seconds(1) {
            suppressed += 1
            return
        }
        let more = suppressed > 0 ? " (\(suppressed) more since the last report)" : ""
        logger.error("accept failed: \(ConnectFailure.describe(error)); backing off\(more)", metadata: ["event": "accept_error"])
        lastLog = now
        suppressed = 0
    }
}
