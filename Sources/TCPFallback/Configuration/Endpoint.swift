/// A `host:port` as written on the command line: `127.0.0.1:3306`, `[::1]:3306`,
/// `db1.example:3306`, or `:3306` (all interfaces, for the listener only).
///
/// Host names are kept as text and resolved when connecting, not at start-up, so that a
/// backend whose DNS name moves is followed.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The host without brackets; empty means every local interface.
    public let host: String
    public let port: Int

    /// What an address is for; it decides what is allowed and how errors read.
    public enum Role: String, Sendable {
        case listen, backend
    }

    /// Why an address was refused; the message names the address and its role.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let input: String
        public let role: Role
        public let reason: String
        public var description: String { "invalid \(role.rawValue) address \"\(input)\": \(reason)" }
    }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing input: String, role: Role) throws(ParseError) {
        func fail(_ reason: String) -> ParseError { ParseError(input: input, role: role, reason: reason) }
        let host: Substring
        let portText: Substring
        if input.hasPrefix("[") {
            guard let close = input.firstIndex(of: "]") else { throw fail("missing \"]\"") }
            host = input[input.index(after: input.startIndex)..<close]
            let after = input[input.index(after: close)...]
            guard after.hasPrefix(":") else {
                throw fail(after.isEmpty ? "missing port" : "unexpected \"\(after)\" after \"]\"")
            }
            portText = after.dropFirst()
            guard IPAddressText.isIPv6(host) else { throw fail("\"\(host)\" is not an IPv6 address") }
        } else {
            guard let colon = input.lastIndex(of: ":") else { throw fail("missing port") }
            host = input[..<colon]
            portText = input[input.index(after: colon)...]
            if host.contains(":") { throw fail("too many colons (write IPv6 addresses as [::1]:port)") }
            if let bad = host.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0))) }) {
                throw fail("invalid character \"\(bad)\" in host")
            }
        }
        if host.isEmpty && role == .backend { throw fail("missing host") }
        if portText.isEmpty { throw fail("missing port") }
        let lowest = role == .listen ? 0 : 1
        guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText),
            (lowest...65535).contains(port)
        else { throw fail("port \"\(portText)\" is not a number from \(lowest) to 65535") }
        self.init(host: String(host), port: port)
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The host is an IP address literal, so connecting needs no name lookup.
    public var isNumeric: Bool { IPAddressText.isIPv4(host[...]) || IPAddressText.isIPv6(host[...]) }
}
