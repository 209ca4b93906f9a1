import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client of an etcd v3 cluster through its JSON gateway (`/v3/...` over plain HTTP/1.1),
/// for the few calls the proxy needs: reads, writes, transactions, leases and watches.
///
/// Every call goes to one endpoint at a time, starting from the last one that answered, and
/// moves on to the next when an endpoint fails: it cannot be connected to, it does not answer
/// within `requestTimeout`, it answers 5xx / gRPC "unavailable" (e.g. a member without a
/// leader, which is asked to say so at once), or its answer is not etcd's JSON. An error
/// that is etcd's verdict on the request (a 4xx: bad revision, lease not found) is thrown at
/// once: another member would say the same. When every endpoint failed the call throws
/// `EtcdError.unreachable` with one reason per endpoint.
///
/// A call that failed on an endpoint after its request was sent may still have been applied
/// there (as with any client over a network): a put retried on the next endpoint is then
/// applied twice, which puts tolerate; use a transaction to make a write conditional.
public final class EtcdClient: Sendable {
    public let endpoints: [EtcdEndpoint]
    public let requestTimeout: Duration
    private let group: any EventLoopGroup
    private let pool = EtcdConnectionPool()
    /// The index of the endpoint that answered last: the next call starts there.
    private let preferred = NIOLockedValueBox(0)

    /// - Parameters:
    ///   - endpoints: the members' client URLs, tried in this order at first.
    ///   - requestTimeout: the limit of one unary call on one endpoint, connecting included;
    ///     for a watch, the limit of connecting and of its answer's first line.
    public init(endpoints: [EtcdEndpoint], requestTimeout: Duration = .seconds(5), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.endpoints = endpoints
        self.requestTimeout = requestTimeout
        self.group = group
    }

    deinit { pool.close() }

    /// Closes the idle pooled connections; calls made afterwards still work but close their
    /// connection when done. Watches are not affected: they end when their stream is dropped.
    public func shutdown() async {
        for channel in pool.close() {
            try? await channel.closeFuture.get()
        }
    }

    // MARK: Keys

    /// Every key that starts with `prefix` ("" for all keys), sorted by key ascending.
    public func range(prefix: String) async throws -> EtcdRangeResult {
        let (key, end) = EtcdKeys.prefixRange(prefix)
        let answer = try await call("/v3/kv/range", [
            "key": EtcdKeys.base64(key), "range_end": EtcdKeys.base64(end), "sort_order": "ASCEND", "sort_target": "KEY",
        ])
        return EtcdRangeResult(keyValues: try EtcdJSON.keyValues(answer["kvs"]), revision: EtcdJSON.revision(answer))
    }

    /// Exactly this key: `keyValues` is empty when it is absent.
    public func get(_ key: String) async throws -> EtcdRangeResult {
        let answer = try await call("/v3/kv/range", ["key": EtcdKeys.base64(key)])
        return EtcdRangeResult(keyValues: try EtcdJSON.keyValues(answer["kvs"]), revision: EtcdJSON.revision(answer))
    }

    /// Writes a key, attached to `lease` unless it is 0; returns the revision it made.
    /// Throws `.leaseExpired` when the lease is gone.
    @discardableResult
    public func put(_ key: String, value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        var request: [String: Any] = ["key": EtcdKeys.base64(key), "value": EtcdKeys.base64(value)]
        if lease != 0 { request["lease"] = String(lease) }
        let answer = try await mappingLeaseNotFound(lease) { try await call("/v3/kv/put", request) }
        return EtcdJSON.revision(answer)
    }

    /// Deletes a key (absent is fine); returns the store's revision after it.
    @discardableResult
    public func delete(_ key: String) async throws -> Int64 {
        EtcdJSON.revision(try await call("/v3/kv/deleterange", ["key": EtcdKeys.base64(key)]))
    }

    /// Deletes every key that starts with `prefix` ("" for all keys); returns the revision.
    @discardableResult
    public func deletePrefix(_ prefix: String) async throws -> Int64 {
        let (key, end) = EtcdKeys.prefixRange(prefix)
        return EtcdJSON.revision(try await call("/v3/kv/deleterange", ["key": EtcdKeys.base64(key), "range_end": EtcdKeys.base64(end)]))
    }

