import Foundation
import Testing
import TestSupport

/// `/metrics`, scraped and parsed with the Prometheus project's own Python parser
/// (`prometheus_client`, installed by the test command).
@Suite struct MetricsTests {
    static let hasParser: Bool = {
        (try? runProcess("/usr/bin/env", ["python3", "-c", "import prometheus_client"]).status) == 0
    }()

    /// Scrapes `url` and returns every sample as "name{label=value,...}" → value.
    static func scrape(_ url: String) throws -> [String: Double] {
        let script = """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
            out = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    out[f"{s.name}{{{labels}}}"] = s.value
            print(json.dumps(out))
            """
        let (status, output) = try runProcess("/usr/bin/env", ["python3", "-c", script, url])
        guard status == 0 else { throw ProxyProcess.ProcessError(message: "scrape failed: \(output)") }
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Double]
        return object ?? [:]
    }

    @Test(.enabled(if: MetricsTests.hasParser, "python3 with prometheus_client is not installed (Scripts/test.sh installs it)"))
    func metricsFollowTrafficAndFailover() throws {
        let dead = try refusingPort()
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess([
            "-metrics", "127.0.0.1:0", "-probe-delay=50ms", "-timeout=1s", "127.0.0.1:0", "127.0.0.1:\(dead)", "127.0.0.1:\(backend.port)",
        ])
        defer { proxy.stop() }
        #expect(proxy.waitForLog("/metrics"))
        let url = try #require(proxy.log.split(separator: "\n").first { $0.contains("metrics at ") }?.split(separator: " ").last)
        // The first client fails over from the dead backend, which is then marked down (on the
        // registry's thread: the next clients wait for that, or they may try it too).
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "b")
        #expect(proxy.waitForLog("backend 127.0.0.1:\(dead) is down"))
        for _ in 0..<2 { #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "b") }
        usleep(300_000)  // a few probes of the dead backend

        let samples = try Self.scrape(String(url))
        let live = "backend=127.0.0.1:\(backend.port)"
        let down = "backend=127.0.0.1:\(dead)"
        #expect(samples["tcp_fallback_build_info{version=0.1.0}"] == 1)
        #expect(samples["tcp_fallback_accepted_connections_total{}"] == 3)
        #expect(samples["tcp_fallback_failovers_total{}"] == 1)
        #expect(samples["tcp_fallback_backend_up{\(down)}"] == 0)
        #expect(samples["tcp_fallback_backend_up{\(live)}"] == 1)
        #expect(samples["tcp_fallback_backend_state{\(down),state=down}"] == 1)
        #expect(samples["tcp_fallback_backend_state{\(live),state=up}"] == 1)
        #expect(samples["tcp_fallback_backend_in_use{\(live)}"] == 1)
        #expect(samples["tcp_fallback_backend_in_use{\(down)}"] == 0)
        #expect(samples["tcp_fallback_backend_connections_total{\(live)}"] == 3)
        #expect(samples["tcp_fallback_backend_bytes_to_client_total{\(live)}"] == 3)
        #expect(samples["tcp_fallback_backend_connect_errors_total{\(down)}"] == 1)
        #expect((samples["tcp_fallback_backend_last_change_timestamp_seconds{\(down)}"] ?? 0) > Date().timeIntervalSince1970 - 60)
        let failedChecks = samples["tcp_fallback_backend_checks_total{\(down),result=failure}"] ?? 0
        #expect(failedChecks >= 2, "\(samples.keys.sorted())")
        #expect(samples["tcp_fallback_backend_check_duration_seconds_count{\(down)}"] == failedChecks)
        #expect(samples["tcp_fallback_backend_check_duration_seconds_bucket{\(down),le=+Inf}"] == failedChecks)

        // Counters only grow: a second scrape after more traffic.
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "b")
        let later = try Self.scrape(String(url))
        #expect(later["tcp_fallback_accepted_connections_total{}"] == 4)
        #expect(later["tcp_fallback_backend_connections_total{\(live)}"] == 4)
    }

    @Test func otherPathsAndMethodsAreRefused() throws {
        let backend = try TestServer.naming("b")
        let proxy = try ProxyProcess(["-metrics", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:\(backend.port)"])
        defer { proxy.stop() }
        #expect(proxy.waitForLog("/metrics"))
        let line = try #require(proxy.log.split(separator: "\n").first { $0.contains("metrics at ") })
        let port = try #require(Int(line.split(separator: ":").last!.split(separator: "/").first!))
        func request(_ text: String) throws -> String {
            let socket = try TestSocket.connect(port: port)
            try socket.send(text)
            return String(decoding: try socket.receiveToEnd(), as: UTF8.self)
        }
        #expect(try request("GET /metrics HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.0 200 OK"))
        #expect(try request("GET /other HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.0 404 Not Found"))
        #expect(try request("DELETE /metrics HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.0 405 Method Not Allowed"))
        #expect(try request("garbage\r\n\r\n").contains("400"))
        #expect(try TestSocket.backendName(viaProxyAt: proxy.port) == "b")
    }

    @Test func aBadMetricsAddressIsAUsageError() throws {
        let (status, output) = try runProxyBinary(["-metrics", "nowhere", "127.0.0.1:0", "127.0.0.1:1"])
        #expect(status == 2)
        #expect(output.contains("invalid -metrics address \"nowhere\": missing port"), "\(output)")
    }
}
