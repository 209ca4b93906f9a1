import Etcd
import Foundation
import Testing
import TestSupport

extension EtcdClusterTests {
    /// The client against a real 3-member etcd cluster that stays whole: reads, writes,
    /// transactions, leases, watches. One cluster for the suite, a key prefix per test.
    @Suite(.sharedEtcdCluster)
    struct EtcdClientTests {
        @Test func putGetRangeDeleteAndDeletePrefix() async throws {
            let client = try SharedEtcdCluster.cluster().client()
            let prefix = uniquePrefix()
            // Just past the prefix's range ("/x/" ends before "/x0"): must never be included.
            let neighbour = String(prefix.dropLast()) + "0"
            try await client.put(neighbour, value: "outside".bytes)

            let first = try await client.put(prefix + "b", value: "2".bytes)
            let second = try await client.put(prefix + "a", value: "1".bytes)
            let third = try await client.put(prefix + "c/x", value: [0, 0xff, 1])
            #expect(first < second && second < third)

            let a = try await client.get(prefix + "a")
            #expect(a.keyValues.count == 1)
            #expect(a.keyValues.first?.valueText == "1")
            #expect(a.keyValues.first?.version == 1)
            #expect(a.keyValues.first?.createRevision == second)
            #expect(a.keyValues.first?.modRevision == second)
            #expect(a.revision >= third)
            #expect(try await client.get(prefix + "missing").keyValues.isEmpty)

            let all = try await client.range(prefix: prefix)
            #expect(all.keyValues.map(\.key) == [prefix + "a", prefix + "b", prefix + "c/x"])
            #expect(all.keyValues.last?.value == [0, 0xff, 1])
            #expect(all.keyValues.last?.valueText == nil)
            #expect(all.revision >= third)

            let rewritten = try await client.put(prefix + "a", value: "1b".bytes)
            let again = try #require(try await client.get(prefix + "a").keyValues.first)
            #expect(again.version == 2)
            #expect(again.createRevision == second)
            #expect(again.modRevision == rewritten)

            let unicode = prefix + "ключ ✓"
            try await client.put(unicode, value: "значение".bytes)
            #expect(try await client.get(unicode).keyValues.first?.valueText == "значение")
            #expect(try await client.get(unicode).keyValues.first?.key == unicode)

            // The empty prefix is every key.
            let everything = try await client.range(prefix: "").keyValues.map(\.key)
            #expect(everything.contains(prefix + "a") && everything.contains(neighbour))

            try await client.delete(prefix + "b")
            try await client.delete(prefix + "never-there")
            #expect(try await client.range(prefix: prefix).keyValues.map(\.key) == [prefix + "a", prefix + "c/x", unicode])
            try await client.deletePrefix(prefix + "c")
            #expect(try await client.range(prefix: prefix).keyValues.map(\.key) == [prefix + "a", unicode])
            try await client.deletePrefix(prefix)
            #expect(try await client.range(prefix: prefix).keyValues.isEmpty)
            #expect(try await client.get(neighbour).keyValues.first?.valueText == "outside")
            try await client.delete(neighbour)
            await client.shutdown()
        }

        @Test func transactionCreatesIfAbsentAndReportsTheBranchTaken() async throws {
            let client = try SharedEtcdCluster.cluster().client()
            let key = uniquePrefix() + "leader"

            let created = try await client.txn(
                compare: [.version(key: key, equals: 0)],
                success: [.put(key: key, value: "me".bytes), .get(key: key)],
                failure: [.get(key: key)])
            #expect(created.succeeded)
            #expect(created.gets.count == 1)
            #expect(created.gets.first?.first?.valueText == "me")
            let mine = try #require(created.gets.first?.first)

            let refused = try await client.txn(
                compare: [.version(key: key, equals: 0)],
                success: [.put(key: key, value: "you".bytes), .get(key: key)],
                failure: [.get(key: key), .get(key: key + "/other")])
            #expect(!refused.succeeded)
            #expect(refused.gets.count == 2)
            #expect(refused.gets.first?.first?.valueText == "me")
            #expect(refused.gets.last?.isEmpty == true)
            #expect(refused.revision >= created.revision)

            // Compare-and-set on the value, the mod revision and the create revision.
            let byValue = try await client.txn(compare: [.value(key: key, equals: "me".bytes)], success: [.put(key: key, value: "me2".bytes)])
            #expect(byValue.succeeded)
            #expect(byValue.gets.isEmpty)
            let staleRevision = try await client.txn(
                compare: [.modRevision(key: key, equals: mine.modRevision)], success: [.put(key: key, value: "lost".bytes)], failure: [.get(key: key)])
            #expect(!staleRevision.succeeded)
            #expect(staleRevision.gets.first?.first?.valueText == "me2")
            let sameCreation = try await client.txn(
                compare: [.createRevision(key: key, equals: mine.createRevision), .version(key: key, equals: 2)],
                success: [.deletePrefix(key), .get(key: key)])
            #expect(sameCreation.succeeded)
            #expect(sameCreation.gets == [[]])
            try await client.put(key + "/x", value: "x".bytes)
            let deleteBranch = try await client.txn(
                compare: [.version(key: key, equals: 0)], success: [.delete(key: key + "/x"), .put(key: key + "/y", value: []), .get(key: key + "/y")])
            #expect(deleteBranch.succeeded)
            #expect(deleteBranch.gets.first?.first?.value == [])
            #expect(try await client.get(key + "/x").keyValues.isEmpty)
            try await client.deletePrefix(key)
        }

