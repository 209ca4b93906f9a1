import NIOCore
import NIOHTTP1

/// The last handler of a watch connection: sends the watch's create request once added,
/// then reads the gateway's endless chunked answer object by object and feeds the events
/// to the stream's continuation.
///
/// Until the answer's head arrives with 200 the watch is not started: failures go to
/// `started` (so the client can try the next endpoint) and the stream is left alone. After
/// that, every way the answer can end finishes the stream with an error, because a watch
/// never ends by itself: the caller must re-read and re-watch.
final class EtcdWatchHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    typealias Continuation = AsyncThrowingStream<EtcdWatchBatch, any Error>.Continuation

    private let endpoint: EtcdEndpoint
    private let path: String
    private let requestBody: ByteBuffer
    private let started: EventLoopPromise<Void>
    private let continuation: Continuation
    private var splitter = JSONObjectSplitter()
    private var streaming = false
    private var finished = false
    /// Set when the head says the watch was refused: the body is the gateway's error.
    private var errorStatus: Int?
    private var errorBody: [UInt8] = []

    init(endpoint: EtcdEndpoint, path: String, body: ByteBuffer, started: EventLoopPromise<Void>, continuation: Continuation) {
        self.endpoint = endpoint
        self.path = path
        self.requestBody = body
        self.started = started
        self.continuation = continuation
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added to a connected channel: send the create request at once.
        let head = HTTPRequestHead.etcdPost(path: path, host: endpoint.description, bodyLength: requestBody.readableBytes)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(requestBody))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status == .ok {
                streaming = true
                started.succeed(())
            } else {
                errorStatus = Int(head.status.code)
            }
        case .body(let chunk):
            if finished { return }  // closing: what follows the end is of no interest
            if errorStatus != nil {
                errorBody.append(contentsOf: chunk.readableBytesView.prefix(max(0, 4096 - errorBody.count)))
                return
            }
            do {
                for object in try splitter.append(chunk.readableBytesView) {
                    try handle(EtcdJSON.object(object))
                    if finished { break }
                }
            } catch {
                finish(throwing: error)
            }
            if finished { context.close(promise: nil) }
        case .end:
            if let status = errorStatus {
                let message = (try? EtcdJSON.object(errorBody)).flatMap(EtcdJSON.error(in:))?.message ?? EtcdJSON.preview(errorBody)
                started.fail(EtcdError.server(status: status, message: message))
            } else {
                finish(throwing: EtcdError.unreachable(["\(endpoint): the watch stream was ended by the server"]))
            }
            context.close(promise: nil)
        }
    }

    /// One object of the stream: {"result": WatchResponse} or {"error": {...}}.
    private func handle(_ object: [String: Any]) throws {
        if let (message, code) = EtcdJSON.error(in: object) {
            // 14 is gRPC's "unavailable" (e.g. "no leader"): this member cannot serve the
            // watch, another may; anything else is etcd's verdict on the watch itself.
            if code == 14 {
                finish(throwing: EtcdError.unreachable(["\(endpoint): \(message)"]))
            } else {
                let status = Int(EtcdJSON.int64((object["error"] as? [String: Any])?["http_code"]))
                finish(throwing: EtcdError.server(status: status == 0 ? 200 : status, message: message))
            }
            return
        }
        guard let result = object["result"] as? [String: Any] else {
            throw EtcdError.badResponse("a watch answer without result: \(object.keys.sorted())")
        }
        if EtcdJSON.bool(result["canceled"]) {
            let compactRevision = EtcdJSON.int64(result["compact_revision"])
            if compactRevision > 0 {
                finish(throwing: EtcdError.compacted(compactRevision: compactRevision))
            } else {
                let reason = (result["cancel_reason"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "the watch was canceled by etcd"
                finish(throwing: EtcdError.server(status: 200, message: reason))
            }
            return
        }
        // The "created" acknowledgement and progress notifications carry no events.
        guard let rawEvents = result["events"] as? [Any], !rawEvents.isEmpty else { return }
        let events = try rawEvents.map { raw -> EtcdWatchEvent in
            guard let event = raw as? [String: Any] else { throw EtcdError.badResponse("a watch event is not a JSON object") }
            // PUT is the enum's default, so the gateway leaves "type" out for puts.
            let kind: EtcdWatchEvent.Kind = (event["type"] as? String) == "DELETE" ? .delete : .put
            return EtcdWatchEvent(kind: kind, keyValue: try EtcdJSON.keyValue(event["kv"]))
        }
        continuation.yield(EtcdWatchBatch(revision: EtcdJSON.revision(result), events: events))
    }

    func channelInactive(context: ChannelHandlerContext) {
        started.fail(ChannelError.eof)
        finish(throwing: EtcdError.unreachable(["\(endpoint): the watch connection was closed"]))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        started.fail(error)
        finish(throwing: EtcdError.unreachable(["\(endpoint): \(EtcdError.reason(for: error))"]))
        context.close(promise: nil)
    }

    /// Ends the stream once, and only if the watch had started: before that the client
    /// owns the stream (it may still try another endpoint).
    private func finish(throwing error: any Error) {
        guard streaming, !finished else { return }
        finished = true
        continuation.finish(throwing: error)
    }
}
