/// What every data loop needs to know of the configuration, in the loops' own units.
struct DataPathSettings: Sendable {
    /// Limit of each connection attempt to a backend.
    var connectTimeout: Duration
    /// Wait for each backend's first bytes before committing a client to it.
    var greetingGate: GreetingGate?
    /// How long a client may wait for a backend to come back when none connects.
    var queueTimeout: Duration?
    /// Close a connection idle in both directions for this long.
    var idleTimeout: Duration?
    /// TCP keepalive on both sides; nil turns it off.
    var keepalive: TCPKeepalive?
    /// How long a relay runs before keepalive is set on its backend socket: most connections
    /// are over sooner and spare the four system calls; a dead peer of a long one is found
    /// this much later at most. (Client sockets inherit keepalive from the listener.)
    var keepaliveArmingDelay: Duration
    /// Send a PROXY protocol header to each backend.
    var sendProxy: ProxyProtocolVersion?
    /// Splice bulk transfers through pipes (see `PipePool`).
    var splice: Bool
    /// How new clients are spread over equally good backends.
    var balance: BalanceMode
}

/// Monotonic time in nanoseconds, as the loops keep it (CLOCK_MONOTONIC, no system call).
enum LoopTime {
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(seconds, 0)) &* 1_000_000_000 &+ UInt64(max(attoseconds, 0) / 1_000_000_000)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
