import Etcd
import Foundation
import Testing
import TestSupport

/// One etcd cluster for a whole suite (started before its first test, stopped after its
/// last): the suite's tests do not kill members, so they share one, each under its own key
/// prefix, instead of paying a cluster start each.
struct SharedEtcdCluster: SuiteTrait, TestScoping {
    @TaskLocal static var current: EtcdCluster?

    /// Once for the suite, not once per test.
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let cluster = try EtcdCluster()
        defer { cluster.stop() }
        try await Self.$current.withValue(cluster) {
            try await function()
        }
    }

    /// The suite's cluster; fails the test when called outside a suite with the trait.
    static func cluster() throws -> EtcdCluster {
        try #require(current, "no shared etcd cluster: the suite needs the .sharedEtcdCluster trait")
    }
}

extension Trait where Self == SharedEtcdCluster {
    static var sharedEtcdCluster: Self { Self() }
}

extension EtcdCluster {
    /// The members' endpoints as the client takes them.
    func etcdEndpoints(_ members: [Int]? = nil) throws -> [EtcdEndpoint] {
        let all = try endpoints.map { try EtcdEndpoint(parsing: $0) }
        return (members ?? Array(all.indices)).map { all[$0] }
    }

    func client(members: [Int]? = nil, timeout: Duration = .seconds(3)) throws -> EtcdClient {
        EtcdClient(endpoints: try etcdEndpoints(members), requestTimeout: timeout)
    }
}

/// A key prefix of its own for each test, so tests sharing a cluster do not see each other.
func uniquePrefix(_ name: String = #function) -> String {
    let tag = name.prefix(while: { $0 != "(" })
    return "/tests/\(tag)-\(UInt32.random(in: 0...UInt32.max))/"
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}

/// Reads watch batches until `count` events arrived or `timeout` passed; returns the events.
func collectEvents(
    _ stream: AsyncThrowingStream<EtcdWatchBatch, any Error>, count: Int, timeout: Duration = .seconds(10)
) async throws -> [EtcdWatchEvent] {
    try await withThrowingTaskGroup(of: [EtcdWatchEvent]?.self) { group in
        group.addTask {
            var events: [EtcdWatchEvent] = []
            for try await batch in stream {
                events += batch.events
                if events.count >= count { break }
            }
            return events
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let events = first else {
            Issue.record("the watch gave fewer than \(count) events within \(timeout)")
            return []
        }
        return events
    }
}

/// How a watch stream ended, if it did.
enum WatchEnding {
    case error(any Error)
    case finishedWithoutError
    case stillRunning

    var error: (any Error)? {
        if case .error(let error) = self { return error }
        return nil
    }
}

/// Reads a watch stream (skipping its batches) until it ends or `timeout` passes.
func ending(of stream: AsyncThrowingStream<EtcdWatchBatch, any Error>, timeout: Duration = .seconds(10)) async -> WatchEnding {
    await withTaskGroup(of: WatchEnding.self) { group in
        group.addTask {
            do {
                for try await _ in stream {}
                return .finishedWithoutError
            } catch {
                return .error(error)
            }
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return .stillRunning
        }
        defer { group.cancelAll() }
        return await group.next() ?? .stillRunning
    }
}
