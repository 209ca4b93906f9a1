import Logging

/// Logs one line per backend (and one for the listener): periodically, and on demand (SIGUSR1).
public struct StatsReporter: Sendable {
    let registry: BackendRegistry
    let counters: ProxyCounters
    /// `-maxconn`, shown beside the open connections.
    let maxConnections: Int?
    let logger: Logger

    public init(proxy: TCPFallbackProxy, logger: Logger) {
        self.registry = proxy.registry
        self.counters = proxy.counters
        self.maxConnections = proxy.configuration.maxConnections
        self.logger = logger
    }

    /// The stats lines as they would be logged now.
    public func lines() async -> [String] {
        let listener = counters.values
        let limit = maxConnections.map { " (limit \($0), reached \(listener.maxConnectionsReached) times)" } ?? ""
        let refusing = registry.snapshot.refusalReason.map { ", refusing new clients: \($0)" } ?? ""
        var lines = [
            "stats listener: \(listener.acceptedConnections) accepted, \(listener.openClientConnections) open\(limit), \(listener.acceptErrors) accept errors\(refusing)"
        ]
        for report in await registry.reports() {
            let c = report.counters
            var line =
                "stats backend \(report.backend): \(report.health)\(report.conditions.map { " (\($0))" }.joined()), downtime \(GoDuration.formatApproximately(report.downtime)), "
                + "\(c.connectionsTotal) connections (\(c.activeConnections) active), "
                + "\(c.bytesFromClient) bytes from client, \(c.bytesToClient) bytes to client, \(c.connectErrors) connect errors, "
            line += report.sinceLastChange.map { "last change \(GoDuration.formatApproximately($0)) ago" } ?? "no change"
            if let server = report.server { line += ", server \(server)" }
            if let error = report.lastError { line += ", last error: \(error)" }
            lines.append(line)
        }
        return lines
    }

    public func log() async {
        for line in await lines() {
            logger.info("\(line)", metadata: ["event": "stats"])
        }
    }

    /// Logs every `interval` until the task is cancelled.
    public func run(every interval: Duration, clock: any ProxyClock = SystemClock()) async {
        while true {
            do { try await clock.sleep(for: interval) } catch { return }
            await log()
        }
    }
}
