/// The client side of the MySQL check, as a state machine fed with the server's packets: the
/// greeting, a login (anonymous, or with credentials by `mysql_native_password` or
/// `caching_sha2_password`, following an auth switch), and with credentials one query that
/// reads the server's role. It does no I/O: `MySQLCheck` sends what it returns.
///
/// Contract: call `receive` with each packet in order; each call returns what to send (if
/// anything) and, once the conversation is over, the result. After a result nothing more is
/// accepted. The caller ends every conversation with COM_QUIT, so a server never counts it as
/// an interrupted handshake (`max_connect_errors`).
struct MySQLCheckConversation {
    /// What the check learned: nil without credentials (anonymous: the server answered).
    typealias Result = Swift.Result<MySQLServerState?, MySQLCheckFailure>

    struct Step: Equatable {
        var send: [UInt8]?
        var result: Result?
    }

    private enum State {
        case greeting
        /// Anonymous: any answer to the login ends it.
        case anonymousLogin
        case login(plugin: String, scramble: [UInt8])
        /// caching_sha2_password's full path: the server's public key was asked for.
        case publicKey(scramble: [UInt8])
        case query(MySQLResultSetParser)
        case done
    }

    private let credentials: MySQLCredentials?
    private let anonymousUser: String
    private var state = State.greeting
    private var handshake: MySQLHandshake?

    init(credentials: MySQLCredentials?, anonymousUser: String = "tcp-fallback-check") {
        self.credentials = credentials
        self.anonymousUser = anonymousUser
    }

    mutating func receive(_ packet: MySQLPacket) -> Step {
        do {
            return try advance(packet)
        } catch {
            state = .done
            return Step(result: .failure(.protocolError("not a MySQL answer: \(error.description)")))
        }
    }

    private mutating func advance(_ packet: MySQLPacket) throws(MySQLProtocolError) -> Step {
        switch state {
        case .greeting:
            if let error = packet.error { return finish(.failure(.serverError(code: error.code, message: error.message))) }
            let handshake: MySQLHandshake
            do {
                handshake = try MySQLHandshake(payload: packet.payload)
            } catch {
                return finish(.failure(.protocolError("not a MySQL greeting: \(error.description)")))
            }
            self.handshake = handshake
            guard let credentials else {
                state = .anonymousLogin
                return Step(send: MySQLProtocol.handshakeResponse(user: anonymousUser))
            }
            // A method we do not speak: answer with ours; the server switches if it can.
            let plugin = MySQLAuthentication.speaks(handshake.authPlugin) ? handshake.authPlugin : MySQLAuthentication.nativePassword
            let response = MySQLAuthentication.response(plugin: plugin, password: credentials.password, scramble: handshake.scramble) ?? []
            state = .login(plugin: plugin, scramble: handshake.scramble)
            return Step(send: loginPacket(credentials.user, response, plugin: plugin, serverCapabilities: handshake.capabilities, sequence: packet.sequence &+ 1))
        case .anonymousLogin:
            return finish(.success(nil))
        case .login(let plugin, let scramble):
            return try authenticationAnswer(packet, plugin: plugin, scramble: scramble)
        case .publicKey(let scramble):
            guard packet.payload.first == 0x01, let credentials else {
                if let error = packet.error { return finish(.failure(Self.loginFailure(error, user: credentials?.user ?? ""))) }
                throw MySQLProtocolError("no public key from the server")
            }
            let pem = String(decoding: packet.payload.dropFirst(), as: UTF8.self)
            let encrypted = try MySQLAuthentication.rsaEncryptedPassword(password: credentials.password, scramble: scramble, publicKeyPEM: pem)
            state = .login(plugin: MySQLAuthentication.cachingSHA2Password, scramble: scramble)
            return Step(send: MySQLPacket(sequence: packet.sequence &+ 1, payload: encrypted).encoded)
        case .query(var parser):
            guard let outcomes = try parser.receive(packet) else {
                state = .query(parser)
                return Step()
            }
            return finish(try Self.serverState(from: outcomes))
        case .done:
            return Step()
        }
    }

