import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One of a pair of handlers that relay bytes between a client channel and a backend channel
/// on the same event loop, with no hop and no copy per packet.
///
/// - Backpressure: a side reads only while its partner is writable (auto-read is off and each
///   read is requested here), so a slow peer stops the
///   other peer instead of growing buffers here.
/// - Half-close: an end of stream on one side shuts down the write side of the other once
///   everything before it has been written; the other direction keeps flowing.
/// - Errors: an error on one side resets the other (SO_LINGER 0), so a broken transfer never
///   looks like a clean end of stream to the peer.
final class GlueHandler {
    private let side: RelaySession.Side
    private let session: RelaySession
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var outputEnding = false
    /// Our peer ended its stream (NIO has shut our input).
    private var inputEnded = false

    private init(side: RelaySession.Side, session: RelaySession) {
        self.side = side
        self.session = session
    }

    /// A client-side and a backend-side handler that know each other.
    static func matchedPair(session: RelaySession) -> (client: GlueHandler, backend: GlueHandler) {
        let client = GlueHandler(side: .client, session: session)
        let backend = GlueHandler(side: .backend, session: session)
        client.partner = backend
        backend.partner = client
        return (client, backend)
    }

    // MARK: Calls from the partner

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private var partnerIsWritable: Bool {
        context?.channel.isWritable ?? false
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    /// The partner's stream ended cleanly: end ours after what is queued. NIO turns an output
    /// close on a channel whose input already ended into a full close that drops queued
    /// writes, so wait for an empty write (writes complete in order) before closing.
    private func partnerEnded() {
        guard let context, !outputEnding, context.channel.isActive else { return }
        outputEnding = true
        if !inputEnded {
            // NIO shuts the output down once the queued writes are out.
            context.close(mode: .output, promise: nil)
            return
        }
        let drained = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: drained)
        drained.futureResult.assumeIsolated().whenSuccess {
            context.close(mode: .output, promise: nil)
        }
    }

    /// The partner failed: reset our peer instead of ending its stream cleanly.
    private func partnerFailed() {
        guard let context, context.channel.isActive else { return }
        if let options = context.channel as? any SocketOptionProvider {
            _ = options.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        context.close(promise: nil)
    }
}

extension GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        session.received(buffer.readableBytes, on: side)
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
        session.reportBytes()
        // Auto-read stays off (toggling it costs system calls per connection): ask for the
        // next read ourselves, or once the partner can take more.
        readIfPartnerWritable(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            inputEnded = true
            partner?.partnerEnded()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        session.failed(on: side, error: error)
        partner?.partnerFailed()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Closed without an error means our input ended too (NIO skips the inputClosed event
        // when the output was already shut), so end the partner's stream the same way.
        if session.failure != nil {
            partner?.partnerFailed()
        } else {
            partner?.partnerEnded()
        }
        session.sideClosed()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    /// A read requested from outside (the first one, when the relay starts) is gated too.
    func read(context: ChannelHandlerContext) {
        readIfPartnerWritable(context: context)
    }

    private func readIfPartnerWritable(context: ChannelHandlerContext) {
        if partner?.partnerIsWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
