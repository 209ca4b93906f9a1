import NIOConcurrencyHelpers
import NIOCore

/// Idle keep-alive connections per endpoint, so that a burst of requests (a keepalive every
/// few seconds, a read after a watch event) does not pay a TCP handshake each time. A
/// connection is in the pool only while no request uses it.
final class EtcdConnectionPool: Sendable {
    /// More idle connections than this per endpoint are closed rather than kept: the client
    /// is used by a few tasks at once, not hundreds.
    static let maximumIdlePerEndpoint = 4

    private struct State {
        var idle: [EtcdEndpoint: [any Channel]] = [:]
        var closed = false
    }

    private let state = NIOLockedValueBox(State())

    init() {}

    /// An idle connection to `endpoint` that is still open, or nil.
    func take(_ endpoint: EtcdEndpoint) -> (any Channel)? {
        var dead: [any Channel] = []
        defer { for channel in dead { channel.close(promise: nil) } }
        return state.withLockedValue { state in
            while let channel = state.idle[endpoint]?.popLast() {
                if channel.isActive { return channel }
                dead.append(channel)
            }
            return nil
        }
    }

    /// Keeps a connection whose last request ended cleanly; closes it when the pool is shut
    /// down or full.
    func put(_ channel: any Channel, for endpoint: EtcdEndpoint) {
        let kept = state.withLockedValue { state -> Bool in
            guard !state.closed, channel.isActive, state.idle[endpoint, default: []].count < Self.maximumIdlePerEndpoint else { return false }
            state.idle[endpoint, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    /// Closes every idle connection and returns them (to wait for); connections handed
    /// back later are closed too.
    @discardableResult
    func close() -> [any Channel] {
        let channels = state.withLockedValue { state -> [any Channel] in
            state.closed = true
            defer { state.idle = [:] }
            return state.idle.values.flatMap { $0 }
        }
        for channel in channels { channel.close(promise: nil) }
        return channels
    }
}
