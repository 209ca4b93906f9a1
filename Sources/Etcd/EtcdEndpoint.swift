#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One etcd member's client address. Only plain HTTP: the JSON gateway is reached without TLS,
/// so an `https://` URL is refused rather than silently sent in clear text.
public struct EtcdEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses "http://127.0.0.1:2379" or "127.0.0.1:2379" or "[::1]:2379" (a trailing "/" is
    /// allowed after a URL); throws `EtcdError.invalidEndpoint(text, why)` on anything else.
    /// The port is required: a default would hide a typo in a member list.
    public init(parsing text: String) throws {
        func invalid(_ why: String) -> EtcdError { .invalidEndpoint(text, why) }
        var rest = Substring(text)
        if let schemeEnd = rest.firstRange(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            switch scheme {
            case "http": break
            case "https": throw invalid("https is not supported: this client speaks plain HTTP to etcd's gateway (no TLS)")
            default: throw invalid("unknown scheme \"\(scheme)\" (use http:// or host:port)")
            }
            rest = rest[schemeEnd.upperBound...]
            if rest.hasSuffix("/") { rest = rest.dropLast() }
        }
        guard !rest.isEmpty else { throw invalid("no host and port") }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else {
            throw invalid("a path is not allowed, only host:port")
        }
        guard !rest.contains("@") else { throw invalid("user information is not supported") }

        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            // An IPv6 literal: brackets keep its colons apart from the port's.
            guard let close = rest.firstIndex(of: "]") else { throw invalid("missing \"]\" after the IPv6 address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let afterBracket = rest[rest.index(after: close)...]
            guard afterBracket.hasPrefix(":") else { throw invalid("missing \":port\" after the IPv6 address") }
            portText = afterBracket.dropFirst()
            guard Self.isIPv6Literal(String(host)) else { throw invalid("\"\(host)\" is not an IPv6 address") }
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw invalid("missing \":port\"") }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
            guard !host.contains(":") else { throw invalid("an IPv6 address must be written in brackets, e.g. [::1]:2379") }
            guard !host.isEmpty else { throw invalid("missing host") }
            let allowed = host.unicodeScalars.allSatisfy { scalar in
                (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar))) || scalar == "." || scalar == "-" || scalar == "_"
            }
            guard allowed else { throw invalid("\"\(host)\" is not a host name or IPv4 address") }
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText), (1...65535).contains(port)
        else { throw invalid("\"\(portText)\" is not a port (1-65535)") }
        self.host = String(host)
        self.port = port
    }

    /// "host:port", with brackets around an IPv6 address: usable as an HTTP Host header too.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    private static func isIPv6Literal(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }
}
