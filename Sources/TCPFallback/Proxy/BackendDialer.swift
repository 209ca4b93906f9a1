import NIOCore
import NIOPosix

/// Opens a TCP connection to a backend, the same way for client connections and probes.
///
/// The channel comes back with auto-read off: nothing is read from the backend until the
/// relay is in place, so a server that speaks first (MySQL) loses no byte.
struct BackendDialer: Sendable {
    let timeout: TimeAmount

    init(timeout: Duration) {
        self.timeout = TimeAmount(timeout)
    }

    func connect(to backend: Backend, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .channelOption(.recvAllocator, value: RelayBuffers.receiveAllocator)
            .channelOption(.writeBufferWaterMark, value: RelayBuffers.writeWatermarks)
        if let address = backend.numericAddress {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: backend.endpoint.host, port: backend.endpoint.port)
    }
}

/// Buffer sizes of the data path, in one place because both sides of a relay share them.
enum RelayBuffers {
    /// Reads grow up to 256 KiB on busy streams, which cuts system calls per byte; the
    /// write-buffer watermarks bound what a connection can hold before reading stops.
    static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 256 * 1024)
    }
    static let writeWatermarks = ChannelOptions.Types.WriteBufferWaterMark(low: 64 * 1024, high: 256 * 1024)
}
