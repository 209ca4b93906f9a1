import Logging

/// Logs one line per listener and one per backend: periodically, and on demand (SIGUSR1).
/// With named listeners (`-config`), each line names its listener.
public struct StatsReporter: Sendable {
    let listeners: ListenerSet
    let logger: Logger

    public init(listeners: ListenerSet, logger: Logger) {
        self.listeners = listeners
        self.logger = logger
    }

    /// The stats lines as they would be logged now.
    public func lines() async -> [String] {
        var lines: [String] = []
        for entry in listeners.all {
            lines += await Self.lines(of: entry.proxy, named: listeners.isNamed ? entry.name : nil)
        }
        return lines
    }

    private static func lines(of proxy: TCPFallbackProxy, named name: String?) async -> [String] {
        let listener = proxy.counters.values
        let limit = proxy.configuration.maxConnections.map { " (limit \($0), reached \(listener.maxConnectionsReached) times)" } ?? ""
        let refusing = proxy.registry.snapshot.refusalReason.map { ", refusing new clients: \($0)" } ?? ""
        var lines = [
            "stats listener\(name.map { " \($0)" } ?? ""): \(listener.acceptedConnections) accepted, \(listener.openClientConnections) open\(limit), \(listener.acceptErrors) accept errors\(refusing)"
        ]
        let prefix = name.map { "\($0)/" } ?? ""
        for report in await proxy.registry.reports() {
            let c = report.counters
            var line =
                "stats backend \(prefix)\(report.backend): \(report.health)\(report.conditions.map { " (\($0))" }.joined()), downtime \(GoDuration.formatApproximately(report.downtime)), "
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
