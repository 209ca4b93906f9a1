import CoreMetrics
import Prometheus
import Synchronization

/// The proxy's metrics in the Prometheus text format.
///
/// Events that happen now and then (probes) are recorded as they happen, through swift-metrics
/// with swift-prometheus behind it. Figures the data path already keeps in atomics (bytes,
/// connections) are read at scrape time instead, so counting them costs the data path nothing
/// more.
public final class ProxyMetrics: Sendable {
    private let listeners: ListenerSet
    /// Probes, recorded as they happen; kept for the life of the process.
    private let events = PrometheusCollectorRegistry()
    private let observed = Locked<Set<ObjectIdentifier>>([])

    /// Buckets of the probe latency histogram.
    public static let checkDurationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init(listeners: ListenerSet) async {
        self.listeners = listeners
        for entry in listeners.all { await observe(entry) }
    }

    /// Records the probes of a listener (those a reload adds are observed at the first scrape).
    private func observe(_ entry: ListenerSet.Entry) async {
        guard observed.withLock({ $0.insert(ObjectIdentifier(entry.proxy)).inserted }) else { return }
        var factory = PrometheusMetricsFactory(registry: events)
        factory.durationHistogramBuckets = ["tcp_fallback_backend_check_duration_seconds": Self.checkDurationBuckets]
        let metricsFactory = factory
        let listener = listeners.isNamed ? [("listener", entry.name)] : []
        await entry.proxy.registry.observeProbes { backend, duration, succeeded in
            Counter(
                label: "tcp_fallback_backend_checks_total",
                dimensions: listener + [("backend", "\(backend)"), ("result", succeeded ? "success" : "failure")],
                factory: metricsFactory
            ).increment()
            Timer(label: "tcp_fallback_backend_check_duration_seconds", dimensions: listener + [("backend", "\(backend)")], factory: metricsFactory)
                .recordNanoseconds(duration.nanosecondsClamped)
        }
    }

    /// The text a scrape of `/metrics` returns. Figures read now go to a registry made for
    /// this scrape, so a listener or backend that is gone leaves no stale series behind.
    public func render() async -> String {
        let scrape = Scrape()
        scrape.gauge("tcp_fallback_build_info", [("version", TCPFallbackVersion.current)], 1, help: "The running version.")
        for entry in listeners.all {
            await observe(entry)
            await scrape.add(entry.proxy, labels: listeners.isNamed ? [("listener", entry.name)] : [])
        }
        return scrape.registry.emitToString() + events.emitToString()
    }
}

/// One scrape's figures.
private struct Scrape {
    let registry = PrometheusCollectorRegistry()

