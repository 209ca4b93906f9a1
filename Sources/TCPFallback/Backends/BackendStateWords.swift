/// The one description of a backend's state, in words, that the stats lines, `show backends`
/// (text and JSON) and the metrics all use, so they cannot drift apart.
extension BackendRegistry.Report {
    /// Its health: "up" or "down".
    public var health: String { isUp ? "up" : "down" }

    /// What keeps it from new clients besides its health, most lasting first: an operator's
    /// state ("disabled", "draining"), the failback policy's hold ("held"), and "new" for a
    /// backend added while running and not checked yet.
    public var conditions: [String] {
        (administrativeState == .enabled ? [] : [administrativeState.rawValue]) + (isHeld ? ["held"] : []) + (isNew ? ["new"] : [])
    }

    /// The one state the metrics label shows: the first condition, else the health.
    public var state: String { conditions.first ?? health }

    /// Every state `state` can take, for the metrics (one series each).
    public static let states = ["up", "down", "held", "disabled", "draining", "new"]
}
