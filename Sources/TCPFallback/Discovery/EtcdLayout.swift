import FoundationEssentials  // JSONDecoder; not Foundation, which would bring ICU into the binary

/// How a list of backends is written under an etcd prefix (`-etcd-layout`). Parsing is pure:
/// the keys under the prefix in, the ordered list and what was wrong with the rest out.
public enum EtcdLayout: String, Sendable, CaseIterable {
    /// etcd-netfw's: `PREFIX/N` or `PREFIX/N/location` = `{"host":"10.0.0.10","port":3306}`,
    /// ordered by the number N.
    case netfw
    /// go-proxy's: one key per backend, `PREFIX/HOST:PORT` (its value is not read), in key order.
    case groxy
    /// Ours: one key, `PREFIX/backends` = `["10.0.0.10:3306", "10.0.0.11:3306"]`, in order. One
    /// key makes a change of order or of the whole list one atomic write.
    case native

    /// The list from `keys` (full key → value), with a line for each key that was skipped.
    /// `prefix` ends with "/".
    public func backends(from keys: [String: [UInt8]], prefix: String) -> (list: [Endpoint], problems: [String]) {
        var problems: [String] = []
        switch self {
        case .netfw:
            var numbered: [(number: Int, name: String, endpoint: Endpoint)] = []
            for (key, value) in keys {
                let name = String(key.dropFirst(prefix.count))
                let parts = name.split(separator: "/", omittingEmptySubsequences: false)
                // Other keys under an instance (PREFIX/N/whatever) are not ours to read.
                guard parts.count == 1 || (parts.count == 2 && parts[1] == "location") else { continue }
                guard let number = Int(parts[0]) else {
                    problems.append("\(key): the name after the prefix must be a number")
                    continue
                }
                do {
                    numbered.append((number, name, try Self.netfwLocation(value)))
                } catch {
                    problems.append("\(key): \(error)")
                }
            }
            numbered.sort { ($0.number, $0.name) < ($1.number, $1.name) }
            return (numbered.map(\.endpoint), problems)
        case .groxy:
            var list: [Endpoint] = []
            for key in keys.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                let name = String(key.dropFirst(prefix.count))
                guard !name.isEmpty, !name.contains("/") else { continue }
                do {
                    list.append(try Endpoint(parsing: name, role: .backend))
                } catch {
                    problems.append("\(key): \(error)")
                }
            }
            return (list, problems)
        case .native:
            let key = prefix + "backends"
            guard let value = keys[key] else { return ([], []) }
            guard let array = try? JSONDecoder().decode([String].self, from: Data(value)) else {
                return ([], ["\(key): expected a JSON array of \"HOST:PORT\" strings"])
            }
            var list: [Endpoint] = []
            for (position, text) in array.enumerated() {
                do {
                    list.append(try Endpoint(parsing: text, role: .backend))
                } catch {
                    problems.append("\(key)[\(position)]: \(error)")
                }
            }
            return (list, problems)
        }
    }

    struct LayoutError: Error, CustomStringConvertible {
        let description: String
    }

    /// etcd-netfw's value; its port may be a number or a string of one.
    private struct NetfwLocation: Decodable {
        let host: String
        let port: Int?

        enum CodingKeys: String, CodingKey { case host, port }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            host = try container.decode(String.self, forKey: .host)
            if let number = try? container.decode(Int.self, forKey: .port) {
                port = number
            } else {
                port = (try? container.decode(String.self, forKey: .port)).flatMap { Int($0) }
            }
        }
    }

    private static func netfwLocation(_ value: [UInt8]) throws -> Endpoint {
        guard let location = try? JSONDecoder().decode(NetfwLocation.self, from: Data(value)), !location.host.isEmpty else {
            throw LayoutError(description: "expected {\"host\":\"ADDRESS\",\"port\":PORT}")
        }
        guard let port = location.port, (1...65535).contains(port) else { throw LayoutError(description: "\"port\" must be a number from 1 to 65535") }
        return Endpoint(host: location.host, port: port)
    }

    /// The prefix with exactly one "/" at the end, so "/srv/db" does not also match "/srv/db2".
    public static func normalize(prefix: String) -> String {
        var prefix = prefix
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return prefix + "/"
    }
}
