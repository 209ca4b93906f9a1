/// Which backends a listener's clients may go to, by what the servers are (`-role`).
public enum BackendRole: String, Sendable, CaseIterable {
    /// The first backend in order that is up, whatever it is (the original's behaviour).
    case any
    /// The first backend in order that is up and writable (the MySQL primary).
    case writer
    /// Backends that are up, read-only, replicating and not too far behind (MySQL replicas).
    case reader
}

/// What a writer listener does when more than one backend is writable (`-split-brain`).
public enum SplitBrainPolicy: String, Sendable, CaseIterable {
    /// Accept no new writer connections until one writable backend is left: writes to two
    /// primaries diverge, and only an operator can tell which one is right.
    case refuse
    /// Send writers to the first writable backend in order.
    case first
}

/// Where a reader listener's clients go when no replica qualifies (`-reader-fallback`).
public enum ReaderFallback: String, Sendable, CaseIterable {
    /// To the writer (reads see fresh data; the primary takes their load).
    case writer
    /// Nowhere: the client is closed (or queued with `-queue-timeout`).
    case none
}

/// How a role chooses backends: the settings of `-role` and its companions.
public struct RoleSettings: Sendable, Equatable {
    public var role: BackendRole = .any
    public var splitBrain: SplitBrainPolicy = .refuse
    /// Replicas further behind than this are not read from; nil: no limit.
    public var maxLag: Duration? = .seconds(30)
    public var readerFallback: ReaderFallback = .writer

    public init() {}
}
