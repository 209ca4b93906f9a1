import NIOCore

/// Reads what a backend sends first: until `enough` is satisfied, the backend closes, or the
/// timeout passes. The health check reads MySQL greetings with it, and the greeting gate
/// holds a backend's first bytes until it knows they are good.
enum FirstBytes {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts reading; the channel must have auto-read off and nothing else reading.
    ///
    /// Bytes that arrived before (held by the channel's `InputHold`) are replayed first; after
    /// that, call it before the peer can answer (see `MySQLCheck`), as NIO reads everything at
    /// once when the peer closes (EPOLLRDHUP), auto-read or not.
    static func collect(
        from channel: any Channel, timeout: TimeAmount, until enough: @escaping @Sendable ([UInt8]) -> Bool
    ) -> EventLoopFuture<[UInt8]> {
        if channel.eventLoop.inEventLoop {
            return install(on: channel, timeout: timeout, enough: enough)
        }
        return channel.eventLoop.flatSubmit { install(on: channel, timeout: timeout, enough: enough) }
    }

    private static func install(
        on channel: any Channel, timeout: TimeAmount, enough: @escaping @Sendable ([UInt8]) -> Bool
    ) -> EventLoopFuture<[UInt8]> {
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        let collector = Collector(promise: promise, enough: enough)
        do {
            try channel.pipeline.syncOperations.addHandler(collector)
        } catch {
            promise.fail(error)
            return promise.futureResult
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "nothing within \(GoDuration.formatApproximately(.nanoseconds(timeout.nanoseconds)))"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        // Whatever arrived before the collector was there comes first.
        InputHold.of(channel)?.release()
        channel.read()
        return promise.futureResult
    }

    private final class Collector: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer

        private let promise: EventLoopPromise<[UInt8]>
        private let enough: ([UInt8]) -> Bool
        private var bytes: [UInt8] = []
        private var done = false

        init(promise: EventLoopPromise<[UInt8]>, enough: @escaping ([UInt8]) -> Bool) {
            self.promise = promise
            self.enough = enough
            promise.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { [weak self] _ in self?.done = true }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !done else { return }
            bytes += unwrapInboundIn(data).readableBytesView
            if enough(bytes) { finish(context: context) }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            if !done { context.read() }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .inputClosed = event as? ChannelEvent, !done {
                promise.fail(Failure(description: bytes.isEmpty ? "closed without a word" : "closed after \(bytes.count) bytes"))
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done { promise.fail(Failure(description: "closed without a word")) }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !done { promise.fail(error) }
        }

        /// Leaves the pipeline before handing the bytes over, so nothing more is read here.
        private func finish(context: ChannelHandlerContext) {
            done = true
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            promise.succeed(bytes)
        }
    }
}
