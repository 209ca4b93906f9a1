import Etcd
import Testing

/// Endpoints as an operator writes them, and the mistakes they make.
struct EtcdEndpointTests {
    @Test(arguments: [
        ("http://127.0.0.1:2379", "127.0.0.1", 2379),
        ("127.0.0.1:2379", "127.0.0.1", 2379),
        ("http://127.0.0.1:2379/", "127.0.0.1", 2379),
        ("HTTP://etcd-1.example:12379", "etcd-1.example", 12379),
        ("[::1]:2379", "::1", 2379),
        ("http://[fe80::1]:1", "fe80::1", 1),
        ("localhost:65535", "localhost", 65535),
    ])
    func validEndpointsParse(text: String, host: String, port: Int) throws {
        let endpoint = try EtcdEndpoint(parsing: text)
        #expect(endpoint.host == host)
        #expect(endpoint.port == port)
        // The description parses back to the same endpoint.
        #expect(try EtcdEndpoint(parsing: endpoint.description) == endpoint)
    }

    @Test(arguments: [
        ("https://127.0.0.1:2379", "TLS"),
        ("unix:///run/etcd.sock", "scheme"),
        ("127.0.0.1", "port"),
        ("http://127.0.0.1", "port"),
        ("127.0.0.1:0", "port"),
        ("127.0.0.1:65536", "port"),
        ("127.0.0.1:23a", "port"),
        ("127.0.0.1:", "port"),
        (":2379", "host"),
        ("::1:2379", "brackets"),
        ("[::1]", "port"),
        ("[::1:2379", "]"),
        ("[not-ipv6]:2379", "IPv6"),
        ("http://127.0.0.1:2379/v3", "path"),
        ("user@127.0.0.1:2379", "user"),
        ("", "host"),
        ("etcd 1:2379", "host name"),
    ])
    func invalidEndpointsSayWhy(text: String, why: String) {
        do {
            let endpoint = try EtcdEndpoint(parsing: text)
            Issue.record("\"\(text)\" parsed as \(endpoint)")
        } catch EtcdError.invalidEndpoint(let given, let reason) {
            #expect(given == text)
            #expect(reason.contains(why), "\(reason)")
            #expect(EtcdError.invalidEndpoint(given, reason).description.contains("\"\(text)\""))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func descriptionsBracketIPv6() {
        #expect(EtcdEndpoint(host: "::1", port: 2379).description == "[::1]:2379")
        #expect(EtcdEndpoint(host: "10.0.0.1", port: 2379).description == "10.0.0.1:2379")
    }

    @Test func errorDescriptionsNameWhatFailed() {
        let unreachable = EtcdError.unreachable(["127.0.0.1:1: connection refused", "127.0.0.1:2: timed out"])
        #expect(unreachable.description == "no etcd endpoint answered: 127.0.0.1:1: connection refused; 127.0.0.1:2: timed out")
        #expect(EtcdError.compacted(compactRevision: 12).description.contains("compacted"))
        #expect(EtcdError.leaseExpired(7).description.contains("lease 7"))
        #expect(EtcdError.server(status: 400, message: "etcdserver: mvcc: required revision is a future revision").description.contains("HTTP 400"))
    }

    @Test func valueTextIsUTF8OrNil() {
        #expect(EtcdKeyValue(key: "k", value: Array("héllo".utf8)).valueText == "héllo")
        #expect(EtcdKeyValue(key: "k", value: [0xff, 0xfe]).valueText == nil)
    }
}
