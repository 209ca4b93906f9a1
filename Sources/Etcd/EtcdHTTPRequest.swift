import NIOCore
import NIOHTTP1

/// A POST of a JSON body to one gateway path, written into a connection's pipeline; the
/// `EtcdHTTPHandler` completes `promise` with the answer (or the connection's failure).
struct EtcdHTTPRequest: Sendable {
    let path: String
    /// The Host header: the endpoint as "host:port".
    let host: String
    let body: ByteBuffer
    let promise: EventLoopPromise<EtcdHTTPResponse>
}

extension HTTPRequestHead {
    /// The head of a gateway call: a POST with a JSON body of known length.
    static func etcdPost(path: String, host: String, bodyLength: Int) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Content-Length", value: String(bodyLength))
        // The gateway passes "Grpc-Metadata-" headers on as gRPC metadata, and etcd's
        // "hasleader" asks it to refuse at once, with 503 "no leader", when this member has no
        // leader (cut off from the others), instead of holding the call until it times out; a
        // watch is also ended when its member loses its leader. Either way the client moves
        // on to a member that can answer.
        headers.add(name: "Grpc-Metadata-hasleader", value: "true")
        return HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
    }
}