        @Test func leaseGrantKeepAliveAndRevoke() async throws {
            let client = try SharedEtcdCluster.cluster().client()
            let key = uniquePrefix() + "owned"
            let lease = try await client.grantLease(ttl: 10)
            try await client.put(key, value: "x".bytes, lease: lease)
            #expect(try await client.get(key).keyValues.first?.lease == lease)

            let ttl = try await client.keepAlive(lease)
            #expect((1...10).contains(ttl))

            try await client.revoke(lease)
            #expect(try await client.get(key).keyValues.isEmpty, "revoking a lease deletes its keys")
            do {
                _ = try await client.keepAlive(lease)
                Issue.record("a keepalive of a revoked lease succeeded")
            } catch EtcdError.leaseExpired(let gone) {
                #expect(gone == lease)
            }
            do {
                try await client.put(key, value: "y".bytes, lease: lease)
                Issue.record("a put with a revoked lease succeeded")
            } catch EtcdError.leaseExpired(let gone) {
                #expect(gone == lease)
            }
            do {
                try await client.revoke(lease)
                Issue.record("revoking a revoked lease succeeded")
            } catch EtcdError.leaseExpired(let gone) {
                #expect(gone == lease)
            }
        }

        @Test func aKeyVanishesWhenItsLeaseExpires() async throws {
            let client = try SharedEtcdCluster.cluster().client()
            let key = uniquePrefix() + "ephemeral"
            let lease = try await client.grantLease(ttl: 2)
            let start = ContinuousClock.now
            try await client.put(key, value: "soon gone".bytes, lease: lease)
            #expect(try await client.get(key).keyValues.count == 1)
            let vanished = try await eventually(timeout: .seconds(8)) { try await client.get(key).keyValues.isEmpty }
            #expect(vanished)
            #expect(ContinuousClock.now - start >= .seconds(1), "the key went before its lease's TTL")
            await #expect(throws: EtcdError.self) { try await client.keepAlive(lease) }
        }

        @Test func watchFromAPastRevisionSeesPutsAndDeletesInOrder() async throws {
            let client = try SharedEtcdCluster.cluster().client()
            let prefix = uniquePrefix()
            let outside = String(prefix.dropLast()) + "0"
            // Before the watch is opened: seen because the watch starts at `start`.
            let start = try await client.put(prefix + "a", value: "1".bytes)
            try await client.put(prefix + "b", value: "2".bytes)
            try await client.put(outside, value: "not watched".bytes)
            try await client.delete(prefix + "a")

            let stream = client.watch(prefix: prefix, fromRevision: start)
            try await client.put(prefix + "c", value: "3".bytes)
            try await client.deletePrefix(prefix)

            let events = try await collectEvents(stream, count: 6)
            let seen = events.map { "\($0.kind == .put ? "put" : "delete") \($0.keyValue.key.dropFirst(prefix.count))" }
            #expect(seen == ["put a", "put b", "delete a", "put c", "delete b", "delete c"])
            #expect(events.first?.keyValue.modRevision == start)
            #expect(events.first?.keyValue.valueText == "1")
            #expect(events.map(\.keyValue.modRevision) == events.map(\.keyValue.modRevision).sorted())
            // A deletion carries the key and its revision only.
            #expect(events[2].keyValue.value.isEmpty)
            #expect(events[2].keyValue.modRevision > events[1].keyValue.modRevision)
            try await client.delete(outside)
        }

