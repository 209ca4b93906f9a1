/// When a backend that failed and came back is used again (`-failback`): the decisions of
/// the policy, on one backend's `Record`. The registry keeps the records, runs the hold-down
/// timers and saves the state file; this type only decides.
struct FailbackPolicy: Sendable {
    let settings: FailbackSettings

    /// What the policy remembers of one backend.
    struct Record: Sendable {
        /// Held out of rotation although it answers (hold-down, or until an operator says).
        var held = false
        /// The hold-down time of `hold` for this backend; doubles when it flaps.
        var holdDelay: Duration
        /// When it last went back into rotation.
        var lastReturn: Duration?
    }

    func record(heldAtStart: Bool) -> Record {
        Record(held: heldAtStart, holdDelay: settings.delay)
    }

    /// A backend failed. `hold` doubles its hold-down time if it fails again soon after
    /// returning (it flaps); `manual` holds it from now on if clients fail away from it: it was
    /// the backend new clients went to, and another one in rotation is up to take them.
    /// Returns whether the set of held backends changed (the state file must be saved).
    func failed(_ record: inout Record, now: Duration, wasCurrent: Bool, alternativeAvailable: Bool) -> Bool {
        switch settings.policy {
        case .auto:
            return false
        case .hold:
            let flapped = record.held || record.lastReturn.map { now - $0 < record.holdDelay * 2 } ?? false
            record.holdDelay = flapped ? min(record.holdDelay * 2, FailbackSettings.maximumDelay) : settings.delay
            return false
        case .manual:
            guard wasCurrent && alternativeAvailable && !record.held else { return false }
            record.held = true
            return true
        }
    }

    enum Return: Equatable {
        /// Back in rotation now.
        case inRotation
        /// Held until an operator allows it back (`manual`).
        case heldUntilOperator
        /// Held for this long (`hold`); then `released`.
        case heldFor(Duration)
    }

    /// A backend answers again: whether it goes back into rotation now.
    func returned(_ record: inout Record, now: Duration) -> Return {
        switch settings.policy {
        case .auto:
            record.lastReturn = now
            return .inRotation
        case .manual:
            return record.held ? .heldUntilOperator : .inRotation
        case .hold:
            record.held = true
            return .heldFor(record.holdDelay)
        }
    }

    /// Its hold-down time passed, or an operator let it back. Returns whether it was held.
    func released(_ record: inout Record, now: Duration) -> Bool {
        guard record.held else { return false }
        record.held = false
        record.lastReturn = now
        return true
    }
}
