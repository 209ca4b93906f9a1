import NIOCore
import NIOHTTP1

/// The last handler of a unary connection: turns an `EtcdHTTPRequest` written into the
/// pipeline into HTTP parts and completes its promise with the whole answer. One request at
/// a time per connection (the client takes a connection out of its pool for each request),
/// so there is no pipelining to keep in order.
final class EtcdHTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = EtcdHTTPRequest
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: EventLoopPromise<EtcdHTTPResponse>?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?

    init() {}

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard pending == nil else {
            // A second request on a busy connection is a bug of the caller; fail it alone.
            request.promise.fail(EtcdError.badResponse("internal: two requests at once on one connection"))
            promise?.fail(ChannelError.inappropriateOperationForState)
            return
        }
        pending = request.promise
        head = nil
        body = nil
        let requestHead = HTTPRequestHead.etcdPost(path: request.path, host: request.host, bodyLength: request.body.readableBytes)
        context.write(wrapOutboundOut(.head(requestHead)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
        case .body(var chunk):
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let promise = pending, let head else { return }
            pending = nil
            self.head = nil
            let answer = EtcdHTTPResponse(
                status: Int(head.status.code), body: body ?? context.channel.allocator.buffer(capacity: 0), keepAlive: head.isKeepAlive)
            body = nil
            promise.succeed(answer)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failPending(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failPending(error)
        context.close(promise: nil)
    }

    private func failPending(_ error: any Error) {
        guard let promise = pending else { return }
        pending = nil
        promise.fail(error)
    }
}