        @Test func watchOnACompactedRevisionEndsWithCompacted() async throws {
            let client = try SharedEtcdCluster.cluster().client()
            let key = uniquePrefix() + "k"
            let old = try await client.put(key, value: "1".bytes)
            let newer = try await client.put(key, value: "2".bytes)
            try await client.compact(revision: newer)

            let ending = await ending(of: client.watch(prefix: key, fromRevision: old))
            guard case .error(EtcdError.compacted(let compactRevision)) = ending else {
                Issue.record("the watch ended with \(ending), not .compacted")
                return
            }
            #expect(compactRevision == newer)

            // From the compaction on, the history is there.
            let events = try await collectEvents(client.watch(prefix: key, fromRevision: newer), count: 1)
            #expect(events.first?.keyValue.valueText == "2")
        }

        @Test func droppingAWatchClosesItsConnection() async throws {
            let cluster = try SharedEtcdCluster.cluster()
            let client = try cluster.client(members: [0])
            let prefix = uniquePrefix()
            // etcd's count of watch streams: one per watch request of the gateway. The watches of
            // the tests before this one are closing (they were dropped): wait for none.
            func streams() -> Double { cluster.metric("etcd_debugging_mvcc_watch_stream_total", member: 0) ?? -1 }
            #expect(await eventually(timeout: .seconds(5)) { streams() == 0 }, "watch streams before: \(streams())")

            let start = try await client.put(prefix + "k", value: "1".bytes)
            let consumer = Task {
                try await collectEvents(client.watch(prefix: prefix, fromRevision: start), count: 100, timeout: .seconds(60))
            }
            let opened = await eventually(timeout: .seconds(5)) { streams() == 1 }
            #expect(opened, "the watch did not reach etcd")
            consumer.cancel()
            let closed = await eventually(timeout: .seconds(5)) { streams() == 0 }
            #expect(closed, "etcd still has the watch after its consumer was cancelled")
            _ = try? await consumer.value
        }

        @Test func anErrorOfEtcdIsThrownAsItIs() async throws {
            let client = try SharedEtcdCluster.cluster().client()
            let current = try await client.get("/no/such/key").revision
            do {
                try await client.compact(revision: current + 1000)
                Issue.record("compacting a future revision succeeded")
            } catch EtcdError.server(let status, let message) {
                #expect(status == 400)
                #expect(message.contains("future revision"), "\(message)")
            }
        }

        @Test func aHungEndpointTimesOutAndTheNextOneAnswers() async throws {
            let cluster = try SharedEtcdCluster.cluster()
            let hung = try HungServer()
            let hungEndpoint = EtcdEndpoint(host: "127.0.0.1", port: hung.port)
            let client = EtcdClient(endpoints: [hungEndpoint] + (try cluster.etcdEndpoints()), requestTimeout: .seconds(1))
            let key = uniquePrefix() + "k"

            let start = ContinuousClock.now
            try await client.put(key, value: "v".bytes)
            let first = ContinuousClock.now - start
            #expect(first >= .milliseconds(900) && first < .seconds(4), "\(first)")
            // The endpoint that answered is tried first from now on: no second timeout.
            let again = ContinuousClock.now
            #expect(try await client.get(key).keyValues.count == 1)
            #expect(ContinuousClock.now - again < .milliseconds(900))

            let alone = EtcdClient(endpoints: [hungEndpoint], requestTimeout: .milliseconds(500))
            let started = ContinuousClock.now
            do {
                _ = try await alone.get(key)
                Issue.record("a hung endpoint answered")
            } catch EtcdError.unreachable(let reasons) {
                #expect(reasons.count == 1)
                #expect(reasons.first?.hasPrefix("\(hungEndpoint): ") == true)
                #expect(reasons.first?.contains("timed out") == true, "\(reasons)")
            }
            #expect(ContinuousClock.now - started < .seconds(3))
            withExtendedLifetime(hung) {}
        }

        @Test func anEndpointThatIsNotEtcdIsPassedOver() async throws {
            let cluster = try SharedEtcdCluster.cluster()
            // An HTTP server that is not etcd's gateway: a web server's 404 page.
            let other = try TestServer { connection in
                _ = try connection.receive()
                try connection.send("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found")
                connection.shutdownWrite()
            }
            defer { other.stop() }
            let otherEndpoint = EtcdEndpoint(host: "127.0.0.1", port: other.port)
            let client = EtcdClient(endpoints: [otherEndpoint] + (try cluster.etcdEndpoints()))
            let key = uniquePrefix() + "k"
            try await client.put(key, value: "v".bytes)
            #expect(try await client.get(key).keyValues.count == 1)

            let alone = EtcdClient(endpoints: [otherEndpoint])
            do {
                _ = try await alone.get(key)
                Issue.record("a server that is not etcd answered")
            } catch EtcdError.unreachable(let reasons) {
                #expect(reasons == ["\(otherEndpoint): HTTP 404: Not Found"])
            }
        }
    }
}
