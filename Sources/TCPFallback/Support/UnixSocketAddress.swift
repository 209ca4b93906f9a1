#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `connect(2)` and `bind(2)` to a unix socket path, without Foundation.
public enum UnixSocketAddress {
    /// Connects `fd` to the socket at `path`; false with `errno` set on failure.
    public static func connect(_ fd: Int32, to path: String) -> Bool {
        withAddress(path) { Glibc.connect(fd, $0, $1) == 0 }
    }

    /// Binds `fd` to `path`; false with `errno` set on failure.
    public static func bind(_ fd: Int32, to path: String) -> Bool {
        withAddress(path) { Glibc.bind(fd, $0, $1) == 0 }
    }

    /// Calls `body` with a sockaddr_un for `path`; false with ENAMETOOLONG if it does not fit.
    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            errno = ENAMETOOLONG
            return false
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
