import Logging
import Synchronization
import Testing
import TestSupport
import TCPFallback

/// A health check whose answers the test sets, and which counts its calls.
final class ScriptedCheck: HealthCheck {
    private let state = Locked<(healthy: Set<Int>, calls: [Int])>(([], []))

    func setHealthy(_ index: Int) { state.withLock { _ = $0.healthy.insert(index) } }

    var calls: [Int] { state.withLock { $0.calls } }

    func check(_ backend: Backend) async throws -> CheckObservation {
        let healthy = state.withLock { state -> Bool in
            state.calls.append(backend.id)
            return state.healthy.contains(backend.id)
        }
        if !healthy { throw CheckFailed() }
        return CheckObservation()
    }

    struct CheckFailed: Error, CustomStringConvertible {
        var description: String { "still down" }
    }
}

@Suite struct BackendRegistryTests {
    let clock = ManualClock()
    let check = ScriptedCheck()
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func makeRegistry(probeDelay: Duration? = .seconds(30)) -> BackendRegistry {
        BackendRegistry(
            backends: [Endpoint(host: "127.0.0.1", port: 1), Endpoint(host: "127.0.0.1", port: 2), Endpoint(host: "127.0.0.1", port: 3)],
            probeDelay: probeDelay, healthCheck: check, clock: clock, logger: logger)
    }

    @Test func allBackendsStartUpInOrder() {
        let registry = makeRegistry()
        #expect(registry.snapshot.connectOrder.map(\.id) == [0, 1, 2])
        #expect(registry.snapshot.backends.allSatisfy { $0.isUp })
    }

    @Test func downBackendsMoveToTheEndOfTheConnectOrder() async {
        let registry = makeRegistry()
        await registry.markDown(registry.backends[0], reason: "connection refused")
        #expect(registry.snapshot.connectOrder.map(\.id) == [1, 2, 0])
        await registry.markDown(registry.backends[2], reason: "connection refused")
        #expect(registry.snapshot.connectOrder.map(\.id) == [1, 0, 2])
        #expect(!registry.snapshot.isUp(registry.backends[0]))
    }

    @Test func probesEveryDelayUntilTheBackendAnswers() async throws {
        let registry = makeRegistry(probeDelay: .seconds(30))
        let backend = registry.backends[0]
        await registry.markDown(backend, reason: "connection refused")
        #expect(await registry.isProbing(backend))

        // Nothing happens before the delay has passed.
        #expect(await eventually { clock.sleeperCount == 1 })
        clock.advance(by: .seconds(29))
        #expect(check.calls.isEmpty)

        // Each delay brings one probe; a failed probe keeps it down.
        clock.advance(by: .seconds(1))
        #expect(await eventually { check.calls == [0] && clock.sleeperCount == 1 })
        #expect(!registry.snapshot.isUp(backend))
        clock.advance(by: .seconds(30))
        #expect(await eventually { check.calls == [0, 0] && clock.sleeperCount == 1 })

        // The probe that succeeds brings it back, and probing stops.
        check.setHealthy(0)
        clock.advance(by: .seconds(30))
        #expect(await eventually { registry.snapshot.isUp(backend) })
        #expect(registry.snapshot.connectOrder.map(\.id) == [0, 1, 2])
        #expect(await !registry.isProbing(backend))

        let report = try #require(await registry.reports().first)
        #expect(report.isUp)
        #expect(report.downtime == .seconds(90))
        #expect(report.lastError == "still down")
    }

    @Test func probesOfSeveralBackendsRunConcurrently() async {
        let registry = makeRegistry(probeDelay: .seconds(5))
        await registry.markDown(registry.backends[0], reason: "refused")
        await registry.markDown(registry.backends[1], reason: "refused")
        #expect(await eventually { clock.sleeperCount == 2 })
        check.setHealthy(1)
        clock.advance(by: .seconds(5))
        #expect(await eventually { registry.snapshot.isUp(registry.backends[1]) })
        #expect(!registry.snapshot.isUp(registry.backends[0]))
        #expect(Set(check.calls) == [0, 1])
    }

    @Test func markingDownTwiceKeepsOneProbe() async {
        let registry = makeRegistry(probeDelay: .seconds(5))
        await registry.markDown(registry.backends[0], reason: "refused")
        await registry.markDown(registry.backends[0], reason: "timed out")
        #expect(await eventually { clock.sleeperCount == 1 })
        let report = await registry.reports()[0]
        #expect(report.lastError == "timed out")
    }

    @Test func withoutProbesAClientConnectionBringsABackendBack() async {
        let registry = makeRegistry(probeDelay: nil)
        let backend = registry.backends[0]
        await registry.markDown(backend, reason: "refused")
        #expect(await !registry.isProbing(backend))
        #expect(clock.sleeperCount == 0)
        registry.reportConnectSuccess(backend)
        #expect(await eventually { registry.snapshot.isUp(backend) })
    }

    @Test func reportedFailuresCountAndMarkDown() async {
        let registry = makeRegistry()
        let backend = registry.backends[1]
        registry.reportConnectFailure(backend, error: ScriptedCheck.CheckFailed())
        #expect(await eventually { !registry.snapshot.isUp(backend) })
        #expect(backend.counters.values.connectErrors == 1)
    }

    @Test func shutdownStopsProbes() async {
        let registry = makeRegistry(probeDelay: .seconds(5))
        await registry.markDown(registry.backends[0], reason: "refused")
        #expect(await eventually { clock.sleeperCount == 1 })
        await registry.shutdown()
        #expect(await eventually { clock.sleeperCount == 0 })
        await registry.markDown(registry.backends[1], reason: "refused")
        #expect(registry.snapshot.isUp(registry.backends[1]))
    }
}

/// The pieces the registry delegates to, and what it logs for them.
@Suite struct RegistryPartsTests {
    @Test func aStateFileThatCannotBeSavedSaysSoInItsOwnWords() async {
        let log = LogCapture()
        var failback = FailbackSettings()
        failback.policy = .manual
        failback.stateFile = "/nonexistent-dir/state"
        let registry = BackendRegistry(
            backends: [Endpoint(host: "127.0.0.1", port: 1), Endpoint(host: "127.0.0.1", port: 2)],
            probeDelay: nil, failback: failback, healthCheck: ScriptedCheck(), clock: ManualClock(), logger: log.logger)
        // Clients fail away from the first backend to the second: manual failback holds it.
        await registry.markDown(registry.backends[0], reason: "connection refused")
        #expect(registry.snapshot.backends[0].isHeld)
        #expect(log.contains("cannot save the state file \"/nonexistent-dir/state\": no such file or directory"), "\(log.all)")
    }
}
