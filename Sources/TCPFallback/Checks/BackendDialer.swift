import NIOCore
import NIOPosix

/// Opens a TCP connection to a backend, the same way for client connections and probes.
///
/// The channel comes back with auto-read off: nothing is read from the backend until the
/// relay is in place, so a server that speaks first (MySQL) loses no byte.
struct BackendDialer: Sendable {
    private let timeout: TimeAmount

    init(timeout: Duration) {
        self.timeout = TimeAmount(timeout)
    }

    /// Connects on `eventLoop`: a relay's two channels share the client's loop.
    func connect(to backend: Backend, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        // ClientBootstrap sets TCP_NODELAY by default. The other options are set synchronously
        // in the initializer: the bootstrap's own option path costs a future per option.
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try RelayBuffers.configure(channel)
                    // In place before the connect completes: a server may speak and hang up at once.
                    try channel.pipeline.syncOperations.addHandler(InputHold())
                }
            }
        if let address = backend.numericAddress {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: backend.endpoint.host, port: backend.endpoint.port)
    }
}

/// Socket options of the data path, in one place because both sides of a relay share them.
enum RelayBuffers {
    /// Half-close allowed, auto-read off (the relay asks for each read), buffer sizes.
    static func configure(_ channel: any Channel) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.allowRemoteHalfClosure, value: true)
        try options.setOption(.autoRead, value: false)
        try options.setOption(.recvAllocator, value: receiveAllocator)
        try options.setOption(.writeBufferWaterMark, value: writeWatermarks)
    }

    /// Reads start small (most connections are short, and every new channel allocates its
    /// first buffer) and grow up to 256 KiB on busy streams, which cuts system calls per byte;
    /// the write-buffer watermarks bound what a connection can hold before reading stops.
    static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 4 * 1024, maximum: 256 * 1024)
    }
    static let writeWatermarks = ChannelOptions.Types.WriteBufferWaterMark(low: 64 * 1024, high: 256 * 1024)
}
