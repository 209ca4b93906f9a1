import CSystemd
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Tells systemd how the service is doing through `sd_notify`: readiness, status text,
/// reloads, stopping and watchdog pings. Without `NOTIFY_SOCKET` every call does nothing.
public struct SystemdNotifier: Sendable {
    /// Set once the process retires after an upgrade: the new process speaks for the service.
    private static let silenced = Atomic<Bool>(false)

    public init() {}

    /// From now on, say nothing to systemd (a process that retires after an upgrade).
    public static func silence() {
        silenced.store(true, ordering: .relaxed)
    }

    /// Whether a service manager listens (`NOTIFY_SOCKET` is set).
    public var isEnabled: Bool { Environment.value("NOTIFY_SOCKET") != nil }

    /// The listener accepts connections.
    public func ready(status: String? = nil) {
        send("READY=1" + (status.map { "\nSTATUS=\($0)" } ?? ""))
    }

    /// Another process is the service's main process from now on (an upgrade's new one).
    public func mainProcess(_ pid: Int32) {
        send("MAINPID=\(pid)")
    }

    /// The line `systemctl status` shows.
    public func status(_ text: String) {
        send("STATUS=\(text)")
    }

    /// A reload (log reopen) begins; `ready()` ends it.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    public func stopping() {
        send("STOPPING=1")
    }

    public func watchdogPing() {
        send("WATCHDOG=1")
    }

    /// The watchdog interval systemd expects pings within, if it set one for this process.
    public var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }

    private func send(_ state: String) {
        guard !Self.silenced.load(ordering: .relaxed) else { return }
        _ = sd_notify(0, state)
    }
}
