/// The server's first packet (protocol version 10): what the check needs to log in.
struct MySQLHandshake: Equatable {
    var serverVersion: String
    var capabilities: UInt32
    /// The nonce the password is scrambled with (20 bytes from current servers).
    var scramble: [UInt8]
    /// The authentication method the server proposes first (it may switch later).
    var authPlugin: String

    /// Whether the server is MariaDB (its version says so): the variables and statements
    /// that tell a server's role differ from MySQL's.
    var isMariaDB: Bool { serverVersion.contains("MariaDB") }

    init(serverVersion: String, capabilities: UInt32, scramble: [UInt8], authPlugin: String) {
        self.serverVersion = serverVersion
        self.capabilities = capabilities
        self.scramble = scramble
        self.authPlugin = authPlugin
    }

    /// Parses a handshake payload (the packet's payload, not an error packet).
    init(payload: [UInt8]) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload)
        let version = try reader.byte("protocol version")
        guard version == 10 else { throw MySQLProtocolError("protocol version \(version), not 10") }
        serverVersion = String(decoding: reader.nulTerminated("server version"), as: UTF8.self)
        _ = try reader.integer(4, "connection id")
        scramble = try reader.fixed(8, "scramble")
        _ = try reader.byte("filler")
        capabilities = UInt32(try reader.integer(2, "capabilities"))
        authPlugin = "mysql_native_password"
        guard !reader.isAtEnd else { return }
        _ = try reader.byte("character set")
        _ = try reader.integer(2, "status")
        capabilities |= UInt32(try reader.integer(2, "capabilities")) << 16
        let scrambleLength = Int(try reader.byte("scramble length"))
        _ = try reader.fixed(10, "reserved bytes")
        if capabilities & MySQLCapabilities.secureConnection != 0 {
            // The second part: at least 12 bytes and a NUL, or the announced length less 8.
            let length = max(13, scrambleLength - 8)
            var part = try reader.fixed(min(length, reader.remaining), "scramble")
            if part.last == 0 { part.removeLast() }
            scramble += part
        }
        if capabilities & MySQLCapabilities.pluginAuth != 0 {
            authPlugin = String(decoding: reader.nulTerminated("authentication plugin"), as: UTF8.self)
        }
    }
}

/// The capability flags the check uses.
enum MySQLCapabilities {
    static let longPassword: UInt32 = 0x0000_0001
    static let protocol41: UInt32 = 0x0000_0200
    static let transactions: UInt32 = 0x0000_2000
    static let secureConnection: UInt32 = 0x0000_8000
    static let multiStatements: UInt32 = 0x0001_0000
    static let multiResults: UInt32 = 0x0002_0000
    static let pluginAuth: UInt32 = 0x0008_0000
}
