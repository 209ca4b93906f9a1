/// TCP keepalive timings for both sides of every relayed connection.
///
/// A MySQL client can hold a connection idle for hours; if its host or the server vanishes
/// without a reset (power loss, a dropped route, a firewall that forgets the flow), the
/// proxy would hold both sockets forever. With keepalive the kernel probes an idle
/// connection after `idle` and gives up after `probes` unanswered probes `interval` apart.
/// The default, 60s idle then 6 probes 10s apart, finds a dead peer within two minutes,
/// costs one small packet a minute per idle connection, and is far below the idle limits
/// of common firewalls and NAT tables (often 5 to 60 minutes), which it also keeps open.
/// Client sockets inherit the setting from the listener; backend sockets get it once their
/// relay has run 5 seconds, which spares short connections four system calls.
public struct TCPKeepalive: Sendable, Equatable {
    public var idle: Duration
    public var interval: Duration
    public var probes: Int

    /// Probing after `idle`; probes come every `min(idle, 10s)`, 6 of them.
    public init(idle: Duration) {
        self.idle = idle
        self.interval = min(idle, .seconds(10))
        self.probes = 6
    }

    public static let `default` = TCPKeepalive(idle: .seconds(60))

    var idleSeconds: Int32 { Self.seconds(idle) }
    var intervalSeconds: Int32 { Self.seconds(interval) }

    /// The kernel counts in whole seconds, from 1 to 32767.
    private static func seconds(_ duration: Duration) -> Int32 {
        let seconds = duration.components.seconds + (duration.components.attoseconds > 0 ? 1 : 0)
        return Int32(min(max(seconds, 1), 32767))
    }
}
