#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An IP address and port of a socket's peer or local end, kept as compact bytes and put into
/// text only when a log line or a PROXY header needs it: most connections log nothing.
struct PeerAddress: CustomStringConvertible, Sendable, Equatable {
    enum Family: Sendable, Equatable {
        case unknown
        /// The address in network byte order.
        case v4(UInt32)
        /// The 16 address bytes, in network order, as two words.
        case v6(UInt64, UInt64)
    }

    let family: Family
    let port: UInt16

    init() {
        family = .unknown
        port = 0
    }

    /// Reads an AF_INET or AF_INET6 address; anything else is `unknown`.
    init(_ storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            family = .v4(address.sin_addr.s_addr)
            port = UInt16(bigEndian: address.sin_port)
        case AF_INET6:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let words = withUnsafeBytes(of: address.sin6_addr) { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
            family = .v6(words.0, words.1)
            port = UInt16(bigEndian: address.sin6_port)
        default:
            family = .unknown
            port = 0
        }
    }

    /// An IPv6 address that carries an IPv4 one (::ffff:a.b.c.d, what a dual-stack listener
    /// reports for IPv4 clients), as that IPv4 address.
    var unmapped: PeerAddress {
        guard case .v6(let high, let low) = family, high == 0 else { return self }
        let bytes = withUnsafeBytes(of: low) { Array($0) }
        guard bytes[0..<4] == [0, 0, 0xff, 0xff] else { return self }
        let v4 = withUnsafeBytes(of: (bytes[4], bytes[5], bytes[6], bytes[7])) { $0.load(as: UInt32.self) }
        return PeerAddress(family: .v4(v4), port: port)
    }

    private init(family: Family, port: UInt16) {
        self.family = family
        self.port = port
    }

    /// The address bytes in network order: 4 for IPv4, 16 for IPv6, none when unknown.
    var addressBytes: [UInt8] {
        switch family {
        case .unknown: return []
        case .v4(let address): return withUnsafeBytes(of: address) { Array($0) }
        case .v6(let high, let low): return withUnsafeBytes(of: (high, low)) { Array($0) }
        }
    }

    /// The address alone, as text: `10.0.0.1`, `::1`.
    var host: String {
        let bytes = addressBytes
        let family: Int32
        switch self.family {
        case .unknown: return "unknown"
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { source in
            text.withUnsafeMutableBufferPointer { inet_ntop(family, source.baseAddress, $0.baseAddress, socklen_t($0.count)) != nil }
        }
        return ok ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown"
    }

    /// `10.0.0.1:3306` or `[::1]:3306`.
    var description: String {
        switch family {
        case .unknown: return "unknown client"
        case .v4: return "\(host):\(port)"
        case .v6: return "[\(host)]:\(port)"
        }
    }
}
