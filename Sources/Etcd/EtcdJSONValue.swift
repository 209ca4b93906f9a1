import FoundationEssentials

/// A JSON value of any shape, read and written with FoundationEssentials' coders: the gateway's
/// answers are read as loosely typed objects (`[String: Any]`) without Foundation's
/// JSONSerialization, whose module would bring ICU's data into the binary.
enum EtcdJSONValue: Codable {
    case object([String: EtcdJSONValue])
    case array([EtcdJSONValue])
    case string(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let integer = try? container.decode(Int64.self) {
            self = .integer(integer)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let array = try? container.decode([EtcdJSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: EtcdJSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .object(let object): try container.encode(object)
        case .array(let array): try container.encode(array)
        case .string(let text): try container.encode(text)
        case .integer(let integer): try container.encode(integer)
        case .number(let number): try container.encode(number)
        case .bool(let flag): try container.encode(flag)
        case .null: try container.encodeNil()
        }
    }

    /// As `[String: Any]`, `[Any]`, `String`, `Int64`, `Double`, `Bool` or `nil` (for null).
    var any: Any? {
        switch self {
        case .object(let object): object.compactMapValues(\.any)
        case .array(let array): array.compactMap(\.any)
        case .string(let text): text
        case .integer(let integer): integer
        case .number(let number): number
        case .bool(let flag): flag
        case .null: nil
        }
    }

    /// From the loosely typed values requests are built of; nil for a type JSON has no room for.
    init?(_ value: Any) {
        switch value {
        case let text as String: self = .string(text)
        case let flag as Bool: self = .bool(flag)
        case let integer as Int: self = .integer(Int64(integer))
        case let integer as Int64: self = .integer(integer)
        case let number as Double: self = .number(number)
        case let array as [Any]:
            var values: [EtcdJSONValue] = []
            for element in array {
                guard let value = EtcdJSONValue(element) else { return nil }
                values.append(value)
            }
            self = .array(values)
        case let object as [String: Any]:
            var values: [String: EtcdJSONValue] = [:]
            for (key, element) in object {
                guard let value = EtcdJSONValue(element) else { return nil }
                values[key] = value
            }
            self = .object(values)
        default: return nil
        }
    }
}
