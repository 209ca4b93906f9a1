import Logging

/// One log event on its way to a destination.
public struct LogRecord: Sendable {
    public let level: Logger.Level
    public let message: String
    /// Structured fields (`backend`, `client`, `event`) for destinations that keep them.
    public let metadata: Logger.Metadata

    public init(level: Logger.Level, message: String, metadata: Logger.Metadata = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

/// Where log records go. Each destination is one kind of sink; exactly one is in use.
public protocol LogSink: Sendable {
    func write(_ record: LogRecord)
    /// Reopens the destination after log rotation (SIGHUP). Sinks without a file do nothing.
    func reopen() throws
}

extension LogSink {
    public func reopen() throws {}
}
