import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The check's login against a stand-in MySQL 8 server that verifies it as a real one does:
/// caching_sha2_password's fast path and full path (RSA over a plain connection), and an auth
/// switch to mysql_native_password. (MariaDB, which the other tests run, speaks
/// mysql_native_password only.)
@Suite struct MySQLAuthenticationTests {
    static func proxy(for server: FakeMySQL8Server, password: String, directory: TemporaryDirectory) throws -> ProxyProcess {
        let file = directory.file("password")
        writeFile(password + "\n", to: file)
        return try ProxyProcess([
            "-check", "mysql", "-check-user", "monitor", "-check-password-file", file, "-check-interval", "100ms",
            "-fall", "1", "-role", "writer", "127.0.0.1:0", "127.0.0.1:\(server.port)",
        ])
    }

    @Test(arguments: [FakeMySQL8Server.Login.cachingSHA2(cached: true), .cachingSHA2(cached: false), .switchToNative])
    func theCheckLogsInAndReadsTheRole(login: FakeMySQL8Server.Login) throws {
        let server = try FakeMySQL8Server(password: "s3cret pass", login: login)
        defer { server.stop() }
        let directory = try TemporaryDirectory()
        let proxy = try Self.proxy(for: server, password: "s3cret pass", directory: directory)
        #expect(proxy.waitForLog("backend 127.0.0.1:\(server.port) is writable"))
        server.setReadOnly(true)
        #expect(proxy.waitForLog("backend 127.0.0.1:\(server.port) is read-only"))
        let seen = server.counts
        switch login {
        case .cachingSHA2(cached: true): #expect(seen.fastLogins >= 2)
        case .cachingSHA2(cached: false): #expect(seen.fullLogins >= 2)
        case .switchToNative: #expect(seen.nativeLogins >= 2)
        }
        #expect(seen.refused == 0)
        // The goodbye of the check that saw the change may still be on its way.
        #expect(waitFor { server.counts.quits >= 2 }, "every check says goodbye")
    }

    @Test func aWrongPasswordOnTheFullPathIsRefusedWithItsCause() throws {
        let server = try FakeMySQL8Server(password: "right", login: .cachingSHA2(cached: false))
        defer { server.stop() }
        let directory = try TemporaryDirectory()
        let proxy = try Self.proxy(for: server, password: "wrong", directory: directory)
        #expect(proxy.waitForLog("backend 127.0.0.1:\(server.port) is down: login as monitor refused (wrong user or password?)"))
        #expect(server.counts.refused >= 1)
        #expect(server.counts.fullLogins == 0)
    }
}
