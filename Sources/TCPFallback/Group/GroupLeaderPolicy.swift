/// The elected member's rule for the group's decision. Pure: the views of the live members,
/// the list and the current decision in; the next decision (or none to write) out.
///
/// Contract:
/// - the group moves off the decided backend only when a quorum of live members sees it down,
///   and only to a backend a quorum sees up;
/// - it moves back up the list (failback) to a backend a quorum sees up and that the failback
///   policy does not hold: `auto` at once, `hold` once it has been up for `holdDelay`,
///   `manual` never by itself: a backend the group left is held until an operator releases it;
/// - a backend an operator disabled or set draining for the group is left at once (no quorum
///   needed: it is a decision already) and not chosen until enabled;
/// - a decided backend that left the list is replaced by the first one a quorum sees up.
struct GroupLeaderPolicy: Sendable {
    let quorum: GroupSettings.Quorum
    let failback: FailbackSettings.Policy
    let holdDelay: Duration

    /// - Parameters:
    ///   - upSince: since when (in the leader's clock) a quorum has seen each backend up.
    func decide(order: [String], views: [GroupMemberView], current: GroupDecision?, leader: String, now: Duration, upSince: [String: Duration]) -> GroupDecision? {
        let needed = quorum.needed(live: max(views.count, 1))
        let held = (current?.held ?? []).filter(order.contains)
        func votes(_ backend: String, _ side: KeyPath<GroupMemberView, [String]>) -> Int { views.filter { $0[keyPath: side].contains(backend) }.count }
        // Up for a quorum and not down for one: with a quorum of half the group or less, a
        // backend can have both, and moving to it would only move the group back.
        let quorumUp = order.filter { votes($0, \.up) >= needed && votes($0, \.down) < needed }
        let outOfService = { (backend: String) in current?.administrativeState(of: backend) ?? .enabled != .enabled }
        let candidates = quorumUp.filter { !held.contains($0) && !outOfService($0) }
        let epoch = (current?.epoch ?? 0) + 1
        func decision(_ backend: String?, held: [String], _ reason: String) -> GroupDecision? {
            let next = GroupDecision(
                epoch: epoch, backend: backend, held: held, disabled: current?.disabled, draining: current?.draining, by: leader, reason: reason)
            guard let current else { return next }
            return current.backend == backend && current.held == held ? nil : next
        }
        guard let decided = current?.backend, order.contains(decided) else {
            guard let first = candidates.first else { return current?.backend == nil ? nil : decision(nil, held: held, "no backend is up for a quorum") }
            let why = current?.backend.map { "\($0) left the list" } ?? "first decision"
            return decision(first, held: held, "\(why); \(first) is up for \(votes(first, \.up)) of \(views.count) members")
        }
        if outOfService(decided) {
            guard let next = candidates.first else { return nil }
            return decision(next, held: held, "\(decided) is \(current!.administrativeState(of: decided).rawValue) by an operator")
        }
        let down = votes(decided, \.down)
        if down >= needed {
            guard let next = candidates.first(where: { $0 != decided }) else { return nil }
            let heldNow = failback == .manual ? held + [decided] : held
            return decision(next, held: heldNow, "\(down) of \(views.count) members see \(decided) down (quorum \(needed))")
        }
        // Failback: a better backend in the list that the policy lets back.
        guard let position = order.firstIndex(of: decided),
            let better = candidates.first(where: { order.firstIndex(of: $0)! < position }),
            failback != .hold || upSince[better].map({ now - $0 >= holdDelay }) == true
        else { return decision(decided, held: held, "held backends changed") }
        return decision(better, held: held, "failback: \(better) is up for \(votes(better, \.up)) of \(views.count) members")
    }
}
