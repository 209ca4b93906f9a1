import Etcd

/// Where the list of backends comes from when it comes from etcd (`-etcd` and companions).
public struct EtcdSettings: Sendable, Equatable {
    /// Client URLs of one cluster, used in turn when one fails.
    public var endpoints: [EtcdEndpoint]
    /// The key prefix the backends are listed under, ending with "/".
    public var prefix: String
    public var layout: EtcdLayout
    /// How long one request to one member may take before the next member is tried.
    public var requestTimeout: Duration

    /// - Parameter requestTimeout: per member and request: 1s, so a member that hangs costs
    ///   a group's lease (3s at least) one keepalive, not three.
    public init(endpoints: [EtcdEndpoint], prefix: String, layout: EtcdLayout, requestTimeout: Duration = .seconds(1)) {
        self.endpoints = endpoints
        self.prefix = EtcdLayout.normalize(prefix: prefix)
        self.layout = layout
        self.requestTimeout = requestTimeout
    }

    /// Parses `-etcd`'s comma-separated URLs; the error names the bad one.
    public static func parseEndpoints(_ text: String) throws -> [EtcdEndpoint] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else { throw EtcdError.invalidEndpoint(text, "expected comma-separated URLs such as http://10.0.0.1:2379") }
        return try parts.map { try EtcdEndpoint(parsing: $0) }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