    func add(_ proxy: TCPFallbackProxy, labels listenerLabels: [(String, String)]) async {
        let reports = await proxy.registry.reports()
        let snapshot = proxy.registry.snapshot
        let listener = proxy.counters.values
        let base = listenerLabels

        count("tcp_fallback_accepted_connections_total", base, listener.acceptedConnections, help: "Client connections accepted.")
        count("tcp_fallback_accept_errors_total", base, listener.acceptErrors, help: "Failed accepts (EMFILE, ENFILE, ...).")
        count(
            "tcp_fallback_failovers_total", base, listener.failovers,
            help: "Backend connection attempts that failed and passed their client on to the next backend.")
        gauge(
            "tcp_fallback_open_connections", base, Double(listener.openClientConnections),
            help: "Client connections open, including those still connecting.")
        gauge(
            "tcp_fallback_max_connections", base, Double(proxy.configuration.maxConnections ?? 0),
            help: "The limit of open client connections (-maxconn); 0: none.")
        count(
            "tcp_fallback_max_connections_reached_total", base, listener.maxConnectionsReached,
            help: "Times accepting paused because -maxconn client connections were open.")
        count(
            "tcp_fallback_spliced_bytes_total", base, listener.splicedBytes,
            help: "Bytes relayed with splice(2), both ways (-splice); also in the backends' byte counters.")
        gauge(
            "tcp_fallback_split_brain", base, snapshot.splitBrain == nil ? 0 : 1,
            help: "1 while several backends are writable at once and -split-brain refuse refuses new writer connections.")
        gauge("tcp_fallback_data_loops", base, Double(proxy.dataLoopCount), help: "Data-path threads.")
        if let source = proxy.backendSource {
            let status = source.status
            gauge("tcp_fallback_etcd_reachable", base, status.reachable ? 1 : 0, help: "1 while etcd answers (-etcd).")
            gauge("tcp_fallback_etcd_revision", base, Double(status.revision), help: "The etcd revision of the last list of backends read.")
            count("tcp_fallback_backend_list_changes_total", base, status.changes, help: "Lists from etcd that changed the backends.")
        }
        if let member = proxy.groupMember {
            let group = member.status
            gauge("tcp_fallback_group_leader", base, group.isLeader ? 1 : 0, help: "1 while this member decides for its group (-etcd-group).")
            gauge("tcp_fallback_group_epoch", base, Double(group.decision?.epoch ?? 0), help: "The epoch of the group decision this member follows.")
            gauge("tcp_fallback_group_live_members", base, Double(group.liveMembers), help: "Members of the group with a live lease, as this member sees them.")
            gauge("tcp_fallback_group_etcd_lost", base, group.lost == nil ? 0 : 1, help: "1 while this member has lost etcd (its lease expired).")
        }
        gauge("tcp_fallback_backends", base, Double(reports.count), help: "Backends in the current list.")

        for report in reports {
            let labels = base + [("backend", "\(report.backend)")]
            for candidate in BackendRegistry.Report.states {
                gauge(
                    "tcp_fallback_backend_state", labels + [("state", candidate)], candidate == report.state ? 1 : 0,
                    help: "1 for the backend's current state: up, down (failing), held (by the failback policy), disabled or draining (by an operator), new (added, not checked yet).")
            }
            gauge("tcp_fallback_backend_up", labels, report.isUp ? 1 : 0, help: "1 while the backend is healthy.")
            gauge("tcp_fallback_backend_in_use", labels, report.backend === snapshot.current ? 1 : 0, help: "1 for the backend new clients go to.")
            if let server = report.server {
                gauge("tcp_fallback_backend_writable", labels, server.isWritable ? 1 : 0, help: "1 while the MySQL server accepts writes (checks with -check-user).")
                gauge(
                    "tcp_fallback_backend_replicating", labels, server.replica?.isReplicating == true ? 1 : 0,
                    help: "1 while the MySQL server replicates with both threads running.")
                if let behind = server.replica?.secondsBehind {
                    gauge("tcp_fallback_backend_replication_lag_seconds", labels, Double(behind), help: "Seconds_Behind_Master of a replicating MySQL server.")
                }
            }
            let c = report.counters
            gauge("tcp_fallback_backend_active_connections", labels, Double(c.activeConnections), help: "Relays open on the backend.")
            count("tcp_fallback_backend_connections_total", labels, c.connectionsTotal, help: "Relays opened to the backend.")
            count("tcp_fallback_backend_bytes_from_client_total", labels, c.bytesFromClient, help: "Bytes relayed from clients to the backend.")
            count("tcp_fallback_backend_bytes_to_client_total", labels, c.bytesToClient, help: "Bytes relayed from the backend to clients.")
            count("tcp_fallback_backend_connect_errors_total", labels, c.connectErrors, help: "Failed connection attempts by clients.")
            gauge("tcp_fallback_backend_downtime_seconds", labels, report.downtime.seconds, help: "Total time the backend has been down.")
            gauge(
                "tcp_fallback_backend_last_change_timestamp_seconds", labels, report.lastChangeWallTime ?? 0,
                help: "When the backend last went down or came back, in seconds since 1970; 0 if never.")
        }
    }

    /// A counter at `total`, as the data path counted it.
    func count(_ name: String, _ labels: [(String, String)], _ total: Int, help: String) {
        registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels).increment(by: Int64(max(0, total)))
    }

    func gauge(_ name: String, _ labels: [(String, String)], _ value: Double, help: String) {
        registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(to: value)
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
