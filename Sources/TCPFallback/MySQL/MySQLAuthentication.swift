import Crypto
import CryptoExtras

/// The password scrambles of the two authentication methods the check speaks, and the RSA
/// step of `caching_sha2_password` over a plain connection. All hashing and RSA is
/// swift-crypto's; this file only arranges the bytes as the protocol documents them.
enum MySQLAuthentication {
    static let nativePassword = "mysql_native_password"
    static let cachingSHA2Password = "caching_sha2_password"

    static func speaks(_ plugin: String) -> Bool { plugin == nativePassword || plugin == cachingSHA2Password }

    /// What to send for `plugin` with `password` and the server's nonce, or nil for a method
    /// the check does not speak.
    static func response(plugin: String, password: [UInt8], scramble: [UInt8]) -> [UInt8]? {
        switch plugin {
        case nativePassword: return nativeScramble(password: password, scramble: scramble)
        case cachingSHA2Password: return sha2Scramble(password: password, scramble: scramble)
        default: return nil
        }
    }

    /// mysql_native_password: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))); an empty
    /// password sends nothing.
    static func nativeScramble(password: [UInt8], scramble: [UInt8]) -> [UInt8] {
        guard !password.isEmpty else { return [] }
        let stage1 = Array(Insecure.SHA1.hash(data: password))
        let stage2 = Array(Insecure.SHA1.hash(data: stage1))
        let mix = Array(Insecure.SHA1.hash(data: nonce(scramble) + stage2))
        return zip(stage1, mix).map { $0 ^ $1 }
    }

    /// caching_sha2_password's fast path: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce).
    static func sha2Scramble(password: [UInt8], scramble: [UInt8]) -> [UInt8] {
        guard !password.isEmpty else { return [] }
        let stage1 = Array(SHA256.hash(data: password))
        let stage2 = Array(SHA256.hash(data: stage1))
        let mix = Array(SHA256.hash(data: stage2 + nonce(scramble)))
        return zip(stage1, mix).map { $0 ^ $1 }
    }

    /// caching_sha2_password's full path without TLS: the password and a NUL, XORed with the
    /// nonce repeated, encrypted with the server's RSA public key (PEM) with OAEP padding.
    static func rsaEncryptedPassword(password: [UInt8], scramble: [UInt8], publicKeyPEM: String) throws(MySQLProtocolError) -> [UInt8] {
        let key: _RSA.Encryption.PublicKey
        do {
            key = try _RSA.Encryption.PublicKey(pemRepresentation: publicKeyPEM)
        } catch {
            throw MySQLProtocolError("the server's RSA public key is not usable: \(error)")
        }
        let nonce = nonce(scramble)
        guard !nonce.isEmpty else { throw MySQLProtocolError("no scramble to encrypt the password with") }
        let plain = (password + [0]).enumerated().map { $0.element ^ nonce[$0.offset % nonce.count] }
        do {
            return Array(try key.encrypt(plain, padding: .PKCS1_OAEP))
        } catch {
            throw MySQLProtocolError("cannot encrypt the password with the server's RSA key: \(error)")
        }
    }

    /// The nonce proper: servers send 20 bytes, sometimes followed by a NUL.
    private static func nonce(_ scramble: [UInt8]) -> [UInt8] {
        scramble.count > 20 ? Array(scramble.prefix(20)) : scramble
    }
}
