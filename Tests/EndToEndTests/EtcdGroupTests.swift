import Etcd
import Foundation
import Testing
import TestSupport
import TCPFallback

#if canImport(Glibc)
import Glibc
#endif

extension EtcdProxyTests {
    /// Three proxies of one group (`-etcd-group`) against a real 3-member etcd cluster: they move
    /// together, only when a quorum sees the primary down; a member cut from the primary alone
    /// keeps following and says so; they survive the etcd leader's death and follow `-etcd-lost`
    /// while etcd is gone.
    @Suite(.serialized)
    struct EtcdGroupTests {
        /// The cluster, a primary and a replica, and the members; everything is removed at the end.
        final class Fixture: @unchecked Sendable {
            let cluster: EtcdCluster
            let directory: TemporaryDirectory
            var primary: TestServer
            let replica: TestServer
            /// Where each member is reached, and its process.
            var members: [(host: String, proxy: ProxyProcess)] = []
            /// How the members name the backends ("HOST:PORT").
            let primaryAddress: String
            let replicaAddress: String
            let etcdHost: String

            init(primaryHost: String = "127.0.0.1", replicaHost: String = "127.0.0.1", etcdHost: String = "127.0.0.1", bind: String = "127.0.0.1") async throws {
                cluster = try EtcdCluster(listenAddress: bind)
                directory = try TemporaryDirectory()
                primary = try TestServer.naming("primary", address: bind)
                replica = try TestServer.naming("replica", address: bind)
                primaryAddress = "\(primaryHost):\(primary.port)"
                replicaAddress = "\(replicaHost):\(replica.port)"
                self.etcdHost = etcdHost
                let client = EtcdClient(endpoints: try cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, requestTimeout: .seconds(3))
                try await client.put("/tcp-fallback/backends", value: Array("[\"\(primaryAddress)\", \"\(replicaAddress)\"]".utf8))
                await client.shutdown()
            }

            deinit {
                for member in members { member.proxy.stop() }
                cluster.stop()
            }

            func arguments(_ index: Int, _ extra: [String]) -> [String] {
                [
                    "-etcd", cluster.clientURLs(host: etcdHost).joined(separator: ","), "-etcd-group", "g", "-etcd-member", "m\(index)",
                    "-check-interval", "100ms", "-rise", "2", "-fall", "2", "-timeout", "500ms",
                    "-control", directory.file("m\(index).sock"),
                ] + extra
            }

            /// Starts a member on this host.
            func startMember(_ extra: [String] = []) throws {
                let index = members.count
                members.append(("127.0.0.1", try ProxyProcess(arguments(index, extra) + ["127.0.0.1:0"])))
            }

            /// Starts a member inside a test network's namespace, listening on its address.
            func startMember(in network: TestNetwork, _ extra: [String] = []) throws {
                let index = members.count
                let proxy = try ProxyProcess(
                    ["netns", "exec", network.name, ProxyProcess.binary.path] + arguments(index, extra) + ["0.0.0.0:0"],
                    executable: URL(fileURLWithPath: "/usr/sbin/ip"))
                members.append((network.remoteAddress, proxy))
            }

            /// What each member's next client gets: a backend's name, or "" when refused.
            func names() -> [String] {
                members.map { (try? TestSocket.backendName(viaProxyAt: $0.proxy.port, host: $0.host)) ?? "" }
            }

            func allGo(to name: String, within seconds: Int = 10) async -> Bool {
                await eventually(timeout: .seconds(seconds)) { names().allSatisfy { $0 == name } }
            }

            func ctl(_ member: Int, _ words: String...) throws -> (status: Int32, output: String) {
                try runProxyBinary(["ctl", "-control", directory.file("m\(member).sock")] + words)
            }

            func anyLogShows(_ text: String) async -> Bool {
                await eventually(timeout: .seconds(10)) { members.contains { $0.proxy.log.contains(text) } }
            }

            func allLogsShow(_ text: String) async -> Bool {
                await eventually(timeout: .seconds(10)) { members.allSatisfy { $0.proxy.log.contains(text) } }
            }

            var logs: String { members.enumerated().map { "--- m\($0.offset):\n\($0.element.proxy.log)" }.joined(separator: "\n") }
        }

