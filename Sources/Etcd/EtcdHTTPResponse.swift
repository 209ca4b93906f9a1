import NIOCore

/// A whole HTTP answer of the gateway: unary calls are small, so the body is gathered.
struct EtcdHTTPResponse: Sendable {
    let status: Int
    let body: ByteBuffer
    /// Whether the server lets the connection serve another request.
    let keepAlive: Bool
}