    /// Runs `success` if every compare holds, else `failure`, atomically.
    public func txn(compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []) async throws -> EtcdTxnResult {
        let request: [String: Any] = [
            "compare": compare.map(Self.json), "success": success.map(Self.json), "failure": failure.map(Self.json),
        ]
        let lease = (success + failure).lazy.compactMap { operation -> Int64? in
            if case .put(_, _, let lease) = operation, lease != 0 { return lease }
            return nil
        }.first ?? 0
        let answer = try await mappingLeaseNotFound(lease) { try await call("/v3/kv/txn", request) }
        var gets: [[EtcdKeyValue]] = []
        for case let response as [String: Any] in answer["responses"] as? [Any] ?? [] {
            if let range = response["response_range"] as? [String: Any] {
                gets.append(try EtcdJSON.keyValues(range["kvs"]))
            }
        }
        return EtcdTxnResult(succeeded: EtcdJSON.bool(answer["succeeded"]), revision: EtcdJSON.revision(answer), gets: gets)
    }

    // MARK: Leases

    /// A new lease of `seconds`; returns its ID.
    public func grantLease(ttl seconds: Int64) async throws -> Int64 {
        let answer = try await call("/v3/lease/grant", ["TTL": String(seconds)])
        let id = EtcdJSON.int64(answer["ID"])
        guard id != 0 else { throw EtcdError.badResponse("a lease grant without an ID") }
        return id
    }

    /// Renews a lease once; returns its remaining TTL. Throws `.leaseExpired` when it is gone.
    public func keepAlive(_ lease: Int64) async throws -> Int64 {
        // A keepalive is a stream in gRPC; the gateway sends one {"result": ...} for our one
        // request and ends the answer. A lease that is gone comes back with no TTL (0).
        let answer = try await mappingLeaseNotFound(lease) { try await call("/v3/lease/keepalive", ["ID": String(lease)]) }
        let result = answer["result"] as? [String: Any] ?? answer
        let ttl = EtcdJSON.int64(result["TTL"])
        guard ttl > 0 else { throw EtcdError.leaseExpired(lease) }
        return ttl
    }

    /// Ends a lease now, deleting its keys. Throws `.leaseExpired` when it was already gone.
    public func revoke(_ lease: Int64) async throws {
        _ = try await mappingLeaseNotFound(lease) { try await call("/v3/lease/revoke", ["ID": String(lease)]) }
    }

    /// Drops the history before `revision` (for tests and operators): watches from an older
    /// revision then end with `.compacted`.
    public func compact(revision: Int64) async throws {
        _ = try await call("/v3/kv/compaction", ["revision": String(revision)])
    }

    // MARK: Watch

