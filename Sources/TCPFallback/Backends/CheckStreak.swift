/// The active checks' bookkeeping for one backend (`-check-interval`, `-rise`, `-fall`):
/// consecutive results of one kind, when the next check is due, and when a streak changes
/// the backend's state. The registry acts on the verdicts.
struct CheckStreak: Sendable {
    /// Consecutive passed and failed checks; a result of one kind resets the other.
    private(set) var successes = 0
    private(set) var failures = 0

    /// The wait before the next check: shorter while a streak could change the state.
    func nextDelay(isUp: Bool, _ settings: ActiveChecks) -> Duration {
        let inTransition = isUp ? failures > 0 : successes > 0
        return inTransition ? settings.transitionInterval : settings.interval
    }

    /// A passed check; true when it brings a down backend back (`rise` in a row).
    mutating func passed(isUp: Bool, _ settings: ActiveChecks) -> Bool {
        failures = 0
        successes += 1
        return !isUp && successes >= settings.rise
    }

    /// A failed check; true when it marks an up backend down (`fall` in a row).
    mutating func failed(isUp: Bool, _ settings: ActiveChecks) -> Bool {
        successes = 0
        failures += 1
        return isUp && failures >= settings.fall
    }

    /// The backend changed state by other evidence (a client's connect): streaks start over.
    mutating func stateChanged() {
        successes = 0
        failures = 0
    }
}
