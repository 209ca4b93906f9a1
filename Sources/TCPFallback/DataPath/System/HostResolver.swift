import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Resolves a backend's host name to every address it has (getaddrinfo), in the resolver's
/// order of preference. It blocks, so loops call it from another thread (see `DataLoop`).
///
/// Contract: the list getaddrinfo returns is read within this call and freed before it returns.
enum HostResolver {
    struct Failure: Error, CustomStringConvertible {
        let host: String
        let reason: String
        var description: String { "cannot resolve host \"\(host)\": \(reason)" }
    }

    static func resolve(host: String, port: Int) -> Result<[SocketAddress], Failure> {
        var hints = addrinfo()
        hints.ai_socktype = SocketFlags.stream
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(Failure(host: host, reason: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let address = current.pointee.ai_addr {
                switch current.pointee.ai_family {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        addresses.append(SocketAddress($0.pointee, host: host))
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        addresses.append(SocketAddress($0.pointee, host: host))
                    }
                default:
                    break
                }
            }
            entry = current.pointee.ai_next
        }
        return addresses.isEmpty ? .failure(Failure(host: host, reason: "no addresses")) : .success(addresses)
    }
}
