import CDataPath
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a read or write on a non-blocking socket came to.
enum IOOutcome {
    /// This many bytes moved (more than zero).
    case transferred(Int)
    /// Nothing to read, or no room to write, now: wait for the next readiness event.
    case wouldBlock
    /// The peer ended its stream (a read returned 0).
    case endOfStream
    /// The call failed with this errno.
    case failed(Int32)
}

/// The system calls of the data path, each one call with its errno turned into a value.
///
/// Contract for every function here: the descriptor is a socket this process owns and has
/// not closed; no function keeps a pointer it was given beyond the call. `close` and
/// `resetAndClose` end the caller's ownership: the number may be reused at once.
enum SocketCalls {
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> IOOutcome {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count > 0 { return .transferred(count) }
            if count == 0 { return .endOfStream }
            let error = errno
            if error == EINTR { continue }
            return error == EAGAIN || error == EWOULDBLOCK ? .wouldBlock : .failed(error)
        }
    }

    static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) -> IOOutcome {
        while true {
            let count = Glibc.write(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return .transferred(count) }
            let error = errno
            if error == EINTR { continue }
            return error == EAGAIN || error == EWOULDBLOCK ? .wouldBlock : .failed(error)
        }
    }

    /// Moves up to `count` bytes from `source` to `destination` inside the kernel, one of them
    /// a socket and the other a pipe (see `PipePool`); like `read` and `write` otherwise.
    static func splice(from source: Int32, to destination: Int32, count: Int) -> IOOutcome {
        while true {
            let moved = tf_splice(source, destination, UInt(count))
            if moved > 0 { return .transferred(moved) }
            if moved == 0 { return .endOfStream }
            let error = errno
            if error == EINTR { continue }
            return error == EAGAIN || error == EWOULDBLOCK ? .wouldBlock : .failed(error)
        }
    }

    /// Ends our stream to the peer (a FIN once what is queued in the kernel is sent).
    static func shutdownOutput(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Closes with a reset (SO_LINGER 0): the peer sees an error, not a clean end of stream.
    static func resetAndClose(_ fd: Int32) {
        var option = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        _ = Glibc.close(fd)
    }

    /// The socket's pending error (SO_ERROR), 0 if none; reading it clears it.
    static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
        return error
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// TCP_NODELAY: a relay forwards what it has at once, it must not wait to fill segments.
    static func setNoDelay(_ fd: Int32) {
        setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    }

    /// TCP keepalive with these timings (see `TCPKeepalive`).
    static func setKeepalive(_ fd: Int32, _ settings: TCPKeepalive) {
        setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1)
        setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, settings.idleSeconds)
        setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, settings.intervalSeconds)
        setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, Int32(settings.probes))
    }

    /// A new non-blocking, close-on-exec TCP socket of `family`; errno on failure.
    static func openStream(family: Int32) -> Result<Int32, SocketError> {
        let fd = socket(family, SocketFlags.stream | SocketFlags.nonBlocking | SocketFlags.closeOnExec, 0)
        return fd >= 0 ? .success(fd) : .failure(SocketError(errno: errno, operation: "socket"))
    }

    /// Starts a non-blocking connect: 0 when connected at once, EINPROGRESS while under way,
    /// another errno when it failed.
    static func connect(_ fd: Int32, to address: SocketAddress) -> Int32 {
        let result = address.withSockAddr { pointer, size in Glibc.connect(fd, pointer, socklen_t(size)) }
        return result == 0 ? 0 : errno
    }

    /// Accepts one connection, non-blocking and close-on-exec, with the peer's address from
    /// the same call.
    static func accept(_ listener: Int32) -> Result<(Int32, PeerAddress), SocketError> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { tf_accept(listener, $0, &length) }
        }
        guard fd >= 0 else { return .failure(SocketError(errno: errno, operation: "accept")) }
        return .success((fd, PeerAddress(storage)))
    }

    /// The local address of a connected or bound socket.
    static func localAddress(_ fd: Int32) -> PeerAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 ? PeerAddress(storage) : PeerAddress()
    }

    /// A listening socket on `address` with SO_REUSEPORT (each loop binds its own), or the
    /// errno of the step that failed. Options set here are inherited by accepted sockets.
    static func listen(on address: SocketAddress, reusePort: Bool, keepalive: TCPKeepalive?, backlog: Int32) -> Result<Int32, SocketError> {
        let fd: Int32
        switch openStream(family: Int32(address.protocol.rawValue)) {
        case .success(let opened): fd = opened
        case .failure(let error): return .failure(error)
        }
        setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if reusePort { setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
        prepareListener(fd, keepalive: keepalive)
        let bound = address.withSockAddr { pointer, size in bind(fd, pointer, socklen_t(size)) }
        if bound != 0 {
            let error = SocketError(errno: errno, operation: "bind")
            Glibc.close(fd)
            return .failure(error)
        }
        if Glibc.listen(fd, backlog) != 0 {
            let error = SocketError(errno: errno, operation: "listen")
            Glibc.close(fd)
            return .failure(error)
        }
        return .success(fd)
    }

    /// Options every listener gets, ours or systemd's: accepted sockets inherit them, which
    /// saves a system call each per client.
    static func prepareListener(_ fd: Int32, keepalive: TCPKeepalive?) {
        setNoDelay(fd)
        if let keepalive { setKeepalive(fd, keepalive) }
    }

    /// Makes an inherited descriptor non-blocking (systemd passes them as they were created).
    static func setNonBlocking(_ fd: Int32) -> Int32 {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { return errno }
        return 0
    }
}

/// A failed system call of the data path.
struct SocketError: Error, CustomStringConvertible {
    let errno: Int32
    let operation: String

    var description: String { ConnectFailure.errnoText(errno) }
}
