#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Recognises IP address literals with the C library's own parser.
enum IPAddressText {
    static func isIPv4(_ text: Substring) -> Bool { parses(text, family: AF_INET) }
    static func isIPv6(_ text: Substring) -> Bool { parses(text, family: AF_INET6) }

    private static func parses(_ text: Substring, family: Int32) -> Bool {
        var buffer = in6_addr()
        return String(text).withCString { inet_pton(family, $0, &buffer) } == 1
    }
}
