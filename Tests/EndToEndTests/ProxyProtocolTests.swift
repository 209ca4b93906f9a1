import Foundation
import Testing
import TestSupport
import TCPFallback

#if canImport(Glibc)
import Glibc
#endif

/// -send-proxy: the backend learns the client's address from a PROXY protocol header.
@Suite struct ProxyProtocolTests {
    /// A backend that reads the header (up to its end) and sends it back as it came.
    static func headerEcho(bytes: Int) throws -> TestServer {
        try TestServer { connection in
            let header = try connection.receive(exactly: bytes)
            try connection.send(header)
            connection.close()
        }
    }

    @Test func version1TellsTheBackendWhoTheClientIs() async throws {
        let client = "PROXY TCP4 127.0.0.1 127.0.0.1 "
        let backend = try TestServer { connection in
            var header: [UInt8] = []
            while header.suffix(2) != [13, 10] { header += try connection.receive(exactly: 1) }
            try connection.send(header + (try connection.receive(exactly: 5)))
            connection.close()
        }
        try await withProxy(backends: [backend.port], configure: { $0.sendProxy = .v1 }) { (_, port) async throws in
            let socket = try TestSocket.connect(port: port)
            defer { socket.close() }
            try socket.send("hello")
            let reply = String(decoding: try socket.receiveToEnd(), as: UTF8.self)
            // PROXY TCP4 <client> <proxy> <client port> <proxy port>\r\n, then the client's bytes.
            #expect(reply == "\(client)\(localPort(of: socket.fd)) \(port)\r\nhello", "\(reply)")
        }
    }

    @Test func version2IsTheBinaryHeader() async throws {
        let backend = try Self.headerEcho(bytes: 28)
        try await withProxy(backends: [backend.port], configure: { $0.sendProxy = .v2 }) { (_, port) async throws in
            let socket = try TestSocket.connect(port: port)
            defer { socket.close() }
            let header = try socket.receiveToEnd()
            let clientPort = localPort(of: socket.fd)
            let expected: [UInt8] =
                [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 12]
                + [127, 0, 0, 1, 127, 0, 0, 1]
                + [UInt8(clientPort >> 8), UInt8(clientPort & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF)]
            #expect(header == expected)
        }
    }

    /// MariaDB on another host (a network namespace) trusts the proxy's address for PROXY
    /// headers: through the proxy it sees the client's address, so per-host grants and the
    /// processlist keep working; without -send-proxy it sees the proxy's.
    @Test(
        .enabled(if: MariaDBServer.available && TestNetwork.available, "needs root, ip netns and mariadb-server"),
        arguments: ["v1", "v2", nil])
    func mariadbSeesTheClientsAddress(version: String?) throws {
        let network = try TestNetwork()
        defer { network.remove() }
        let server = try MariaDBServer(
            serverID: 11, namespace: network.name, host: network.remoteAddress,
            options: ["--proxy-protocol-networks=\(network.localAddress)/32"])
        defer { server.crash() }
        let proxy = try ProxyProcess(
            (version.map { ["-send-proxy", $0] } ?? []) + ["-check", "mysql", "127.0.0.1:0", "\(network.remoteAddress):\(server.port)"])
        defer { proxy.stop() }
        let result = mariadbClientOutput(port: proxy.port, "SELECT USER()")
        // The namespace's hosts file names 127.0.0.1 "localhost" and the proxy's address "proxy-host".
        #expect(result.ok == (version == nil ? "app@proxy-host" : "app@localhost"), "\(result.output)\n\(proxy.log)")
    }
}