        @Test func allMembersMoveTogetherWhenThePrimaryDiesAndComeBackWithIt() async throws {
            let group = try await Fixture()
            for _ in 0..<3 { try group.startMember() }
            #expect(await group.allGo(to: "primary"), "\(group.names()) \(group.logs)")
            #expect(group.members.contains { $0.proxy.log.contains("is elected to decide") }, "\(group.logs)")

            // Killed: every member moves, and no two disagree for long.
            let killed = ContinuousClock.now
            group.primary.stop()
            var firstDisagreement: ContinuousClock.Instant?
            var longestDisagreement = Duration.zero
            var switched = false
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                let names = group.names().filter { !$0.isEmpty }
                if Set(names).count > 1 {
                    firstDisagreement = firstDisagreement ?? ContinuousClock.now
                    longestDisagreement = max(longestDisagreement, ContinuousClock.now - firstDisagreement!)
                } else {
                    firstDisagreement = nil
                }
                if names.count == 3 && names.allSatisfy({ $0 == "replica" }) {
                    switched = true
                    break
                }
                try await Task.sleep(for: .microseconds(20_000))
            }
            let took = ContinuousClock.now - killed
            print("group of 3: all members moved to the replica \(took) after the primary was killed; members disagreed for at most \(longestDisagreement)")
            #expect(switched, "\(group.names()) \(group.logs)")
            // One watch round trip on loopback, plus the polling of this loop.
            #expect(longestDisagreement < .milliseconds(500), "\(group.logs)")
            #expect(group.logs.contains("decided \(group.replicaAddress)"), "\(group.logs)")

            // The backends' keys deleted, then the decision's: the group's keys are apart, and a
            // deleted decision is kept and written again, never "no decision".
            let client = EtcdClient(endpoints: try group.cluster.endpoints.map { try EtcdEndpoint(parsing: $0) }, requestTimeout: .seconds(3))
            try await client.deletePrefix("/tcp-fallback/")
            try await client.delete("/tcp-fallback.groups/g/decision")
            #expect(await group.anyLogShows("the decision's key was deleted; written again"), "\(group.logs)")
            #expect(group.names() == ["replica", "replica", "replica"], "\(group.logs)")
            try await client.put("/tcp-fallback/backends", value: Array("[\"\(group.primaryAddress)\", \"\(group.replicaAddress)\"]".utf8))
            await client.shutdown()

            // Back: the group fails back (auto), all together.
            group.primary = try TestServer.naming("primary", port: group.primary.port)
            #expect(await group.allGo(to: "primary"), "\(group.names()) \(group.logs)")
            let (status, shown) = try group.ctl(1, "show", "backends")
            #expect(status == 0)
            #expect(shown.contains("group g: decision \(group.primaryAddress) (epoch"), "\(shown)")
            #expect(shown.contains("3 live member(s)"), "\(shown)")
        }

        @Test func aManualFailbackFromOneMemberAppliesToAll() async throws {
            let group = try await Fixture()
            for _ in 0..<3 { try group.startMember(["-failback", "manual"]) }
            #expect(await group.allGo(to: "primary"), "\(group.logs)")
            group.primary.stop()
            #expect(await group.allGo(to: "replica"), "\(group.logs)")
            group.primary = try TestServer.naming("primary", port: group.primary.port)
            // Up again, but held by the group until an operator allows it back.
            #expect(await group.allLogsShow("backend \(group.primaryAddress) is back"), "\(group.logs)")
            try await Task.sleep(for: .microseconds(500_000))
            #expect(group.names() == ["replica", "replica", "replica"], "\(group.logs)")
            let (_, shown) = try group.ctl(0, "show", "backends")
            #expect(shown.contains("held: \(group.primaryAddress)"), "\(shown)")
            let (status, output) = try group.ctl(2, "failback", group.primaryAddress)
            #expect(status == 0, "\(output)")
            #expect(output.contains("back in rotation for group g"), "\(output)")
            #expect(await group.allGo(to: "primary"), "\(group.logs)")
        }

        @Test func anOperatorDisablesABackendForTheWholeGroupFromAnyMember() async throws {
            let group = try await Fixture()
            for _ in 0..<3 { try group.startMember() }
            #expect(await group.allGo(to: "primary"), "\(group.logs)")
            let (status, output) = try group.ctl(0, "disable", group.primaryAddress)
            #expect(status == 0, "\(output)")
            #expect(output.contains("is disabled for group g"), "\(output)")
            #expect(await group.allGo(to: "replica"), "\(group.names()) \(group.logs)")
            let (_, shown) = try group.ctl(2, "show", "backends")
            #expect(shown.contains("disabled: \(group.primaryAddress)"), "\(shown)")
            #expect(shown.contains("up,disabled"), "\(shown)")
            let (enabled, _) = try group.ctl(1, "enable", group.primaryAddress)
            #expect(enabled == 0)
            #expect(await group.allGo(to: "primary"), "\(group.names()) \(group.logs)")
        }

