import Testing
import TCPFallback

@Suite struct EndpointTests {
    @Test(arguments: [
        ("127.0.0.1:3306", Endpoint.Role.backend, "127.0.0.1", 3306),
        ("[::1]:3306", .backend, "::1", 3306),
        ("db1.example:3306", .backend, "db1.example", 3306),
        (":3306", .listen, "", 3306),
        ("0.0.0.0:0", .listen, "0.0.0.0", 0),
        ("localhost:65535", .backend, "localhost", 65535),
    ])
    func parses(text: String, role: Endpoint.Role, host: String, port: Int) throws {
        let endpoint = try Endpoint(parsing: text, role: role)
        #expect(endpoint.host == host)
        #expect(endpoint.port == port)
        #expect(endpoint.description == text)
    }

    @Test(arguments: [
        ("foo", Endpoint.Role.backend, "invalid backend address \"foo\": missing port"),
        (":3306", .backend, "invalid backend address \":3306\": missing host"),
        ("host:", .backend, "invalid backend address \"host:\": missing port"),
        ("host:0", .backend, "port \"0\" is not a number from 1 to 65535"),
        ("host:65536", .backend, "port \"65536\" is not a number from 1 to 65535"),
        ("host:http", .backend, "port \"http\" is not a number"),
        ("::1:3306", .backend, "too many colons"),
        ("[::1:3306", .backend, "missing \"]\""),
        ("[::1]", .backend, "missing port"),
        ("[::1]x:1", .backend, "unexpected \"x:1\""),
        ("[db]:1", .backend, "\"db\" is not an IPv6 address"),
        ("bad host:1", .listen, "invalid listen address \"bad host:1\": invalid character \" \""),
        ("host:-1", .listen, "port \"-1\""),
    ])
    func rejects(text: String, role: Endpoint.Role, message: String) {
        #expect {
            try Endpoint(parsing: text, role: role)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func knowsNumericHosts() throws {
        #expect(try Endpoint(parsing: "127.0.0.1:1", role: .backend).isNumeric)
        #expect(try Endpoint(parsing: "[::1]:1", role: .backend).isNumeric)
        #expect(try !Endpoint(parsing: "localhost:1", role: .backend).isNumeric)
    }
}
