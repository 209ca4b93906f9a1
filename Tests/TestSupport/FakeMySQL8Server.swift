import Crypto
import CryptoExtras
import Foundation

/// A stand-in for a MySQL 8 server that authenticates for real, as the server side of
/// `caching_sha2_password` and `mysql_native_password` does: it keeps only the password's
/// double hash, verifies a scramble against it (the server's computation, not the client's),
/// and for `caching_sha2_password`'s full path decrypts the RSA-encrypted password with its
/// private key. After a login it answers the check's query with MySQL's result sets.
public final class FakeMySQL8Server: @unchecked Sendable {
    public enum Login: Sendable {
        /// caching_sha2_password; `cached`: the fast path (the server has the password cached),
        /// otherwise the full path with the RSA key.
        case cachingSHA2(cached: Bool)
        /// The handshake proposes caching_sha2_password, then switches to mysql_native_password.
        case switchToNative
    }

    public struct Seen: Sendable, Equatable {
        public var fastLogins = 0
        public var fullLogins = 0
        public var nativeLogins = 0
        public var refused = 0
        public var quits = 0
    }

    private let password: [UInt8]
    private let login: Login
    private let privateKey: _RSA.Encryption.PrivateKey
    private let lock = NSLock()
    private var seen = Seen()
    private var readOnly = false
    private var server: TestServer!

    public var port: Int { server.port }
    public var counts: Seen { lock.withLock { seen } }

    public init(password: String, login: Login) throws {
        self.password = Array(password.utf8)
        self.login = login
        privateKey = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        server = try TestServer { [unowned self] connection in try self.serve(connection) }
    }

    public func setReadOnly(_ value: Bool) { lock.withLock { readOnly = value } }

    public func stop() { server.stop() }

    private static func packet(_ payload: [UInt8], _ sequence: UInt8) -> [UInt8] {
        FakeMySQLServer.packet(payload, sequence: sequence)
    }

    private func receivePacket(_ connection: TestSocket) throws -> (sequence: UInt8, payload: [UInt8])? {
        let header = try connection.receive(exactly: 4)
        guard header.count == 4 else { return nil }
        let length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16
        return (header[3], try connection.receive(exactly: length))
    }

    private func serve(_ connection: TestSocket) throws {
        let nonce = (0..<20).map { _ in UInt8.random(in: 1...127) }
        var payload: [UInt8] = [10] + Array("8.0.36-fake".utf8) + [0] + [7, 0, 0, 0] + Array(nonce[0..<8]) + [0]
        // Capabilities: PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, MULTI_STATEMENTS/RESULTS.
        payload += [0x00, 0xA2, 255, 2, 0, 0x0B, 0x00, 21] + [UInt8](repeating: 0, count: 10)
        payload += Array(nonce[8...]) + [0] + Array("caching_sha2_password".utf8) + [0]
        try connection.send(Self.packet(payload, 0))

        guard let response = try receivePacket(connection) else { return }
        let authResponse = Self.authResponse(in: response.payload)
        var sequence = response.sequence &+ 1
        var accepted = false
        switch login {
        case .cachingSHA2(cached: true):
            accepted = verifySHA2(authResponse, nonce: nonce)
            if accepted {
                try connection.send(Self.packet([0x01, 0x03], sequence))
                sequence &+= 1
                lock.withLock { seen.fastLogins += 1 }
            }
        case .cachingSHA2(cached: false):
            // Not cached: ask for the full path; the client asks for the public key.
            try connection.send(Self.packet([0x01, 0x04], sequence))
            guard let request = try receivePacket(connection), request.payload == [0x02] else { return }
            try connection.send(Self.packet([0x01] + Array(privateKey.publicKey.pemRepresentation.utf8), request.sequence &+ 1))
            guard let encrypted = try receivePacket(connection) else { return }
            sequence = encrypted.sequence &+ 1
            if let plain = try? privateKey.decrypt(encrypted.payload, padding: .PKCS1_OAEP) {
                let clear = plain.enumerated().map { $0.element ^ nonce[$0.offset % nonce.count] }
                accepted = clear == password + [0]
            }
            if accepted { lock.withLock { seen.fullLogins += 1 } }
        case .switchToNative:
            let fresh = (0..<20).map { _ in UInt8.random(in: 1...127) }
            try connection.send(Self.packet([0xFE] + Array("mysql_native_password".utf8) + [0] + fresh + [0], sequence))
            guard let switched = try receivePacket(connection) else { return }
            sequence = switched.sequence &+ 1
            accepted = verifyNative(switched.payload, nonce: fresh)
            if accepted { lock.withLock { seen.nativeLogins += 1 } }
        }
        guard accepted else {
            lock.withLock { seen.refused += 1 }
            try connection.send(Self.packet([0xFF, 0x15, 0x04] + Array("#28000Access denied for user".utf8), sequence))
            return
        }
        try connection.send(Self.packet([0x00, 0, 0, 0x02, 0, 0, 0], sequence))

        while let command = try receivePacket(connection) {
            if command.payload == [0x01] {
                lock.withLock { seen.quits += 1 }
                return
            }
            guard command.payload.first == 0x03 else { return }
            try connection.send(resultSets(replicaStatement: String(decoding: command.payload.dropFirst(), as: UTF8.self)))
        }
    }