        @Test func aMemberWhoseEtcdWatchWentQuietStillFollows() async throws {
            let group = try await Fixture()
            for _ in 0..<3 { try group.startMember() }
            #expect(await group.allGo(to: "primary"), "\(group.logs)")
            // Every member watches through the first etcd member: stopped, it keeps their
            // connections open and says nothing more.
            group.cluster.pause(member: 0)
            defer { group.cluster.pause(member: 0, false) }
            group.primary.stop()
            #expect(await group.allGo(to: "replica", within: 15), "\(group.names()) \(group.logs)")
            #expect(await group.anyLogShows("the watch missed changes"), "\(group.logs)")
        }

        @Test func decisionsGoOnWhenTheEtcdLeaderDies() async throws {
            let group = try await Fixture()
            for _ in 0..<3 { try group.startMember() }
            #expect(await group.allGo(to: "primary"), "\(group.logs)")
            let leader = try #require(group.cluster.leaderIndex())
            group.cluster.kill(member: leader)
            group.primary.stop()
            #expect(await group.allGo(to: "replica", within: 15), "\(group.names()) \(group.logs)")
        }

        @Test func membersFollowEtcdLostWhileEtcdIsGoneAndRecover() async throws {
            let group = try await Fixture()
            try group.startMember(["-etcd-lost", "keep"])
            try group.startMember(["-etcd-lost", "keep"])
            try group.startMember(["-etcd-lost", "refuse"])
            #expect(await group.allGo(to: "primary"), "\(group.logs)")
            group.cluster.stopAll()
            // The lease (3s: three check intervals, at least 3s) runs out.
            #expect(await group.members[2].proxy.logShows("refusing new clients until etcd is back", timeout: .seconds(15)), "\(group.logs)")
            #expect(await group.members[0].proxy.logShows("serving the last decision", timeout: .seconds(5)), "\(group.logs)")
            #expect(group.names() == ["primary", "primary", ""], "\(group.logs)")
            let (_, shown) = try group.ctl(2, "show", "backends")
            #expect(shown.contains("etcd lost"), "\(shown)")
            try group.cluster.startAll()
            #expect(await group.allGo(to: "primary", within: 20), "\(group.names()) \(group.logs)")
            #expect(await group.members[2].proxy.logShows("etcd is back"), "\(group.logs)")
        }

        @Test(.enabled(if: TestNetwork.available, "needs root and iproute2"))
        func aMemberCutFromThePrimaryAloneKeepsFollowingAndSaysSo() async throws {
            // Two members here; one in a network namespace that reaches this host over a link.
            // The primary has an address of its own on that link, which the namespace can lose.
            let network = try TestNetwork()
            defer { network.remove() }
            let primaryHost = network.localAddress.split(separator: ".").prefix(2).joined(separator: ".") + ".250.\(Int.random(in: 1...250))"
            try network.addLocalAddress(primaryHost)
            let group = try await Fixture(primaryHost: primaryHost, replicaHost: network.localAddress, etcdHost: network.localAddress, bind: "0.0.0.0")
            try group.startMember()
            try group.startMember()
            try group.startMember(in: network)
            #expect(await group.allGo(to: "primary"), "\(group.names()) \(group.logs)")

            try network.block(primaryHost)
            let outsider = group.members[2].proxy
            #expect(await outsider.logShows("backend \(primaryHost)"), "\(outsider.log)")
            #expect(await outsider.logShows("but it is the group's decision"), "\(outsider.log)")
            // One of three sees it down: no quorum, so nobody moves; the outsider's clients fail.
            try await Task.sleep(for: .microseconds(1_000_000))
            #expect(group.names() == ["primary", "primary", ""], "\(group.logs)")
            #expect(!group.logs.contains("decided \(group.replicaAddress)"), "\(group.logs)")
            let (_, shown) = try group.ctl(2, "show", "backends")
            #expect(shown.contains("this member sees \(primaryHost):\(group.primary.port) down; it follows the group's decision"), "\(shown)")

            try network.block(primaryHost, false)
            #expect(await group.allGo(to: "primary"), "\(group.names()) \(group.logs)")
        }
    }
}
