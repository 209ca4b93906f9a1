import NIOCore

/// One client connection from accept to close: which backend it is trying or relaying to,
/// what each socket is ready for, the bytes held for a peer that could not take them, and
/// its one deadline. It belongs to the loop that accepted it and is touched only there;
/// `DataLoop` drives it (connecting in `DataLoop+Connect`, relaying in `DataLoop+Relay`).
final class Session {
    enum Phase {
        /// Waiting for the addresses of the backend's host name.
        case resolving
        /// A non-blocking connect to `backend` is under way.
        case connecting
        /// Connected; waiting for the backend's first bytes (the greeting gate).
        case greeting
        /// Bytes flow both ways.
        case relaying
        /// No backend connected; looking again until the queue timeout.
        case queued
        /// Both sockets are closed.
        case closed
    }

    enum Side: String {
        case client, backend
    }

    /// What epoll said about one socket since we last used it all up (edge-triggered: each
    /// state is reported once, so it is remembered here until a call returns EAGAIN).
    struct Readiness {
        var readable = false
        var writable = false
        /// The peer ended its stream (EPOLLRDHUP): a short read means everything is in.
        var peerEnded = false
    }

    /// Bytes moving one way: from a source socket to a destination socket.
    struct Flow {
        /// What the destination could not take yet; the source is not read while it is held.
        var held = HeldBytes()
        /// The source ended its stream.
        var sourceEnded = false
        /// The end of stream was passed on (shutdown of the destination's output).
        var destinationShut = false
        /// A read once filled the whole scratch buffer: this direction carries a bulk
        /// transfer, and moves through `pipe` with splice(2) from now on.
        var bulk = false
        /// The pipe of a bulk transfer while it is in use (given back when empty and the
        /// source has nothing more), and how many bytes it holds for the destination.
        var pipe: Pipe?
        var piped = 0
    }

    let clientFD: Int32
    /// Identifies this session's registration of the client socket in epoll events.
    let clientToken: UInt32
    let clientAddress: PeerAddress
    var client = Readiness()

    var phase = Phase.connecting
    /// The backend tried or relayed to now.
    var backend: Backend?
    var backendFD: Int32 = -1
    var backendToken: UInt32 = 0
    var backendSide = Readiness()

    /// Backends still to try, the current one first.
    var candidates: ArraySlice<Backend> = []
    /// Addresses of the current backend still to try, for a host name with several.
    var addresses: ArraySlice<SocketAddress> = []
    /// Why each backend tried so far failed, for the log line when none is left.
    var failures: [String] = []
    /// When queued, when to give up (loop time).
    var queueDeadline: UInt64 = 0
    /// The backend's first bytes, held by the greeting gate.
    var greeting: [UInt8] = []

    /// client → backend
    var up = Flow()
    /// backend → client
    var down = Flow()
    var bytesFromClient = 0
    var bytesToClient = 0
    /// The first error on either side; the other side is then reset, not ended.
    var failure: (side: Side, reason: String)?

    let started: UInt64
    /// Loop time the relay began.
    var relayStarted: UInt64 = 0
    /// Keepalive is set on the backend socket (see `DataPathSettings.keepaliveArmingDelay`).
    var keepaliveArmed = false
    /// Loop time of the last byte read either way (only kept with an idle timeout).
    var lastActivity: UInt64
    /// This session's deadline (connect, greeting, queue retry, idle), and its place in the
    /// loop's `TimerQueue` (-1: none).
    var deadline: UInt64 = 0
    var timerIndex = -1

    init(clientFD: Int32, token: UInt32, address: PeerAddress, now: UInt64) {
        self.clientFD = clientFD
        self.clientToken = token
        self.clientAddress = address
        self.started = now
        self.lastActivity = now
        // A new connection can take bytes; epoll confirms it with the first event anyway.
        client.writable = true
    }
}
