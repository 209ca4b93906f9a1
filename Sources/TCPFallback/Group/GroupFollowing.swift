/// What a member of a group (`-etcd-group`) tells its registry: where the group sends new
/// clients, or why this member accepts none. The registry's selection follows it instead of
/// the member's own view; the member's checks still run and are published to the group.
public struct GroupFollowing: Sendable, Equatable {
    /// The decided backend; nil while the group has decided none.
    public var decided: Endpoint?
    public var epoch: Int64
    /// Set while this member accepts no new client (no decision yet, or etcd lost under
    /// `-etcd-lost refuse`).
    public var refusing: String?

    public init(decided: Endpoint?, epoch: Int64, refusing: String? = nil) {
        self.decided = decided
        self.epoch = epoch
        self.refusing = refusing
    }
}
