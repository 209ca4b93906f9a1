import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sends records to syslog(3) with the identifier `tcp-fallback` and a chosen facility.
public final class SyslogSink: LogSink {
    /// The facilities `-syslog-facility` takes, by their syslog.conf names.
    public static let facilities: [String: Int32] = [
        "kern": LOG_KERN, "user": LOG_USER, "mail": LOG_MAIL, "daemon": LOG_DAEMON, "auth": LOG_AUTH,
        "syslog": LOG_SYSLOG, "lpr": LOG_LPR, "news": LOG_NEWS, "uucp": LOG_UUCP, "cron": LOG_CRON,
        "authpriv": LOG_AUTHPRIV, "ftp": LOG_FTP, "local0": LOG_LOCAL0, "local1": LOG_LOCAL1,
        "local2": LOG_LOCAL2, "local3": LOG_LOCAL3, "local4": LOG_LOCAL4, "local5": LOG_LOCAL5,
        "local6": LOG_LOCAL6, "local7": LOG_LOCAL7,
    ]

    /// The socket syslog(3) writes to.
    public static let socketPath = "/dev/log"

    public init(identifier: String = "tcp-fallback", facility: Int32 = LOG_DAEMON) {
        // openlog keeps the pointer: the copy lives as long as the process.
        openlog(strdup(identifier), LOG_PID | LOG_NDELAY, facility)
    }

    public func write(_ record: LogRecord) {
        // A "%s" format, so a '%' in the message stays literal.
        record.message.withCString { text in
            withVaList([text]) { vsyslog(Self.priority(record.level), "%s", $0) }
        }
    }

    /// Why no syslog daemon would receive messages now, or nil if one listens. syslog(3)
    /// drops messages silently when nobody listens, so this is checked once at start-up.
    public static func daemonProblem() -> String? {
        let fd = socket(AF_UNIX, SocketFlags.datagram | SocketFlags.closeOnExec, 0)
        guard fd >= 0 else { return ConnectFailure.errnoText(errno) }
        defer { close(fd) }
        return UnixSocketAddress.connect(fd, to: socketPath) ? nil : ConnectFailure.errnoText(errno)
    }

    /// The syslog priority of a swift-log level; the journal uses the same numbers.
    static func priority(_ level: Logger.Level) -> Int32 {
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