    /// The server's answer to a login: OK, an error, an auth switch or more data.
    private mutating func authenticationAnswer(_ packet: MySQLPacket, plugin: String, scramble: [UInt8]) throws(MySQLProtocolError) -> Step {
        guard let credentials, let handshake else { throw MySQLProtocolError("a login answer before a login") }
        switch packet.payload.first {
        case 0x00:
            state = .query(MySQLResultSetParser())
            let query = MySQLServerState.query(for: handshake)
            return Step(send: MySQLPacket(sequence: 0, payload: [0x03] + Array(query.utf8)).encoded)
        case 0xFF:
            return finish(.failure(Self.loginFailure(packet.error ?? (0, ""), user: credentials.user)))
        case 0xFE:
            // Auth switch: another method, with a fresh nonce.
            var reader = MySQLPayloadReader(packet.payload, offset: 1)
            let newPlugin = String(decoding: reader.nulTerminated("plugin"), as: UTF8.self)
            var nonce = reader.rest()
            if nonce.last == 0 { nonce.removeLast() }
            guard let response = MySQLAuthentication.response(plugin: newPlugin, password: credentials.password, scramble: nonce) else {
                return finish(.failure(.unsupportedPlugin(newPlugin.isEmpty ? "mysql_old_password" : newPlugin)))
            }
            state = .login(plugin: newPlugin, scramble: nonce)
            return Step(send: MySQLPacket(sequence: packet.sequence &+ 1, payload: response).encoded)
        case 0x01 where plugin == MySQLAuthentication.cachingSHA2Password:
            switch packet.payload.dropFirst().first {
            case 0x03:
                return Step()  // fast path: the server had the password cached; OK follows
            case 0x04:
                // Full path on a plain connection: ask for the server's RSA public key.
                state = .publicKey(scramble: scramble)
                return Step(send: MySQLPacket(sequence: packet.sequence &+ 1, payload: [0x02]).encoded)
            default:
                throw MySQLProtocolError("an unexpected caching_sha2_password step")
            }
        default:
            throw MySQLProtocolError("an unexpected answer to the login (0x\(String(packet.payload.first ?? 0, radix: 16)))")
        }
    }

    private mutating func finish(_ result: Result) -> Step {
        state = .done
        return Step(result: result)
    }

    private static func loginFailure(_ error: (code: Int, message: String), user: String) -> MySQLCheckFailure {
        error.code == 1045 ? .accessDenied(user: user, message: error.message) : .serverError(code: error.code, message: error.message)
    }

    private static func serverState(from outcomes: [MySQLResultSetParser.Outcome]) throws(MySQLProtocolError) -> Result {
        var sets: [MySQLResultSet] = []
        for outcome in outcomes {
            switch outcome {
            case .resultSet(let set): sets.append(set)
            case .ok: continue
            case .error(let code, let message):
                // 1227: "you need (at least one of) the ... privilege(s)"; 1142/1044: no access.
                return .failure([1227, 1142, 1044].contains(code) ? .missingGrant(message: message) : .serverError(code: code, message: message))
            }
        }
        guard sets.count == 2 else { throw MySQLProtocolError("\(sets.count) result sets instead of 2") }
        return .success(try MySQLServerState(variables: sets[0], replicaStatus: sets[1]))
    }

    /// HandshakeResponse41 with the capabilities both sides have.
    private func loginPacket(_ user: String, _ response: [UInt8], plugin: String, serverCapabilities: UInt32, sequence: UInt8) -> [UInt8] {
        let wanted = MySQLCapabilities.longPassword | MySQLCapabilities.protocol41 | MySQLCapabilities.transactions
            | MySQLCapabilities.secureConnection | MySQLCapabilities.multiStatements | MySQLCapabilities.multiResults
            | MySQLCapabilities.pluginAuth
        let capabilities = wanted & (serverCapabilities | MySQLCapabilities.protocol41 | MySQLCapabilities.secureConnection)
        var payload: [UInt8] = []
        for shift in stride(from: 0, to: 32, by: 8) { payload.append(UInt8(capabilities >> UInt32(shift) & 0xFF)) }
        payload += [0, 0, 0, 1]  // max packet size 16 MiB
        payload.append(33)  // utf8_general_ci
        payload += [UInt8](repeating: 0, count: 23)
        payload += Array(user.utf8) + [0]
        payload.append(UInt8(response.count))
        payload += response
        if capabilities & MySQLCapabilities.pluginAuth != 0 { payload += Array(plugin.utf8) + [0] }
        return MySQLPacket(sequence: sequence, payload: payload).encoded
    }
}

/// Why a MySQL check failed, in words an operator can act on.
enum MySQLCheckFailure: Error, Equatable, CustomStringConvertible {
    case serverError(code: Int, message: String)
    case accessDenied(user: String, message: String)
    case missingGrant(message: String)
    case unsupportedPlugin(String)
    case protocolError(String)

    var description: String {
        switch self {
        case .serverError(let code, let message): "server error \(code): \(message)"
        case .accessDenied(let user, let message): "login as \(user) refused (wrong user or password?): \(message)"
        case .missingGrant(let message): "the check user lacks a grant: \(message) (grant it REPLICATION CLIENT, or SLAVE MONITOR on MariaDB)"
        case .unsupportedPlugin(let plugin): "the server asks for authentication method \(plugin), which the check does not speak (mysql_native_password and caching_sha2_password only)"
        case .protocolError(let reason): reason
        }
    }
}
