import FoundationEssentials  // not Foundation: its module would bring ICU's data into the binary

/// Reading and writing the gateway's JSON. Protobuf's JSON mapping writes int64 fields as
/// strings and leaves out every field at its default (0, false, empty), so each reader here
/// accepts a string or a number and treats a missing field as the default.
enum EtcdJSON {
    static func encode(_ object: [String: Any]) throws -> [UInt8] {
        guard let value = EtcdJSONValue(object), let data = try? JSONEncoder().encode(value) else {
            throw EtcdError.badResponse("cannot encode a request: \(object)")
        }
        return Array(data)
    }

    static func object<Bytes: Collection>(_ bytes: Bytes) throws -> [String: Any] where Bytes.Element == UInt8 {
        let parsed: Any?
        do {
            parsed = try JSONDecoder().decode(EtcdJSONValue.self, from: Data(bytes)).any
        } catch {
            throw EtcdError.badResponse("not JSON: \(preview(bytes))")
        }
        guard let object = parsed as? [String: Any] else { throw EtcdError.badResponse("not a JSON object: \(preview(bytes))") }
        return object
    }

    /// The first few hundred bytes of an answer, for error messages.
    static func preview<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let text = String(decoding: bytes.prefix(300), as: UTF8.self)
        return bytes.count > 300 ? text + "..." : text
    }

    static func int64(_ value: Any?) -> Int64 {
        switch value {
        case let text as String: return Int64(text) ?? 0
        case let number as Int: return Int64(number)
        case let number as Int64: return number
        case let number as Double where number.isFinite && abs(number) < 9.2e18: return Int64(number)
        default: return 0
        }
    }

    static func bool(_ value: Any?) -> Bool {
        switch value {
        case let flag as Bool: return flag
        case let text as String: return text == "true"
        default: return false
        }
    }

    /// header.revision of an answer (or of a nested response).
    static func revision(_ object: [String: Any]) -> Int64 {
        int64((object["header"] as? [String: Any])?["revision"])
    }

    static func keyValue(_ value: Any?) throws -> EtcdKeyValue {
        guard let object = value as? [String: Any] else { throw EtcdError.badResponse("a key-value is not a JSON object") }
        let key = try EtcdKeys.bytes(base64: object["key"] as? String)
        return EtcdKeyValue(
            key: String(decoding: key, as: UTF8.self),
            value: try EtcdKeys.bytes(base64: object["value"] as? String),
            createRevision: int64(object["create_revision"]),
            modRevision: int64(object["mod_revision"]),
            version: int64(object["version"]),
            lease: int64(object["lease"]))
    }

    static func keyValues(_ value: Any?) throws -> [EtcdKeyValue] {
        guard let value else { return [] }
        guard let list = value as? [Any] else { throw EtcdError.badResponse("kvs is not a list") }
        return try list.map(keyValue)
    }

    /// The error an answer carries, if any, as (message, gRPC code). The gateway writes a
    /// unary error as {"error": "...", "message": "...", "code": N} and an error inside a
    /// stream as {"error": {"grpc_code": N, "message": "...", ...}}.
    static func error(in object: [String: Any]) -> (message: String, code: Int)? {
        if let nested = object["error"] as? [String: Any] {
            let message = (nested["message"] as? String) ?? (nested["error"] as? String) ?? "unknown error"
            return (message, Int(int64(nested["grpc_code"] ?? nested["code"])))
        }
        if let text = object["error"] as? String, !text.isEmpty {
            return ((object["message"] as? String) ?? text, Int(int64(object["code"])))
        }
        return nil
    }
}
