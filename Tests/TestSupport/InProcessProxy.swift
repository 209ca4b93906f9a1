import Logging
import Synchronization
import TCPFallback

/// Collects log lines so tests can check what an operator would read.
public final class LogCapture: LogSink {
    private let lines = Locked<[String]>([])

    public init() {}

    public func write(_ record: LogRecord) {
        lines.withLock { $0.append("\(record.level) \(record.message)") }
    }

    public var all: [String] { lines.withLock { $0 } }

    public func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }

    public var logger: Logger {
        Logger(label: "test") { _ in SinkLogHandler(sink: self, level: .debug) }
    }
}

/// Runs `body` against a proxy started in this process on 127.0.0.1 with a kernel-chosen
/// port, and shuts the proxy down afterwards whatever happens.
public func withProxy(
    backends: [Int],
    timeout: Duration = .seconds(2),
    probeDelay: Duration? = .seconds(30),
    clock: any ProxyClock = SystemClock(),
    log: LogCapture = LogCapture(),
    configure: (inout ProxyConfiguration) -> Void = { _ in },
    _ body: (TCPFallbackProxy, Int) async throws -> Void
) async throws {
    var configuration = ProxyConfiguration(
        listen: Endpoint(host: "127.0.0.1", port: 0),
        backends: backends.map { Endpoint(host: "127.0.0.1", port: $0) },
        connectTimeout: timeout,
        probeDelay: probeDelay,
        statsInterval: nil,
        eventLoopThreads: 2,
        shutdownGrace: .zero)
    configure(&configuration)
    let proxy = TCPFallbackProxy(configuration: configuration, logger: log.logger, clock: clock)
    let address = try await proxy.start()
    do {
        try await body(proxy, address.port!)
    } catch {
        await proxy.shutdown(grace: .zero)
        throw error
    }
    await proxy.shutdown(grace: .zero)
}

extension TestSocket {
    /// Connects to the proxy and reads what a `TestServer.naming` backend says.
    public static func backendName(viaProxyAt port: Int, host: String = "127.0.0.1") throws -> String {
        let socket = try TestSocket.connect(host: host, port: port)
        defer { socket.close() }
        return String(decoding: try socket.receiveToEnd(), as: UTF8.self)
    }
}
