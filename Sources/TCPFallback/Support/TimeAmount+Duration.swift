import NIOCore

extension TimeAmount {
    /// The same span as a Swift `Duration`, for NIO APIs.
    init(_ duration: Duration) {
        self = .nanoseconds(duration.nanosecondsClamped)
    }
}
