import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 server for Prometheus: `GET /metrics` (and HEAD) answers the metrics,
/// any other path 404, any other method 405.
public final class MetricsServer: Sendable {
    private let channel: any Channel

    public struct OpenError: Error, CustomStringConvertible {
        public let endpoint: Endpoint
        public let reason: String
        public var description: String { "cannot serve metrics on \(endpoint): \(reason)" }
    }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// The address it listens on (the port the kernel chose for port 0).
    public var localAddress: SocketAddress? { channel.localAddress }

    public static func start(on endpoint: Endpoint, metrics: ProxyMetrics, group: any EventLoopGroup) async throws(OpenError) -> MetricsServer {
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics))
                    }
                }
                .bind(host: endpoint.host.isEmpty ? "::" : endpoint.host, port: endpoint.port)
                .get()
            return MetricsServer(channel: channel)
        } catch {
            let reason = ConnectFailure.describe(error)
            throw OpenError(endpoint: endpoint, reason: reason)
        }
    }

    public func stop() async {
        try? await channel.close()
    }
}

/// Answers one request at a time on an HTTP/1.1 connection.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ProxyMetrics
    private var request: HTTPRequestHead?

    init(metrics: ProxyMetrics) {
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    /// A request that does not parse has been answered 400 by NIO's error handler; end it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            send(.methodNotAllowed, body: "only GET and HEAD\n", head: head, extra: [("Allow", "GET, HEAD")], context: context)
            return
        }
        guard path == "/metrics" else {
            send(.notFound, body: "the metrics are at /metrics\n", head: head, context: context)
            return
        }
        let metrics = self.metrics
        let text = context.eventLoop.makePromise(of: String.self)
        text.completeWithTask { await metrics.render() }
        text.futureResult.assumeIsolated().whenSuccess { body in
            self.send(.ok, body: body, head: head, contentType: "text/plain; version=0.0.4; charset=utf-8", context: context)
        }
    }

    private func send(
        _ status: HTTPResponseStatus, body: String, head: HTTPRequestHead, contentType: String = "text/plain; charset=utf-8",
        extra: [(String, String)] = [], context: ChannelHandlerContext
    ) {
        let bytes = ByteBuffer(string: body)
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(bytes.readableBytes)")] + extra)
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
