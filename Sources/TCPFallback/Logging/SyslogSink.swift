#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sends lines to syslog(3) with the identifier `tcp-fallback`, facility daemon.
public final class SyslogSink: LogSink {
    public init(identifier: String = "tcp-fallback") {
        // openlog keeps the pointer: the copy lives as long as the process.
        openlog(strdup(identifier), LOG_PID | LOG_NDELAY, LOG_DAEMON)
    }

    public func write(_ line: String, level: LogLevelName) {
        // A "%s" format, so a '%' in the message stays literal.
        line.withCString { text in
            withVaList([text]) { vsyslog(Self.priority(level), "%s", $0) }
        }
    }

    static func priority(_ level: LogLevelName) -> Int32 {
        switch level {
        case .trace, .debug: LOG_DEBUG
        case .info: LOG_INFO
        case .notice: LOG_NOTICE
        case .warning: LOG_WARNING
        case .error: LOG_ERR
        case .critical: LOG_CRIT
        }
    }
}
