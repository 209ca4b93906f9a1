import Testing
@testable import TCPFallback

/// The elected member's rule, on hand-made views: it moves only on a quorum.
@Suite struct GroupLeaderPolicyTests {
    let order = ["p:1", "r:2", "r:3"]

    func views(_ down: [[String]]) -> [GroupMemberView] {
        down.enumerated().map { index, down in
            GroupMemberView(member: "m\(index)", down: down, up: order.filter { !down.contains($0) })
        }
    }

    func policy(_ failback: FailbackSettings.Policy = .auto, quorum: GroupSettings.Quorum = .majority) -> GroupLeaderPolicy {
        GroupLeaderPolicy(quorum: quorum, failback: failback, holdDelay: .seconds(30))
    }

    func decision(_ backend: String?, epoch: Int64 = 4, held: [String] = []) -> GroupDecision {
        GroupDecision(epoch: epoch, backend: backend, held: held, by: "m0", reason: "test")
    }

    @Test func theFirstDecisionIsTheFirstBackendUpForAQuorum() {
        let next = policy().decide(order: order, views: views([["p:1"], [], []]), current: nil, leader: "m0", now: .zero, upSince: [:])
        #expect(next?.backend == "p:1")
        #expect(next?.epoch == 1)
    }

    @Test func oneMemberOfThreeSeeingTheBackendDownMovesNothing() {
        let next = policy().decide(order: order, views: views([["p:1"], [], []]), current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(next == nil)
    }

    @Test func aQuorumSeeingItDownMovesTheGroupAndBumpsTheEpoch() {
        let next = policy().decide(order: order, views: views([["p:1"], ["p:1"], []]), current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(next?.backend == "r:2")
        #expect(next?.epoch == 5)
        #expect(next?.held == [])
        #expect(next?.reason.contains("2 of 3 members see p:1 down") == true)
    }

    @Test func aQuorumCountCanBeGiven() {
        let one = policy(quorum: .count(1)).decide(order: order, views: views([["p:1"], [], []]), current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(one?.backend == "r:2")
        let all = policy(quorum: .count(3)).decide(order: order, views: views([["p:1"], ["p:1"], []]), current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(all == nil)
    }

    @Test func aSmallQuorumDoesNotMoveTheGroupBackAndForth() {
        // Quorum 1 of 3: one member sees p down, two see it up. The group leaves p once...
        let seen = views([["p:1"], [], []])
        let left = policy(quorum: .count(1)).decide(order: order, views: seen, current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(left?.backend == "r:2")
        // ...and does not fail back to it while a quorum still sees it down.
        #expect(policy(quorum: .count(1)).decide(order: order, views: seen, current: left, leader: "m0", now: .zero, upSince: [:]) == nil)
    }

    @Test func itMovesOnlyToABackendAQuorumSeesUp() {
        let next = policy().decide(order: order, views: views([["p:1", "r:2"], ["p:1", "r:2"], []]), current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(next?.backend == "r:3")
        let nowhere = policy().decide(
            order: order, views: views([["p:1", "r:2", "r:3"], ["p:1", "r:2", "r:3"], []]), current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(nowhere == nil)
    }

    @Test func failbackFollowsThePolicy() {
        let all = views([[], [], []])
        #expect(policy(.auto).decide(order: order, views: all, current: decision("r:2"), leader: "m0", now: .zero, upSince: [:])?.backend == "p:1")
        // manual: the backend the group left is held until an operator releases it.
        let left = policy(.manual).decide(order: order, views: views([["p:1"], ["p:1"], []]), current: decision("p:1"), leader: "m0", now: .zero, upSince: [:])
        #expect(left?.held == ["p:1"])
        #expect(policy(.manual).decide(order: order, views: all, current: decision("r:2", held: ["p:1"]), leader: "m0", now: .zero, upSince: [:]) == nil)
        #expect(policy(.manual).decide(order: order, views: all, current: decision("r:2", held: []), leader: "m0", now: .zero, upSince: [:])?.backend == "p:1")
        // hold: once a quorum has seen it up for the failback delay.
        let since = ["p:1": Duration.seconds(100)]
        #expect(policy(.hold).decide(order: order, views: all, current: decision("r:2"), leader: "m0", now: .seconds(110), upSince: since) == nil)
        #expect(policy(.hold).decide(order: order, views: all, current: decision("r:2"), leader: "m0", now: .seconds(130), upSince: since)?.backend == "p:1")
    }

    @Test func aBackendDisabledForTheGroupIsLeftAtOnceAndNotChosen() {
        var disabled = decision("p:1")
        disabled.disabled = ["p:1"]
        let next = policy().decide(order: order, views: views([[], [], []]), current: disabled, leader: "m0", now: .zero, upSince: [:])
        #expect(next?.backend == "r:2")
        #expect(next?.disabled == ["p:1"])
        #expect(next?.reason == "p:1 is disabled by an operator")
        // No failback to it while it is disabled.
        #expect(policy().decide(order: order, views: views([[], [], []]), current: next, leader: "m0", now: .zero, upSince: [:]) == nil)
    }

    @Test func aDecidedBackendThatLeftTheListIsReplaced() {
        let next = policy().decide(order: ["r:2", "r:3"], views: views([[], [], []]), current: decision("p:1", held: ["p:1"]), leader: "m0", now: .zero, upSince: [:])
        #expect(next?.backend == "r:2")
        #expect(next?.held == [])
    }

    @Test func theDecisionRoundTripsThroughJSON() {
        let original = decision("p:1", held: ["r:2"])
        #expect(GroupDecision.decode(original.encoded) == original)
        #expect(GroupDecision.decode(Array("not json".utf8)) == nil)
        #expect(GroupSettings.Quorum("majority")?.needed(live: 4) == 3)
        #expect(GroupSettings.Quorum("2")?.needed(live: 1) == 1)
        #expect(GroupSettings.Quorum("0") == nil)
    }
}
