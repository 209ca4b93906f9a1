import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Listening sockets passed by systemd (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), and
/// the rule for which of them the proxy serves:
///
/// - the listen argument `systemd` takes every inherited TCP listening socket;
/// - `systemd:NAME` takes those whose `FileDescriptorName=` is NAME;
/// - an address such as `0.0.0.0:3306` or `:3306` takes the inherited sockets on that port
///   whose address matches (a wildcard on either side matches any address), so a unit file
///   written for a plain start keeps working when a .socket unit is added.
///
/// Inherited sockets that nothing selects are closed, and an address that selects none while
/// sockets were passed is an error: serving on a port systemd does not expect would be wrong.
public enum SocketActivation {
    /// One socket systemd passed.
    public struct InheritedSocket: Sendable, CustomStringConvertible {
        public let descriptor: Int32
        public let name: String
        public let address: BoundAddress?

        public init(descriptor: Int32, name: String, address: BoundAddress?) {
            self.descriptor = descriptor
            self.name = name
            self.address = address
        }

        public var description: String {
            "\(address.map(\.description) ?? "a non-TCP socket") (fd \(descriptor), name \"\(name)\")"
        }
    }

    /// The numeric address a socket is bound to.
    public struct BoundAddress: Sendable, Equatable, CustomStringConvertible {
        public let host: String
        public let port: Int
        public var isWildcard: Bool { host == "0.0.0.0" || host == "::" }
        public var description: String { Endpoint(host: host, port: port).description }
    }

    /// What the listen argument asks for.
    public enum Selection: Sendable, Equatable {
        case all
        case named(String)
        case matching(Endpoint)

        /// `systemd` and `systemd:NAME`; nil for an ordinary address.
        public init?(placeholder text: String) {
            if text == "systemd" {
                self = .all
            } else if text.hasPrefix("systemd:"), text.count > "systemd:".count {
                self = .named(String(text.dropFirst("systemd:".count)))
            } else {
                return nil
            }
        }
    }

    public struct SelectionError: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) { self.description = description }
    }

    /// Takes the sockets passed to this process and unsets `LISTEN_*`, so that nothing this
    /// process starts inherits them by mistake. Empty without socket activation.
    public static func takeInheritedSockets() -> [InheritedSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return [] }
        defer {
            if let names {
                for index in 0..<Int(count) { free(names[index]) }
                free(names)
            }
        }
        return (0..<count).map { offset in
            let descriptor = TCP_FALLBACK_SD_LISTEN_FDS_START + offset
            let name = names?[Int(offset)].map { String(cString: $0) } ?? "unknown"
            return InheritedSocket(descriptor: descriptor, name: name, address: boundStreamAddress(descriptor))
        }
    }

    /// The sockets `selection` designates; closes the others.
    public static func select(_ sockets: [InheritedSocket], _ selection: Selection) throws(SelectionError) -> [InheritedSocket] {
        let chosen: [InheritedSocket]
        do {
            chosen = try choose(sockets, selection)
        } catch {
            for socket in sockets { close(socket.descriptor) }
            throw error
        }
        for socket in sockets where !chosen.contains(where: { $0.descriptor == socket.descriptor }) {
            close(socket.descriptor)
        }
        return chosen
    }

    /// The sockets `selection` designates, closing none: several listeners of a configuration
    /// file choose from the same sockets, and the caller closes those no one chose.
    public static func choose(_ sockets: [InheritedSocket], _ selection: Selection) throws(SelectionError) -> [InheritedSocket] {
        let streams = sockets.filter { $0.address != nil }
        let chosen: [InheritedSocket]
        switch selection {
        case .all:
            chosen = streams
        case .named(let name):
            chosen = streams.filter { $0.name == name }
        case .matching(let endpoint):
            chosen = streams.filter { socket in
                guard let address = socket.address, address.port == endpoint.port else { return false }
                let wildcard = endpoint.host.isEmpty || endpoint.host == "0.0.0.0" || endpoint.host == "::"
                return wildcard || address.isWildcard || address.host == endpoint.host
            }
        }
        guard !chosen.isEmpty else {
            let passed = sockets.isEmpty ? "none" : sockets.map(\.description).joined(separator: ", ")
            switch selection {
            case .all, .named:
                throw SelectionError(description: "socket activation: no inherited TCP listening socket fits the listen address (systemd passed: \(passed))")
            case .matching(let endpoint):
                throw SelectionError(description: "socket activation: no inherited socket matches the listen address \(endpoint) (systemd passed: \(passed)); use \"systemd\" as the listen address to serve on all of them")
            }
        }
        return chosen
    }

    /// The local address of a TCP listening socket, or nil for any other kind.
    public static func boundStreamAddress(_ descriptor: Int32) -> BoundAddress? {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == SocketFlags.stream else {
            return nil
        }
        var listening: Int32 = 0
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening != 0 else { return nil }
        var storage = sockaddr_storage()
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        func host() -> String { String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var raw = address.pointee.sin_addr
                    inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
                    return BoundAddress(host: host(), port: Int(UInt16(bigEndian: address.pointee.sin_port)))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var raw = address.pointee.sin6_addr
                    inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                    return BoundAddress(host: host(), port: Int(UInt16(bigEndian: address.pointee.sin6_port)))
                }
            }
        default:
            return nil
        }
    }
}
