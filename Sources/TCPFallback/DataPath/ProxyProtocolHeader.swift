/// Builds the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that
/// tells a backend who the client is: its address and the address it connected to.
enum ProxyProtocolHeader {
    /// The v2 signature: a byte sequence no other protocol starts with.
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// The header for a client at `source` that connected to `destination` (our listener).
    /// An IPv4 client of a dual-stack listener is described as IPv4. When the two addresses
    /// are not of one family, or one is unknown, the header says so (v1 `UNKNOWN`, v2
    /// `AF_UNSPEC`) and the backend uses the connection's own addresses.
    static func make(_ version: ProxyProtocolVersion, source: PeerAddress, destination: PeerAddress) -> [UInt8] {
        let source = source.unmapped
        let destination = destination.unmapped
        let family: PeerAddressFamily?
        switch (source.family, destination.family) {
        case (.v4, .v4): family = .v4
        case (.v6, .v6): family = .v6
        default: family = nil
        }
        switch version {
        case .v1:
            guard let family else { return Array("PROXY UNKNOWN\r\n".utf8) }
            let name = family == .v4 ? "TCP4" : "TCP6"
            return Array("PROXY \(name) \(source.host) \(destination.host) \(source.port) \(destination.port)\r\n".utf8)
        case .v2:
            var header = v2Signature
            header.append(0x21)  // version 2, command PROXY
            guard let family else {
                header += [0x00, 0x00, 0x00]  // AF_UNSPEC, no address block
                return header
            }
            header.append(family == .v4 ? 0x11 : 0x21)  // TCP over IPv4 / IPv6
            let length = family == .v4 ? 12 : 36
            header += [UInt8(length >> 8), UInt8(length & 0xFF)]
            header += source.addressBytes
            header += destination.addressBytes
            header += [UInt8(source.port >> 8), UInt8(source.port & 0xFF)]
            header += [UInt8(destination.port >> 8), UInt8(destination.port & 0xFF)]
            return header
        }
    }

    private enum PeerAddressFamily { case v4, v6 }
}
