import Foundation
import Testing
@testable import TCPFallback
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The MySQL check's protocol pieces on bytes made by hand: scrambles against Python's
/// hashlib, the handshake, result sets, the conversation's failures, the password file.
@Suite struct MySQLCheckConversationTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static let nonce = Array(UInt8(1)...UInt8(20))

    static func greeting(plugin: String = "mysql_native_password", version: String = "10.11.6-MariaDB") -> MySQLPacket {
        var payload: [UInt8] = [10] + Array(version.utf8) + [0, 1, 0, 0, 0] + Array(nonce[0..<8]) + [0]
        payload += [0xFF, 0xF7, 33, 2, 0, 0xFF, 0x81, 21] + [UInt8](repeating: 0, count: 10)
        payload += Array(nonce[8...]) + [0] + Array(plugin.utf8) + [0]
        return MySQLPacket(sequence: 0, payload: payload)
    }

    static func lengthEncoded(_ text: String) -> [UInt8] { [UInt8(text.utf8.count)] + Array(text.utf8) }
    static func column(_ name: String) -> [UInt8] {
        ["def", "", "", "", name, ""].flatMap(lengthEncoded) + [0x0C, 33, 0, 1, 0, 0, 0, 0xFD, 0, 0, 0, 0, 0]
    }
    static func eof(_ status: UInt8) -> [UInt8] { [0xFE, 0, 0, status, 0] }

    @Test func scramblesMatchAnIndependentImplementation() {
        // Expected values from Python's hashlib (see the test's history for the one-liner).
        let password = Array("secret".utf8)
        #expect(Self.hex(MySQLAuthentication.nativeScramble(password: password, scramble: Self.nonce)) == "b32bb3a583e1340c0a1108d58b1be49781ad8c2f")
        #expect(
            Self.hex(MySQLAuthentication.sha2Scramble(password: password, scramble: Self.nonce))
                == "746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9")
        #expect(MySQLAuthentication.nativeScramble(password: [], scramble: Self.nonce).isEmpty)
        // A trailing NUL after the 20-byte nonce is not part of it.
        #expect(MySQLAuthentication.nativeScramble(password: password, scramble: Self.nonce + [0]) == MySQLAuthentication.nativeScramble(password: password, scramble: Self.nonce))
    }

    @Test func parsesAHandshake() throws {
        let handshake = try MySQLHandshake(payload: Self.greeting().payload)
        #expect(handshake.serverVersion == "10.11.6-MariaDB")
        #expect(handshake.scramble == Self.nonce)
        #expect(handshake.authPlugin == "mysql_native_password")
        #expect(handshake.isMariaDB)
        #expect(throws: MySQLProtocolError.self) { try MySQLHandshake(payload: [10] + Array("8.0".utf8) + [0, 1, 2]) }
        #expect(throws: MySQLProtocolError.self) { try MySQLHandshake(payload: [9]) }
    }

    @Test func readsTwoResultSetsWithNulls() throws {
        var parser = MySQLResultSetParser()
        let packets: [[UInt8]] = [
            [2], Self.column("@@global.read_only"), Self.column("@@global.innodb_read_only"), Self.eof(0x0A),
            Self.lengthEncoded("1") + Self.lengthEncoded("0"), Self.eof(0x0A),
            [3], Self.column("Slave_IO_Running"), Self.column("Slave_SQL_Running"), Self.column("Seconds_Behind_Master"), Self.eof(2),
            Self.lengthEncoded("Yes") + Self.lengthEncoded("No") + [0xFB], Self.eof(2),
        ]
        var outcomes: [MySQLResultSetParser.Outcome]?
        for (index, payload) in packets.enumerated() {
            #expect(outcomes == nil, "finished early, at packet \(index)")
            outcomes = try parser.receive(MySQLPacket(sequence: UInt8(index + 1), payload: payload))
        }
        let results = try #require(outcomes)
        guard case .resultSet(let variables) = results[0], case .resultSet(let replica) = results[1] else {
            Issue.record("not two result sets: \(results)")
            return
        }
        let state = try MySQLServerState(variables: variables, replicaStatus: replica)
        #expect(state == MySQLServerState(readOnly: true, innodbReadOnly: false, replica: .init(ioRunning: true, sqlRunning: false, secondsBehind: nil)))
        #expect(!state.isWritable)
        #expect("\(state)" == "read-only, replication stopped (IO running, SQL stopped)")
    }

    @Test func theRightStatementsForEachServer() throws {
        let maria = try MySQLHandshake(payload: Self.greeting().payload)
        #expect(MySQLServerState.query(for: maria) == "SELECT @@global.read_only, @@global.innodb_read_only; SHOW SLAVE STATUS")
        let mysql8 = try MySQLHandshake(payload: Self.greeting(version: "8.0.36").payload)
        #expect(MySQLServerState.query(for: mysql8).hasSuffix("@@global.super_read_only; SHOW REPLICA STATUS"))
        let mysql57 = try MySQLHandshake(payload: Self.greeting(version: "5.7.44-log").payload)
        #expect(MySQLServerState.query(for: mysql57).hasSuffix("SHOW SLAVE STATUS"))
        #expect(MySQLServerState.version("8.0.22", atLeast: (8, 0, 22)))
        #expect(!MySQLServerState.version("8.0.9", atLeast: (8, 0, 22)))
    }

    @Test func aLoginThenAQueryThenTheState() {
        var conversation = MySQLCheckConversation(credentials: MySQLCredentials(user: "monitor", password: Array("secret".utf8)))
        let login = conversation.receive(Self.greeting())
        let sent = login.send ?? []
        // HandshakeResponse41, sequence 1, carrying the user and the 20-byte scramble.
        #expect(sent.count > 4 && sent[3] == 1)
        #expect(Self.hex(sent).contains(Self.hex(Array("monitor".utf8) + [0, 20])))
        let query = conversation.receive(MySQLPacket(sequence: 2, payload: [0, 0, 0, 2, 0, 0, 0]))
        #expect(query.send.map { Array($0[4...]) } == [0x03] + Array("SELECT @@global.read_only, @@global.innodb_read_only; SHOW SLAVE STATUS".utf8))
        var step = MySQLCheckConversation.Step()
        let answer: [[UInt8]] = [
            [2], Self.column("a"), Self.column("b"), Self.eof(0x0A), Self.lengthEncoded("0") + Self.lengthEncoded("0"), Self.eof(0x0A),
            [1], Self.column("Slave_IO_Running"), Self.eof(2), Self.eof(2),
        ]
        for (index, payload) in answer.enumerated() { step = conversation.receive(MySQLPacket(sequence: UInt8(index + 1), payload: payload)) }
        #expect(step.result == .success(MySQLServerState(readOnly: false, innodbReadOnly: false)))
    }

    @Test func failuresNameTheirCause() {
        func run(_ packets: [MySQLPacket]) -> MySQLCheckConversation.Result? {
            var conversation = MySQLCheckConversation(credentials: MySQLCredentials(user: "monitor", password: [1]))
            for packet in packets {
                if let result = conversation.receive(packet).result { return result }
            }
            return nil
        }
        let ok = MySQLPacket(sequence: 2, payload: [0, 0, 0, 2, 0, 0, 0])
        #expect(run([MySQLPacket(sequence: 0, payload: [0xFF, 0x10, 0x04] + Array("#08004Too many connections".utf8))])
            == .failure(.serverError(code: 1040, message: "Too many connections")))
        #expect(run([Self.greeting(), MySQLPacket(sequence: 2, payload: [0xFF, 0x15, 0x04] + Array("#28000Access denied".utf8))])
            == .failure(.accessDenied(user: "monitor", message: "Access denied")))
        #expect(run([Self.greeting(), MySQLPacket(sequence: 2, payload: [0xFE] + Array("dialog".utf8) + [0, 1, 2])])
            == .failure(.unsupportedPlugin("dialog")))
        #expect(run([Self.greeting(), ok, MySQLPacket(sequence: 1, payload: [0xFF, 0xCB, 0x04] + Array("#42000Access denied; you need (at least one of) the SLAVE MONITOR privilege(s)".utf8))])
            == .failure(.missingGrant(message: "Access denied; you need (at least one of) the SLAVE MONITOR privilege(s)")))
        guard case .failure(.protocolError(let reason)) = run([MySQLPacket(sequence: 0, payload: [9, 1, 2])]) else {
            Issue.record("a bad greeting is not a protocol error")
            return
        }
        #expect(reason.hasPrefix("not a MySQL greeting"))
        guard case .failure(.protocolError) = run([Self.greeting(), ok, MySQLPacket(sequence: 1, payload: [0xFC])]) else {
            Issue.record("a cut-short column count is not a protocol error")
            return
        }
    }

    @Test func thePacketReaderBoundsWhatItHolds() throws {
        var reader = MySQLPacketReader(maximumPayload: 100)
        reader.append([3, 0, 0, 7, 1, 2])
        #expect(try reader.next() == nil)
        reader.append([3, 200, 0, 0, 8])
        #expect(try reader.next() == MySQLPacket(sequence: 7, payload: [1, 2, 3]))
        #expect(throws: MySQLProtocolError.self) { try reader.next() }
    }

    @Test func thePasswordFileMustBeTheOwnersAlone() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("pw")
        func write(_ text: String, mode: mode_t) {
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            chmod(path, mode)
        }
        write("s3cret\r\nignored\n", mode: 0o600)
        #expect(try MySQLCredentials.readPassword(from: path) == Array("s3cret".utf8))
        write("s3cret\n", mode: 0o640)
        #expect(throws: CredentialsError("the password file \(path) is readable by group or others (mode 0640); chmod 600 it")) {
            try MySQLCredentials.readPassword(from: path)
        }
        write("\n", mode: 0o400)
        #expect(throws: CredentialsError("the password file \(path) is empty")) { try MySQLCredentials.readPassword(from: path) }
        let link = directory.file("link")
        symlink(path, link)
        #expect(throws: CredentialsError.self) { try MySQLCredentials.readPassword(from: link) }
        #expect(throws: CredentialsError.self) { try MySQLCredentials.readPassword(from: directory.file("missing")) }
    }
}
