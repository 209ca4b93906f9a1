/// How proxies of one group share the decision of where new clients go (`-etcd-group`).
public struct GroupSettings: Sendable, Equatable {
    /// How many live members must see a backend down before the group moves off it.
    public enum Quorum: Sendable, Equatable, CustomStringConvertible {
        /// More than half of the members with a live lease.
        case majority
        /// At least this many (capped by the members alive: a group of one decides alone).
        case count(Int)

        /// The votes needed among `live` members.
        public func needed(live: Int) -> Int {
            switch self {
            case .majority: live / 2 + 1
            case .count(let n): max(1, min(n, live))
            }
        }

        public var description: String {
            switch self {
            case .majority: "majority"
            case .count(let n): "\(n)"
            }
        }

        public init?(_ text: String) {
            if text == "majority" {
                self = .majority
            } else if let n = Int(text), n >= 1, n <= 1000 {
                self = .count(n)
            } else {
                return nil
            }
        }
    }

    /// What a member serves while it has lost etcd (its lease expired).
    public enum LostPolicy: String, Sendable, CaseIterable {
        /// The last decision it saw: clients keep working; the rest of the group may decide
        /// otherwise meanwhile (the split the group exists to prevent, bounded by the outage).
        case keep
        /// No new clients until etcd is back: no split, but no service from this member.
        case refuse
    }

    public var name: String
    public var quorum: Quorum = .majority
    public var lost: LostPolicy = .keep
    /// This member's name in the group (default: host name and process id).
    public var member: String
    /// The lease of the member's key: a member silent this long is no longer counted.
    public var leaseTTL: Duration

    public init(name: String, member: String, leaseTTL: Duration) {
        self.name = name
        self.member = member
        self.leaseTTL = leaseTTL
    }

    /// Keys of the group: beside the backends' prefix, not under it, so that deleting the
    /// backends' keys (by mistake, or to rewrite them) leaves the group's decision alone.
    /// "/services/mysql/" gives "/services/mysql.groups/NAME/".
    public func key(_ suffix: String, prefix: String) -> String {
        var base = prefix
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base).groups/\(name)/\(suffix)"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension GroupSettings {
    /// The machine's host name, for the default member name.
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "HOST:PID": unique among the proxies of one host, and says where a member runs.
    public static func defaultMemberName() -> String { "\(hostName()):\(getpid())" }
}
