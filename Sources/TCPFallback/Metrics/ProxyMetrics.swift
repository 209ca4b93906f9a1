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
    private let proxy: TCPFallbackProxy
    private let registry = PrometheusCollectorRegistry()
    /// Totals already added to each Prometheus counter, to add only the difference.
    private let exported = Locked<[String: Int]>([:])

    /// Buckets of the probe latency histogram.
    public static let checkDurationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init(proxy: TCPFallbackProxy) async {
        self.proxy = proxy
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = ["tcp_fallback_backend_check_duration_seconds": Self.checkDurationBuckets]
        let metricsFactory = factory
        await proxy.registry.observeProbes { backend, duration, succeeded in
            Counter(
                label: "tcp_fallback_backend_checks_total",
                dimensions: [("backend", "\(backend)"), ("result", succeeded ? "success" : "failure")],
                factory: metricsFactory
            ).increment()
            Timer(label: "tcp_fallback_backend_check_duration_seconds", dimensions: [("backend", "\(backend)")], factory: metricsFactory)
                .recordNanoseconds(duration.nanosecondsClamped)
        }
    }

    /// The text a scrape of `/metrics` returns.
    public func render() async -> String {
        let reports = await proxy.registry.reports()
        let snapshot = proxy.registry.snapshot
        let listener = proxy.counters.values

        gauge("tcp_fallback_build_info", [("version", TCPFallbackVersion.current)], 1, help: "The running version.")
        count("tcp_fallback_accepted_connections_total", [], listener.acceptedConnections, help: "Client connections accepted.")
        count("tcp_fallback_accept_errors_total", [], listener.acceptErrors, help: "Failed accepts (EMFILE, ENFILE, ...).")
        count(
            "tcp_fallback_failovers_total", [], listener.failovers,
            help: "Backend connection attempts that failed and passed their client on to the next backend.")
        gauge(
            "tcp_fallback_open_connections", [], Double(listener.openClientConnections),
            help: "Client connections open, including those still connecting.")
        gauge(
            "tcp_fallback_max_connections", [], Double(proxy.configuration.maxConnections ?? 0),
            help: "The limit of open client connections (-maxconn); 0: none.")
        count(
            "tcp_fallback_max_connections_reached_total", [], listener.maxConnectionsReached,
            help: "Times accepting paused because -maxconn client connections were open.")
        count(
            "tcp_fallback_spliced_bytes_total", [], listener.splicedBytes,
            help: "Bytes relayed with splice(2), both ways (-splice); also in the backends' byte counters.")
        gauge(
            "tcp_fallback_split_brain", [], snapshot.splitBrain == nil ? 0 : 1,
            help: "1 while several backends are writable at once and -split-brain refuse refuses new writer connections.")
        gauge("tcp_fallback_data_loops", [], Double(proxy.dataLoopCount), help: "Data-path threads.")
        if let source = proxy.backendSource {
            let status = source.status
            gauge("tcp_fallback_etcd_reachable", [], status.reachable ? 1 : 0, help: "1 while etcd answers (-etcd).")
            gauge("tcp_fallback_etcd_revision", [], Double(status.revision), help: "The etcd revision of the last list of backends read.")
            count("tcp_fallback_backend_list_changes_total", [], status.changes, help: "Lists from etcd that changed the backends.")
        }
        if let member = proxy.groupMember {
            let group = member.status
            gauge("tcp_fallback_group_leader", [], group.isLeader ? 1 : 0, help: "1 while this member decides for its group (-etcd-group).")
            gauge("tcp_fallback_group_epoch", [], Double(group.decision?.epoch ?? 0), help: "The epoch of the group decision this member follows.")
            gauge("tcp_fallback_group_live_members", [], Double(group.liveMembers), help: "Members of the group with a live lease, as this member sees them.")
            gauge("tcp_fallback_group_etcd_lost", [], group.lost == nil ? 0 : 1, help: "1 while this member has lost etcd (its lease expired).")
        }
        gauge("tcp_fallback_backends", [], Double(reports.count), help: "Backends in the current list.")

        for report in reports {
            let labels = [("backend", "\(report.backend)")]
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
        return registry.emitToString()
    }

    /// Brings a Prometheus counter up to `total`.
    private func count(_ name: String, _ labels: [(String, String)], _ total: Int, help: String) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let delta = exported.withLock { exported -> Int in
            let delta = max(0, total - (exported[key] ?? 0))
            exported[key] = max(total, exported[key] ?? 0)
            return delta
        }
        let counter = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
        if delta > 0 { counter.increment(by: Int64(delta)) }
    }

    private func gauge(_ name: String, _ labels: [(String, String)], _ value: Double, help: String) {
        registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(to: value)
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
