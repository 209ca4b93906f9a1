import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that formats one line per event and hands it to a `LogSink`:
/// `2026-11-22T00:54:30.123Z warning backend 127.0.0.1:23306 is down: connection refused`.
///
/// Structured metadata is kept for sinks that can carry it; in text lines it is left out,
/// because every message already says what it is about.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let sink: any LogSink
    /// Syslog and the journal stamp lines themselves.
    private let timestamps: Bool

    public init(sink: any LogSink, level: Logger.Level, timestamps: Bool = true) {
        self.sink = sink
        self.logLevel = level
        self.timestamps = timestamps
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = timestamps ? "\(Self.timestamp()) \(event.level) \(event.message)" : "\(event.message)"
        sink.write(line, level: event.level)
    }

    /// UTC with milliseconds, ISO 8601.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let millisText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millisText)Z"
    }
}
