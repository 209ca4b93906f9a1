import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The control socket: a unix socket (mode 0600) that takes one command per line and answers
/// each with text, or one line of JSON, then a status line, `ok` or `error`, then an empty line.
///
/// A client cannot hurt the proxy through it: lines are limited to 4 KiB (a longer one is
/// answered with an error, and what the client still sends is read and dropped, up to
/// 1 MiB, before the connection closes, so that the answer is not lost to a reset), commands
/// run one at a time per connection, and a connection idle for 30 seconds is closed.
public final class ControlServer: Sendable {
    public let path: String
    private let channel: any Channel

    public struct OpenError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot open control socket \"\(path)\": \(reason)" }
    }

    private init(path: String, channel: any Channel) {
        self.path = path
        self.channel = channel
    }

    /// Listens on `path`. A stale socket file is replaced; one that a running process still
    /// answers on is not.
    public static func start(path: String, service: ControlService, group: any EventLoopGroup, logger: Logger) async throws(OpenError) -> ControlServer {
        if ControlExchange.answers(path) { throw OpenError(path: path, reason: "another process is listening on it") }
        // Private from the start, without touching the process-wide umask (other threads
        // create files meanwhile): bound in a fresh directory only we can enter (mkdtemp makes
        // it 0700), made 0600 there, then renamed into place. A unix socket keeps working
        // after a rename: clients find it by the new name.
        let staging = PrivateSocketPath(for: path)
        defer { staging?.remove() }
        do {
            let channel = try await ServerBootstrap(group: group)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(30)))
                        try channel.pipeline.syncOperations.addHandler(ControlConnectionHandler(service: service, logger: logger))
                    }
                }
                .bind(unixDomainSocketPath: staging?.socket ?? path, cleanupExistingSocketFile: true)
                .get()
            if let staging {
                chmod(staging.socket, 0o600)
                guard rename(staging.socket, path) == 0 else {
                    let reason = ConnectFailure.errnoText(errno)
                    try? await channel.close()
                    throw OpenError(path: path, reason: reason)
                }
            } else {
                // No room for the staging name (sun_path holds 107 bytes): bound in place, so
                // for a moment it has the mode the umask gives (0755 under the usual 022:
                // nobody else can connect, which needs write access).
                chmod(path, 0o600)
            }
            return ControlServer(path: path, channel: channel)
        } catch let error as OpenError {
            throw error
        } catch {
            let reason = ConnectFailure.describe(error)
            throw OpenError(path: path, reason: reason)
        }
    }

    /// Stops listening and removes the socket file.
    public func stop() async {
        try? await channel.close()
        unlink(path)
    }

}

/// One control connection: splits lines, runs them in order, writes the answers.
final class ControlConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let maximumLineLength = 4096
    /// After a line that is too long: how much more is read and dropped before closing.
    static let maximumDiscarded = 1 << 20

    private let service: ControlService
    private let logger: Logger
    private var buffered = ByteBuffer()
    private var lines: [String] = []
    private var running = false
    private var inputEnded = false
    /// Answered "line too long": reading only to drop what the client still sends.
    private var discarding = false
    private var discarded = 0

    init(service: ControlService, logger: Logger) {
        self.service = service
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if discarding {
            discarded += incoming.readableBytes
            if discarded > Self.maximumDiscarded { context.close(promise: nil) }
            return
        }
        buffered.writeBuffer(&incoming)
        while let newline = buffered.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffered.readerIndex
            let line = buffered.readString(length: length) ?? ""
            buffered.moveReaderIndex(forwardBy: 1)
            lines.append(line.hasSuffix("\r") ? String(line.dropLast()) : line)
        }
        buffered.discardReadBytes()
        if buffered.readableBytes > Self.maximumLineLength || lines.contains(where: { $0.utf8.count > Self.maximumLineLength }) {
            lines.removeAll()
            buffered.clear()
            discarding = true
            // Answer and end our stream, then drop what still comes until the client ends
            // its own (closing now, with its bytes unread, would reset the connection and
            // could destroy the answer before the client reads it).
            let answer = "error: line too long (the limit is \(Self.maximumLineLength) bytes)\n\(ControlExchange.failureLine)\n\n"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).assumeIsolated().whenComplete { _ in
                context.close(mode: .output, promise: nil)
            }
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(5)) { context.close(promise: nil) }
            return
        }
        runNext(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            inputEnded = true
            if discarding {
                context.close(promise: nil)
                return
            }
            // A last command without a newline still counts.
            if buffered.readableBytes > 0, let rest = buffered.readString(length: buffered.readableBytes) {
                lines.append(rest)
            }
            runNext(context: context)
        } else if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func runNext(context: ChannelHandlerContext) {
        guard !running else { return }
        guard !lines.isEmpty else {
            if inputEnded { context.close(promise: nil) }
            return
        }
        let line = lines.removeFirst()
        if line.trimmingSpaces.isEmpty {
            runNext(context: context)
            return
        }
        running = true
        let service = self.service
        let answer = context.eventLoop.makePromise(of: ControlService.Reply.self)
        answer.completeWithTask { await service.handle(line: line) }
        answer.futureResult.assumeIsolated().whenSuccess { reply in
            self.running = false
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: reply.text + "\n" + (reply.ok ? ControlExchange.successLine : ControlExchange.failureLine) + "\n\n")), promise: nil)
            self.runNext(context: context)
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        self.drop(while: { $0 == " " || $0 == "\t" })
    }
}