    /// The auth response of a HandshakeResponse41 (length-prefixed after the user name).
    private static func authResponse(in payload: [UInt8]) -> [UInt8] {
        var index = 32
        while index < payload.count && payload[index] != 0 { index += 1 }
        index += 1
        guard index < payload.count else { return [] }
        let length = Int(payload[index])
        return Array(payload[(index + 1)..<min(index + 1 + length, payload.count)])
    }

    /// The server's check of a caching_sha2_password scramble, from the stored double hash.
    private func verifySHA2(_ response: [UInt8], nonce: [UInt8]) -> Bool {
        let stored = Array(SHA256.hash(data: Array(SHA256.hash(data: password))))
        let mix = Array(SHA256.hash(data: stored + nonce))
        guard response.count == mix.count else { return false }
        let candidate = zip(response, mix).map { $0 ^ $1 }
        return Array(SHA256.hash(data: candidate)) == stored
    }

    /// The server's check of a mysql_native_password scramble, from the stored double hash.
    private func verifyNative(_ response: [UInt8], nonce: [UInt8]) -> Bool {
        let stored = Array(Insecure.SHA1.hash(data: Array(Insecure.SHA1.hash(data: password))))
        let mix = Array(Insecure.SHA1.hash(data: nonce + stored))
        guard response.count == mix.count else { return false }
        let candidate = zip(response, mix).map { $0 ^ $1 }
        return Array(Insecure.SHA1.hash(data: candidate)) == stored
    }

    /// MySQL's answer to the check's two statements (no CLIENT_DEPRECATE_EOF): the variables,
    /// with "more results" in the closing EOF, then an empty replica status.
    private func resultSets(replicaStatement: String) -> [UInt8] {
        func lengthEncoded(_ text: String) -> [UInt8] { [UInt8(text.utf8.count)] + Array(text.utf8) }
        func column(_ name: String) -> [UInt8] {
            lengthEncoded("def") + lengthEncoded("") + lengthEncoded("") + lengthEncoded("") + lengthEncoded(name) + lengthEncoded("")
                + [0x0C, 33, 0, 1, 0, 0, 0, 0xFD, 0, 0, 0, 0, 0]
        }
        let readOnly = lock.withLock { self.readOnly } ? "1" : "0"
        var bytes: [UInt8] = []
        var sequence: UInt8 = 1
        func send(_ payload: [UInt8]) {
            bytes += Self.packet(payload, sequence)
            sequence &+= 1
        }
        send([3])
        for name in ["@@global.read_only", "@@global.innodb_read_only", "@@global.super_read_only"] { send(column(name)) }
        send([0xFE, 0, 0, 0x0A, 0])  // EOF: status AUTOCOMMIT | MORE_RESULTS_EXISTS
        send(lengthEncoded(readOnly) + lengthEncoded("0") + lengthEncoded(readOnly))
        send([0xFE, 0, 0, 0x0A, 0])
        let prefix = replicaStatement.contains("SHOW REPLICA STATUS") ? "Replica" : "Slave"
        send([3])
        for name in ["\(prefix)_IO_Running", "\(prefix)_SQL_Running", "Seconds_Behind_Source"] { send(column(name)) }
        send([0xFE, 0, 0, 0x02, 0])
        send([0xFE, 0, 0, 0x02, 0])  // no row: not a replica
        return bytes
    }
}