    /// Watches every key under `prefix` from `revision` (inclusive). The stream yields batches
    /// as they arrive and never ends by itself without an error: `.compacted` when the start
    /// revision was compacted, `.unreachable` when no endpoint took the watch or its
    /// connection broke (the caller re-reads and re-watches; the client does not reconnect a
    /// watch by itself). Cancelling the consuming task or dropping the stream closes the
    /// watch's connection.
    public func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<EtcdWatchBatch, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: EtcdWatchBatch.self, throwing: (any Error).self)
        let connection = EtcdWatchConnection()
        continuation.onTermination = { _ in connection.terminate() }
        let (key, end) = EtcdKeys.prefixRange(prefix)
        let body: [UInt8]
        do {
            body = try EtcdJSON.encode([
                "create_request": ["key": EtcdKeys.base64(key), "range_end": EtcdKeys.base64(end), "start_revision": String(revision)]
            ])
        } catch {
            continuation.finish(throwing: error)
            return stream
        }
        connection.attach(task: Task { await self.startWatch(body: body, continuation: continuation, connection: connection) })
        return stream
    }

    /// Connects the watch to the first endpoint that accepts it; then the `EtcdWatchHandler`
    /// owns the stream.
    private func startWatch(body: [UInt8], continuation: EtcdWatchHandler.Continuation, connection: EtcdWatchConnection) async {
        var reasons: [String] = []
        for (index, endpoint) in endpointOrder() {
            if Task.isCancelled { return }  // the stream terminated: nobody listens
            let deadline = NIODeadline.now() + TimeAmount(requestTimeout)
            do {
                let channel = try await connect(endpoint, deadline: deadline, unary: false)
                guard connection.attach(channel: channel) else {
                    channel.close(promise: nil)
                    return
                }
                let started = channel.eventLoop.makePromise(of: Void.self)
                // Closing on the event loop along with the failure: no answer head can then
                // start this watch after it was given up for the next endpoint.
                let timeout = channel.eventLoop.scheduleTask(deadline: deadline) {
                    started.fail(EtcdError.timedOut)
                    channel.close(promise: nil)
                }
                // And once started, on the loop too: a timer left to fire would end the watch.
                started.futureResult.whenSuccess { timeout.cancel() }
                let requestBody = ByteBuffer(bytes: body)
                channel.eventLoop.execute {
                    do {
                        try channel.pipeline.syncOperations.addHandler(
                            EtcdWatchHandler(endpoint: endpoint, path: "/v3/watch", body: requestBody, started: started, continuation: continuation))
                    } catch {
                        started.fail(error)
                    }
                }
                do {
                    try await started.futureResult.get()
                } catch {
                    timeout.cancel()
                    channel.close(promise: nil)
                    throw error
                }
                preferred.withLockedValue { $0 = index }
                return
            } catch {
                reasons.append("\(endpoint): \(EtcdError.reason(for: error))")
            }
        }
        continuation.finish(throwing: EtcdError.unreachable(reasons))
    }

    // MARK: Calls

    /// The endpoints with their indexes, starting from the preferred one.
    private func endpointOrder() -> [(Int, EtcdEndpoint)] {
        guard !endpoints.isEmpty else { return [] }
        let first = preferred.withLockedValue { $0 } % endpoints.count
        return (0..<endpoints.count).map { step in
            let index = (first + step) % endpoints.count
            return (index, endpoints[index])
        }
    }

    /// POSTs `request` to `path` on one endpoint after another until one answers; returns
    /// the answer's (first) JSON object.
    private func call(_ path: String, _ request: [String: Any]) async throws -> [String: Any] {
        let body = try EtcdJSON.encode(request)
        var reasons: [String] = []
        for (index, endpoint) in endpointOrder() {
            try Task.checkCancellation()
            let response: EtcdHTTPResponse
            do {
                response = try await attempt(endpoint, path: path, body: body)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                reasons.append("\(endpoint): \(EtcdError.reason(for: error))")
                continue
            }
            let unavailable = response.status >= 500
            let object: [String: Any]
            do {
                object = try Self.firstObject(response.body)
            } catch {
                // Not etcd's JSON: with an error status, not etcd's gateway answering (a
                // proxy's page, another server on that port): try the next endpoint.
                guard response.status == 200 else {
                    reasons.append("\(endpoint): HTTP \(response.status): \(EtcdJSON.preview(response.body.readableBytesView))")
                    continue
                }
                throw error
            }
            if let (message, code) = EtcdJSON.error(in: object) {
                // gRPC 14 is "unavailable" (no leader, leader changed, request timed out in
                // raft): this member cannot serve now, another may.
                if unavailable || code == 14 {
                    reasons.append("\(endpoint): HTTP \(response.status): \(message)")
                    continue
                }
                throw EtcdError.server(status: response.status, message: message)
            }
            guard response.status == 200 else {
                reasons.append("\(endpoint): HTTP \(response.status): \(EtcdJSON.preview(response.body.readableBytesView))")
                continue
            }
            preferred.withLockedValue { $0 = index }
            return object
        }
        throw EtcdError.unreachable(reasons)
    }

    /// One request on one endpoint within `requestTimeout`: on an idle pooled connection if
    /// there is one, else (or when that one turns out closed by the server meanwhile) on a
    /// new connection.
    private func attempt(_ endpoint: EtcdEndpoint, path: String, body: [UInt8]) async throws -> EtcdHTTPResponse {
        let deadline = NIODeadline.now() + TimeAmount(requestTimeout)
        if let channel = pool.take(endpoint) {
            do {
                return try await exchange(on: channel, endpoint, path: path, body: body, deadline: deadline)
            } catch is CancellationError {
                throw CancellationError()
            } catch EtcdError.timedOut {
                throw EtcdError.timedOut
            } catch {
                // An idle connection the server dropped (a restarted member, an idle limit):
                // not this endpoint's failure, so try once on a fresh one.
            }
        }
        let channel = try await connect(endpoint, deadline: deadline, unary: true)
        return try await exchange(on: channel, endpoint, path: path, body: body, deadline: deadline)
    }

    private func exchange(
        on channel: any Channel, _ endpoint: EtcdEndpoint, path: String, body: [UInt8], deadline: NIODeadline
    ) async throws -> EtcdHTTPResponse {
        let promise = channel.eventLoop.makePromise(of: EtcdHTTPResponse.self)
        let timeout = channel.eventLoop.scheduleTask(deadline: deadline) {
            promise.fail(EtcdError.timedOut)
            channel.close(promise: nil)
        }
        // Cancelled on the loop as the answer completes: a timer that fired later would
        // close the connection after it went back to the pool.
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        let request = EtcdHTTPRequest(path: path, host: endpoint.description, body: ByteBuffer(bytes: body), promise: promise)
        channel.writeAndFlush(request).whenFailure { promise.fail($0) }
        do {
            let response = try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                promise.fail(CancellationError())
                channel.close(promise: nil)
            }
            if response.keepAlive {
                pool.put(channel, for: endpoint)
            } else {
                channel.close(promise: nil)
            }
            return response
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// A new connection to `endpoint` with the HTTP/1 codec; a unary one also gets the
    /// `EtcdHTTPHandler` (a watch adds its own handler once connected).
    private func connect(_ endpoint: EtcdEndpoint, deadline: NIODeadline, unary: Bool) async throws -> any Channel {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw EtcdError.timedOut }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(remaining)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    if unary { try channel.pipeline.syncOperations.addHandler(EtcdHTTPHandler()) }
                }
            }
        // An address literal needs no resolver (and no happy-eyeballs race).
        if let address = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) {
            return try await bootstrap.connect(to: address).get()
        }
        return try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
    }

    /// The first JSON object of an answer: a unary answer is one object; a stream's (a
    /// keepalive) is a sequence of which we sent a request for one.
    private static func firstObject(_ body: ByteBuffer) throws -> [String: Any] {
        var splitter = JSONObjectSplitter()
        guard let first = try splitter.append(body.readableBytesView).first else {
            throw EtcdError.badResponse(body.readableBytes == 0 ? "an empty answer" : "an incomplete JSON answer")
        }
        return try EtcdJSON.object(first)
    }

    /// Runs `body`, turning etcd's "lease not found" into `.leaseExpired(lease)`: the caller
    /// must grant a new lease, whatever the call was.
    private func mappingLeaseNotFound(_ lease: Int64, _ body: () async throws -> [String: Any]) async throws -> [String: Any] {
        do {
            return try await body()
        } catch EtcdError.server(_, let message) where lease != 0 && message.contains("lease not found") {
            throw EtcdError.leaseExpired(lease)
        }
    }

    // MARK: Transaction JSON

    private static func json(_ compare: EtcdCompare) -> [String: Any] {
        switch compare {
        case .version(let key, let version):
            return ["key": EtcdKeys.base64(key), "target": "VERSION", "result": "EQUAL", "version": String(version)]
        case .value(let key, let value):
            return ["key": EtcdKeys.base64(key), "target": "VALUE", "result": "EQUAL", "value": EtcdKeys.base64(value)]
        case .modRevision(let key, let revision):
            return ["key": EtcdKeys.base64(key), "target": "MOD", "result": "EQUAL", "mod_revision": String(revision)]
        case .createRevision(let key, let revision):
            return ["key": EtcdKeys.base64(key), "target": "CREATE", "result": "EQUAL", "create_revision": String(revision)]
        }
    }

    private static func json(_ operation: EtcdOperation) -> [String: Any] {
        switch operation {
        case .put(let key, let value, let lease):
            var put: [String: Any] = ["key": EtcdKeys.base64(key), "value": EtcdKeys.base64(value)]
            if lease != 0 { put["lease"] = String(lease) }
            return ["request_put": put]
        case .delete(let key):
            return ["request_delete_range": ["key": EtcdKeys.base64(key)]]
        case .deletePrefix(let prefix):
            let (key, end) = EtcdKeys.prefixRange(prefix)
            return ["request_delete_range": ["key": EtcdKeys.base64(key), "range_end": EtcdKeys.base64(end)]]
        case .get(let key):
            return ["request_range": ["key": EtcdKeys.base64(key)]]
        }
    }
}
