import Etcd
import Foundation
import Testing
import TestSupport

extension EtcdClusterTests {
    /// The client while members die: each test has a cluster of its own to kill.
    @Suite
    struct EtcdFailoverTests {
        @Test func requestsGoThroughTheOtherMembersWhenTheFirstIsKilled() async throws {
            let cluster = try EtcdCluster()
            defer { cluster.stop() }
            let client = try cluster.client(timeout: .seconds(2))
            try await client.put("/failover/before", value: "1".bytes)  // leaves a pooled connection to member 0
            #expect(cluster.leaderIndex() != nil)

            cluster.kill(member: 0)
            // If member 0 led, the others elect a new leader first (a second at most here).
            try cluster.waitUntilHealthy(members: [1, 2])
            let leader = cluster.leaderIndex()
            #expect(leader == 1 || leader == 2)

            let start = ContinuousClock.now
            try await client.put("/failover/during", value: "2".bytes)
            #expect(try await client.get("/failover/before").keyValues.first?.valueText == "1")
            #expect(try await client.range(prefix: "/failover/").keyValues.count == 2)
            #expect(ContinuousClock.now - start < .seconds(2), "the dead endpoint should fail fast (connection refused)")

            // Restarted on its data, member 0 catches up with what was written without it.
            try cluster.start(member: 0)
            let alone = try cluster.client(members: [0])
            let caughtUp = await eventually(timeout: .seconds(10)) {
                (try? await alone.get("/failover/during").keyValues.first?.valueText) == "2"
            }
            #expect(caughtUp)
            await client.shutdown()
            await alone.shutdown()
        }

        @Test func allMembersDownFailsFastWithAReasonPerEndpoint() async throws {
            let cluster = try EtcdCluster()
            defer { cluster.stop() }
            let timeout = Duration.seconds(2)
            let client = try cluster.client(timeout: timeout)
            try await client.put("/down/kept", value: "v".bytes)

            cluster.stopAll()
            let start = ContinuousClock.now
            do {
                _ = try await client.get("/down/kept")
                Issue.record("a read succeeded with every member down")
            } catch EtcdError.unreachable(let reasons) {
                #expect(reasons.count == 3)
                for (reason, endpoint) in zip(reasons.sorted(), cluster.endpoints.sorted()) {
                    #expect(reason.hasPrefix(endpoint + ": "), "\(reason)")
                    #expect(reason.contains("connection refused"), "\(reason)")
                }
                #expect(EtcdError.unreachable(reasons).description.contains("connection refused"))
            }
            #expect(ContinuousClock.now - start < timeout)

            // The same watch fails the same way, at once.
            let ending = await ending(of: client.watch(prefix: "/down/", fromRevision: 0), timeout: .seconds(5))
            guard case .error(EtcdError.unreachable(let reasons)) = ending else {
                Issue.record("the watch ended with \(ending)")
                return
            }
            #expect(reasons.count == 3)

            // Back up on their data, the members still have the key.
            try cluster.startAll()
            #expect(try await client.get("/down/kept").keyValues.first?.valueText == "v")
        }

        @Test func aWatchEndsWithAnErrorWhenItsMemberIsKilled() async throws {
            let cluster = try EtcdCluster()
            defer { cluster.stop() }
            let writer = try cluster.client(members: [0, 2])
            let watcher = try cluster.client(members: [1])
            let from = try await writer.put("/watched/a", value: "1".bytes)

            let stream = watcher.watch(prefix: "/watched/", fromRevision: from)
            let first = try await collectEvents(stream, count: 1)
            #expect(first.first?.keyValue.key == "/watched/a")

            cluster.kill(member: 1)
            let ending = await ending(of: stream, timeout: .seconds(10))
            guard case .error(EtcdError.unreachable(let reasons)) = ending else {
                Issue.record("the watch ended with \(ending)")
                return
            }
            #expect(reasons.count == 1)
            #expect(reasons.first?.hasPrefix(cluster.endpoints[1] + ": ") == true, "\(reasons)")
        }

        @Test func aMemberWithoutALeaderIsPassedOverAtOnceAndEndsItsWatches() async throws {
            let cluster = try EtcdCluster()
            defer { cluster.stop() }
            let timeout = Duration.seconds(3)
            let client = try cluster.client(timeout: timeout)
            let from = try await client.put("/cut-off/a", value: "1".bytes)
            let watch = try cluster.client(members: [0]).watch(prefix: "/cut-off/", fromRevision: from)
            #expect(try await collectEvents(watch, count: 1).count == 1)

            // Member 0 alone: up, but without a quorum it has no leader.
            cluster.kill(member: 1)
            cluster.kill(member: 2)
            #expect(await eventually(timeout: .seconds(5)) { cluster.hasLeader(member: 0) == false }, "member 0 still names a leader")

            // It says "no leader" at once rather than holding the call for the whole timeout.
            let start = ContinuousClock.now
            do {
                _ = try await client.get("/cut-off/a")
                Issue.record("a read succeeded without a quorum")
            } catch EtcdError.unreachable(let reasons) {
                let first = reasons.first { $0.hasPrefix(cluster.endpoints[0] + ": ") }
                #expect(first?.contains("no leader") == true, "\(reasons)")
            }
            #expect(ContinuousClock.now - start < .seconds(1))

            // The open watch is ended by etcd (after a few election timeouts without leader).
            let ending = await ending(of: watch, timeout: .seconds(10))
            guard case .error(EtcdError.unreachable(let reasons)) = ending else {
                Issue.record("the watch ended with \(ending)")
                return
            }
            #expect(reasons.first?.contains("no leader") == true, "\(reasons)")
        }
    }
}
