/// What a MySQL/MariaDB server said about its role in the check's one query: whether it
/// accepts writes, and whether it is a replica that keeps up.
public struct MySQLServerState: Sendable, Equatable {
    /// `@@read_only`.
    public var readOnly: Bool
    /// `@@innodb_read_only` (the storage engine refuses writes, whatever `read_only` says).
    public var innodbReadOnly: Bool
    /// `@@super_read_only` on MySQL; nil on MariaDB, which has no such variable.
    public var superReadOnly: Bool?
    /// The replica's state; nil when the server replicates from nothing.
    public var replica: Replica?

    public struct Replica: Sendable, Equatable {
        /// The IO thread (fetching from the primary) is running: "Yes" (not "Connecting").
        public var ioRunning: Bool
        /// The SQL thread (applying) is running.
        public var sqlRunning: Bool
        /// `Seconds_Behind_Master`; nil (NULL) when a thread is stopped.
        public var secondsBehind: Int?

        public init(ioRunning: Bool, sqlRunning: Bool, secondsBehind: Int?) {
            self.ioRunning = ioRunning
            self.sqlRunning = sqlRunning
            self.secondsBehind = secondsBehind
        }

        public var isReplicating: Bool { ioRunning && sqlRunning }
    }

    public init(readOnly: Bool, innodbReadOnly: Bool, superReadOnly: Bool? = nil, replica: Replica? = nil) {
        self.readOnly = readOnly
        self.innodbReadOnly = innodbReadOnly
        self.superReadOnly = superReadOnly
        self.replica = replica
    }

    /// Accepts writes from an ordinary user.
    public var isWritable: Bool { !readOnly && !innodbReadOnly && superReadOnly != true }

    /// How the check asks, for a server that announced `handshake` (one round trip, two
    /// statements: CLIENT_MULTI_STATEMENTS).
    static func query(for handshake: MySQLHandshake) -> String {
        if handshake.isMariaDB {
            return "SELECT @@global.read_only, @@global.innodb_read_only; SHOW SLAVE STATUS"
        }
        // MySQL 8.0.22 renamed the statement and its columns; 8.4 removed the old names.
        let replicaStatement = Self.version(handshake.serverVersion, atLeast: (8, 0, 22)) ? "SHOW REPLICA STATUS" : "SHOW SLAVE STATUS"
        return "SELECT @@global.read_only, @@global.innodb_read_only, @@global.super_read_only; \(replicaStatement)"
    }

    /// Reads the answers to `query(for:)`.
    init(variables: MySQLResultSet, replicaStatus: MySQLResultSet) throws(MySQLProtocolError) {
        guard let row = variables.rows.first, row.count >= 2 else { throw MySQLProtocolError("no row of variables") }
        func flag(_ value: String?) -> Bool { value == "1" || value?.uppercased() == "ON" }
        readOnly = flag(row[0])
        innodbReadOnly = flag(row[1])
        superReadOnly = row.count >= 3 ? flag(row[2]) : nil
        guard !replicaStatus.rows.isEmpty else {
            replica = nil
            return
        }
        let io = replicaStatus.first("Slave_IO_Running") ?? replicaStatus.first("Replica_IO_Running")
        let sql = replicaStatus.first("Slave_SQL_Running") ?? replicaStatus.first("Replica_SQL_Running")
        let behind = replicaStatus.first("Seconds_Behind_Master") ?? replicaStatus.first("Seconds_Behind_Source")
        replica = Replica(ioRunning: io == "Yes", sqlRunning: sql == "Yes", secondsBehind: behind.flatMap { Int($0) })
    }

    /// Compares the leading numbers of a version string ("8.0.36-log") with `minimum`.
    static func version(_ text: String, atLeast minimum: (Int, Int, Int)) -> Bool {
        let numbers = text.prefix { $0.isNumber || $0 == "." }.split(separator: ".").map { Int($0) ?? 0 }
        let parts = (numbers.count > 0 ? numbers[0] : 0, numbers.count > 1 ? numbers[1] : 0, numbers.count > 2 ? numbers[2] : 0)
        return parts >= minimum
    }
}

extension MySQLServerState: CustomStringConvertible {
    /// For logs and `show backends`: "writable", "read-only", and a replica's threads and lag.
    public var description: String {
        var text = isWritable ? "writable" : "read-only"
        if let replica {
            if replica.isReplicating {
                text += ", replicating, \(replica.secondsBehind.map { "\($0)s behind" } ?? "lag unknown")"
            } else {
                text += ", replication stopped (IO \(replica.ioRunning ? "running" : "stopped"), SQL \(replica.sqlRunning ? "running" : "stopped"))"
            }
        }
        return text
    }
}
