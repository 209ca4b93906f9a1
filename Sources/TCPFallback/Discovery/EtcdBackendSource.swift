import Etcd
import Logging

/// Keeps the registry's list of backends equal to the one under an etcd prefix: reads it,
/// then watches from the revision of that read; on a compacted revision it reads again, on
/// a broken connection it reads again after a back-off (the client tries every member).
///
/// Contract: while etcd cannot be reached, or lists no backend, the current list stays: a
/// proxy never drops its backends because etcd is down or a prefix was emptied by mistake.
/// Each list from etcd is kept in the state file, for a start while etcd is down.
public final class EtcdBackendSource: Sendable {
    /// What the proxy knows of etcd now (`show backends`, metrics).
    public struct Status: Sendable {
        public var reachable = false
        /// The revision of the last list applied; 0 before the first answer.
        public var revision: Int64 = 0
        /// Why etcd cannot be reached (or why its list was not used), while that lasts.
        public var problem: String?
        /// Lists from etcd that changed the backends.
        public var changes = 0
    }

    public let settings: EtcdSettings
    private let client: EtcdClient
    private let clock: any ProxyClock
    private let logger: Logger
    private let state = Locked(Status())

    public init(settings: EtcdSettings, client: EtcdClient, clock: any ProxyClock = SystemClock(), logger: Logger) {
        self.settings = settings
        self.client = client
        self.clock = clock
        self.logger = logger
    }

    public var status: Status { state.withLock { $0 } }

    /// The list to start with, and where it comes from for the start-up line: etcd's if it
    /// answers now, else the last one etcd gave (`saved`, from the state file), else the
    /// command line's `seeds`; none at all means no client is served until etcd answers.
    public static func startingList(settings: EtcdSettings, saved: [Endpoint], seeds: [Endpoint], logger: Logger) async -> (list: [Endpoint], origin: String) {
        let client = EtcdClient(endpoints: settings.endpoints, requestTimeout: settings.requestTimeout)
        let source = EtcdBackendSource(settings: settings, client: client, logger: logger)
        defer { Task { await client.shutdown() } }
        do {
            let result = try await client.range(prefix: settings.prefix)
            let list = source.parse(Dictionary(result.keyValues.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
            if !list.isEmpty { return (list, " (from etcd \(settings.prefix), revision \(result.revision))") }
            logger.error(
                "etcd lists no backend under \(settings.prefix) (layout \(settings.layout.rawValue))",
                metadata: ["event": "etcd_empty"])
        } catch {
            logger.warning("etcd does not answer at start-up: \(error)", metadata: ["event": "etcd_unreachable"])
        }
        if !saved.isEmpty { return (saved, " (etcd's last list, from the state file, until etcd answers)") }
        if !seeds.isEmpty { return (seeds, " (from the command line, until etcd answers)") }
        logger.error("no backend to start with: no client is served until etcd answers", metadata: ["event": "no_backends"])
        return ([], "")
    }

    /// Follows etcd until cancelled, applying each list to `registry`.
    public func run(into registry: BackendRegistry) async {
        var backoff = ReconnectBackoff()
        // A watch that breaks (its member stopped) is retried at once on another member
        // before etcd is called unreachable.
        var failures = 0
        while !Task.isCancelled {
            do {
                let read = try await client.range(prefix: settings.prefix)
                let keys = Dictionary(read.keyValues.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
                reached()
                backoff.reset()
                failures = 0
                await apply(keys, revision: read.revision, to: registry)
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask {
                        var keys = keys
                        for try await batch in self.client.watch(prefix: self.settings.prefix, fromRevision: read.revision + 1) {
                            for event in batch.events {
                                switch event.kind {
                                case .put: keys[event.keyValue.key] = event.keyValue.value
                                case .delete: keys[event.keyValue.key] = nil
                                }
                            }
                            await self.apply(keys, revision: batch.revision, to: registry)
                        }
                        // The watch ended without an error (the server closed it): read and watch again.
                    }
                    tasks.addTask { try await self.verifyWatch(registry) }
                    try await tasks.next()
                    tasks.cancelAll()
                }
            } catch EtcdError.compacted(let compacted) {
                logger.notice(
                    "etcd compacted its history to revision \(compacted), past what the watch had seen; reading \(settings.prefix) again",
                    metadata: ["event": "etcd_compacted"])
            } catch {
                if Task.isCancelled { return }
                failures += 1
                if failures > 1 { lost(error, keeping: registry.backends.count) }
                do { try await clock.sleep(for: backoff.delay()) } catch { return }
            }
        }
    }

    /// Every `verifyInterval`, reads the list and compares it with the one applied: a watch can
    /// go quiet without ending (a member that stopped answering but keeps its connection
    /// open). A difference that lasts two reads in a row ends the watch, and the list is read
    /// again; one read alone may just have crossed a change on its way.
    private func verifyWatch(_ registry: BackendRegistry) async throws {
        var differed = false
        while true {
            try await clock.sleep(for: Self.verifyInterval)
            let read = try await client.range(prefix: settings.prefix)
            let list = settings.layout.backends(from: Dictionary(read.keyValues.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }), prefix: settings.prefix).list
            let differs = !list.isEmpty && list != registry.backends.map(\.endpoint)
            if differs && differed {
                logger.warning("the etcd watch of \(settings.prefix) missed a change; reading the list again", metadata: ["event": "etcd_watch_stale"])
                throw EtcdError.badResponse("the watch of \(settings.prefix) went quiet")
            }
            differed = differs
        }
    }

    /// How often the list is read to check that the watch still delivers.
    static let verifyInterval = Duration.seconds(5)

    private func parse(_ keys: [String: [UInt8]]) -> [Endpoint] {
        let (list, problems) = settings.layout.backends(from: keys, prefix: settings.prefix)
        for problem in problems {
            logger.warning("etcd key skipped: \(problem)", metadata: ["event": "etcd_bad_key"])
        }
        return list
    }

    private func apply(_ keys: [String: [UInt8]], revision: Int64, to registry: BackendRegistry) async {
        let list = parse(keys)
        guard !list.isEmpty else {
            let problem = "etcd lists no backend under \(settings.prefix) (layout \(settings.layout.rawValue)); keeping the current list"
            let isNew = state.withLock { status in
                defer { status.problem = problem; status.revision = revision }
                return status.problem != problem
            }
            if isNew { logger.error("\(problem)", metadata: ["event": "etcd_empty"]) }
            return
        }
        let change = await registry.replaceBackends(list, source: "etcd revision \(revision)", keep: true)
        state.withLock { status in
            status.revision = revision
            status.problem = nil
            if !change.isEmpty { status.changes += 1 }
        }
    }

    private func reached() {
        let was = state.withLock { status in
            defer { status.reachable = true; status.problem = nil }
            return status.reachable ? nil : status.problem
        }
        if let was {
            logger.notice("etcd answers again (it did not: \(was))", metadata: ["event": "etcd_reachable"])
        }
    }

    private func lost(_ error: any Error, keeping count: Int) {
        let problem = "\(error)"
        let isNew = state.withLock { status in
            defer { status.reachable = false; status.problem = problem }
            return status.reachable || status.problem != problem
        }
        if isNew {
            logger.warning(
                "etcd cannot be reached: \(problem); keeping the current \(count) backend(s), retrying",
                metadata: ["event": "etcd_unreachable"])
        }
    }
}
