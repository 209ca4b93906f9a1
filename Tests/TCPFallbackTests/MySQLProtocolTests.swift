import Testing
@testable import TCPFallback

@Suite struct MySQLProtocolTests {
    @Test func readsGreetingsErrorsAndGarbage() {
        let handshake = MySQLProtocol.packet([10] + Array("10.11.6-MariaDB".utf8) + [0, 1, 2, 3], sequence: 0)
        #expect(MySQLProtocol.parseGreeting(handshake) == .handshake(version: "10.11.6-MariaDB"))
        #expect(MySQLProtocol.parseGreeting(Array(handshake.prefix(8))) == .incomplete)

        let error = MySQLProtocol.packet([0xFF, 0x69, 0x04] + Array("#HY000Host '1.2.3.4' is blocked".utf8), sequence: 0)
        #expect(MySQLProtocol.parseGreeting(error) == .error(code: 1129, message: "Host '1.2.3.4' is blocked"))
        // Pre-4.1 error packets have no SQL state.
        let old = MySQLProtocol.packet([0xFF, 0x10, 0x04] + Array("Too many connections".utf8), sequence: 0)
        #expect(MySQLProtocol.parseGreeting(old) == .error(code: 1040, message: "Too many connections"))

        #expect(MySQLProtocol.parseGreeting(Array("SSH-2.0-OpenSSH\r\n".utf8)) == .malformed("packet length 4739923"))
        #expect(MySQLProtocol.parseGreeting(MySQLProtocol.packet([9, 0], sequence: 0)) == .malformed("protocol version 9"))
    }

    @Test func theLoginIsAWellFormedHandshakeResponse() {
        let packet = MySQLProtocol.handshakeResponse(user: "probe")
        let length = Int(packet[0]) | Int(packet[1]) << 8 | Int(packet[2]) << 16
        #expect(packet.count == 4 + length)
        #expect(packet[3] == 1)  // sequence after the greeting
        #expect(packet[4 + 32..<4 + 32 + 6] == Array("probe\0".utf8)[...])
        #expect(MySQLProtocol.quit == [1, 0, 0, 0, 1])
    }
}
