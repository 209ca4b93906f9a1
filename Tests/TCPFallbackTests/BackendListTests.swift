import Logging
import Testing
import TestSupport
import TCPFallback

/// Replacing the list of backends while running (etcd, a reload): the diff, then the registry.
@Suite struct BackendListTests {
    static func endpoints(_ ports: [Int]) -> [Endpoint] { ports.map { Endpoint(host: "127.0.0.1", port: $0) } }

    @Test func theChangeNamesAddedRemovedAndReordered() {
        let change = BackendListChange(from: Self.endpoints([1, 2, 3]), to: Self.endpoints([3, 4, 1, 4]))
        #expect(change.added == Self.endpoints([4]))
        #expect(change.removed == Self.endpoints([2]))
        #expect(change.reordered)
        #expect(change.list == Self.endpoints([3, 4, 1]))
        #expect(change.summary == "added 127.0.0.1:4; removed 127.0.0.1:2; order 127.0.0.1:3, 127.0.0.1:4, 127.0.0.1:1")
        #expect(BackendListChange(from: Self.endpoints([1, 2]), to: Self.endpoints([1, 2])).isEmpty)
        let appended = BackendListChange(from: Self.endpoints([1, 2]), to: Self.endpoints([1, 2, 3]))
        #expect(!appended.reordered && appended.added == Self.endpoints([3]))
    }

    let clock = ManualClock()
    let check = ScriptedCheck()
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func makeRegistry() -> BackendRegistry {
        BackendRegistry(backends: Self.endpoints([1, 2, 3]), probeDelay: .seconds(30), healthCheck: check, clock: clock, logger: logger)
    }

    @Test func keptBackendsKeepTheirStateAndTakeTheirNewPlace() async {
        let registry = makeRegistry()
        let second = registry.backends[1]
        await registry.markDown(second, reason: "refused")
        await registry.replaceBackends(Self.endpoints([2, 1]), source: "test")
        #expect(registry.backends.map(\.endpoint.port) == [2, 1])
        #expect(registry.backends[0] === second)
        #expect(!registry.snapshot.isUp(second))
        #expect(registry.snapshot.current?.endpoint.port == 1)
        let reports = await registry.reports()
        #expect(reports.map(\.position) == [0, 1])
    }

    @Test func aNewBackendGetsNoClientUntilItsFirstCheckPasses() async {
        let registry = makeRegistry()
        check.setHealthy(3)  // the id the first added backend gets
        await registry.replaceBackends(Self.endpoints([4, 1, 2, 3]), source: "test")
        let added = registry.backends[0]
        #expect(added.id == 3)
        // The first check runs at once; until then, and if it failed, it is not tried.
        #expect(await eventually { registry.snapshot.current === added })
        #expect(registry.snapshot.connectOrder.first === added)
    }

    @Test func aNewBackendThatFailsItsCheckIsNeverTriedAndProbed() async {
        let registry = makeRegistry()
        await registry.replaceBackends(Self.endpoints([4, 1]), source: "test")
        let added = registry.backends[0]
        #expect(await eventually { check.calls.contains(added.id) })
        #expect(!registry.snapshot.connectOrder.contains { $0 === added })
        #expect(await registry.isProbing(added))
        check.setHealthy(added.id)
        clock.advance(by: .seconds(30))
        #expect(await eventually { registry.snapshot.current === added })
    }

    @Test func aRemovedBackendStopsGettingClientsAndItsProbeStops() async {
        let registry = makeRegistry()
        let first = registry.backends[0]
        await registry.markDown(first, reason: "refused")
        #expect(await registry.isProbing(first))
        await registry.replaceBackends(Self.endpoints([2, 3]), source: "test")
        #expect(!registry.snapshot.connectOrder.contains { $0 === first })
        #expect(!(await registry.isProbing(first)))
        // Reports about it change nothing.
        await registry.markUp(first)
        registry.reportConnectSuccess(first)
        #expect(registry.snapshot.status(of: first) == nil)
        #expect(await registry.reports().count == 2)
    }

    @Test func anEmptyListChangesNothing() async {
        let registry = makeRegistry()
        await registry.replaceBackends([], source: "test")
        #expect(registry.backends.count == 3)
    }
}
