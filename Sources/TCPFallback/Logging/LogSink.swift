/// Where finished log lines go. Each destination is one kind of sink; exactly one is in use.
public protocol LogSink: Sendable {
    /// Writes one formatted line (without its trailing newline) at `level`.
    func write(_ line: String, level: LogLevelName)
    /// Reopens the destination after log rotation (SIGHUP). Sinks without a file do nothing.
    func reopen() throws
}

extension LogSink {
    public func reopen() throws {}
}

/// The swift-log level, re-exported so sinks need not import Logging for one enum.
public typealias LogLevelName = Logging.Logger.Level

import Logging
