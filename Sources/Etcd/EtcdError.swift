import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What can go wrong talking to etcd. Each description names what failed in plain English,
/// since these end up in the proxy's log.
public enum EtcdError: Error, Sendable, CustomStringConvertible {
    /// An endpoint could not be parsed: the text, and why.
    case invalidEndpoint(String, String)
    /// Every endpoint failed; one reason per endpoint, e.g. "127.0.0.1:2379: connection refused".
    /// A watch whose connection breaks also ends with this (one reason: its endpoint's).
    case unreachable([String])
    /// The gateway answered with an error: the HTTP status and etcd's (gRPC) message.
    case server(status: Int, message: String)
    /// A watch's start revision was compacted: read again and watch from the read's revision.
    case compacted(compactRevision: Int64)
    /// The lease is gone: a keepalive found TTL <= 0, or etcd said "lease not found".
    case leaseExpired(Int64)
    /// The answer could not be understood (not JSON, or not the expected shape).
    case badResponse(String)
    /// One attempt took longer than the request timeout (a reason inside `.unreachable`).
    case timedOut

    public var description: String {
        switch self {
        case .invalidEndpoint(let text, let why):
            return "invalid etcd endpoint \"\(text)\": \(why)"
        case .unreachable(let reasons):
            return reasons.isEmpty ? "no etcd endpoint is configured" : "no etcd endpoint answered: " + reasons.joined(separator: "; ")
        case .server(let status, let message):
            return "etcd answered with an error (HTTP \(status)): \(message)"
        case .compacted(let revision):
            return "the etcd watch's start revision was compacted (compacted up to revision \(revision)): read again and watch from there"
        case .leaseExpired(let lease):
            return "etcd lease \(lease) has expired or does not exist"
        case .badResponse(let why):
            return "etcd sent an answer that could not be read: \(why)"
        case .timedOut:
            return "the etcd request timed out"
        }
    }

    /// A short reason for a failed attempt on one endpoint, for `.unreachable`: "connection
    /// refused" rather than NIO's type names, so the log says what happened.
    static func reason(for error: any Error) -> String {
        switch error {
        case let error as EtcdError:
            switch error {
            case .timedOut: return "timed out"
            case .server(let status, let message): return "HTTP \(status): \(message)"
            default: return error.description
            }
        case let error as IOError:
            return errnoText(error.errnoCode)
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return reason(for: first.error) }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "cannot resolve \(error.host): \(dns)" }
            return "cannot connect"
        case let error as ChannelError:
            switch error {
            case .connectTimeout: return "connect timed out"
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed: return "connection closed"
            default: return "\(error)"
            }
        default:
            return "\(error)"
        }
    }

    private static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        let message = String(cString: text)
        // strerror capitalises its first letter; the reasons read better in lower case.
        return message.prefix(1).lowercased() + message.dropFirst()
    }
}
