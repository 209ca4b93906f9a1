#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads the process environment (systemd passes NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS,
/// JOURNAL_STREAM) without Foundation.
public enum Environment {
    public static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
