/// The PROXY protocol header sent to backends before any client byte (HAProxy's
/// specification, proxy-protocol.txt), so that a backend such as MariaDB
/// (`proxy_protocol_networks`) sees the client's address instead of the proxy's.
public enum ProxyProtocolVersion: String, Sendable, CaseIterable {
    /// The text header: `PROXY TCP4 <client> <server> <client port> <server port>\r\n`.
    case v1
    /// The binary header: a 12-byte signature, then the addresses.
    case v2
}
