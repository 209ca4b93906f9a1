import NIOCore

/// Runs a `MySQLCheckConversation` on a channel: cuts what the server sends into packets,
/// sends the conversation's answers, and when it is over says goodbye (COM_QUIT) and
/// completes with its result. Bounded by the check's timeout as a whole.
final class MySQLConversationHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var conversation: MySQLCheckConversation
    private var packets = MySQLPacketReader()
    private let promise: EventLoopPromise<MySQLServerState?>
    private var received = 0
    private var done = false

    private init(_ conversation: MySQLCheckConversation, promise: EventLoopPromise<MySQLServerState?>) {
        self.conversation = conversation
        self.promise = promise
    }

    /// Starts the conversation on `channel` (auto-read off, from `BackendDialer`); call on its loop.
    static func start(_ conversation: MySQLCheckConversation, on channel: any Channel, timeout: TimeAmount) -> EventLoopFuture<MySQLServerState?> {
        let promise = channel.eventLoop.makePromise(of: MySQLServerState?.self)
        let handler = MySQLConversationHandler(conversation, promise: promise)
        do {
            try channel.pipeline.syncOperations.addHandler(handler)
        } catch {
            promise.fail(error)
            return promise.futureResult
        }
        let timer = channel.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            let limit = GoDuration.formatApproximately(.nanoseconds(timeout.nanoseconds))
            handler.done = true
            promise.fail(FirstBytes.Failure(description: handler.received == 0 ? "nothing within \(limit)" : "no complete answer within \(limit)"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        // Whatever arrived before the handler was there comes first.
        InputHold.of(channel)?.release()
        channel.read()
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        let bytes = unwrapInboundIn(data)
        received += bytes.readableBytes
        packets.append(bytes.readableBytesView)
        do {
            while !done, let packet = try packets.next() {
                let step = conversation.receive(packet)
                if let send = step.send { context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: send)), promise: nil) }
                if let result = step.result { finish(result, context: context) }
            }
        } catch {
            finish(.failure(.protocolError("not a MySQL answer: \(error.description)")), context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !done { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { closed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !done else { return }
        done = true
        promise.fail(error)
    }

    private func closed() {
        guard !done else { return }
        done = true
        promise.fail(FirstBytes.Failure(description: received == 0 ? "closed without a word" : "closed after \(received) bytes"))
    }

    private func finish(_ result: MySQLCheckConversation.Result, context: ChannelHandlerContext) {
        done = true
        // The polite end, whatever the result: the server logs a clean disconnect.
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: MySQLProtocol.quit)), promise: nil)
        promise.completeWith(result.mapError { $0 as any Error })
    }
}
