/// One text-protocol result set: column names and rows (NULL as nil).
struct MySQLResultSet: Equatable {
    var columns: [String]
    var rows: [[String?]]

    /// The value of `column` in the first row, by name, case-insensitively; nil when there is
    /// no row, no such column, or NULL.
    func first(_ column: String) -> String? {
        guard let row = rows.first,
            let index = columns.firstIndex(where: { $0.caseInsensitiveCompare(column) })
        else { return nil }
        return index < row.count ? row[index] : nil
    }
}

extension String {
    fileprivate func caseInsensitiveCompare(_ other: String) -> Bool { lowercased() == other.lowercased() }
}

/// Reads the answer to a COM_QUERY (without CLIENT_DEPRECATE_EOF): for each statement a
/// result set (column count, column definitions, EOF, rows, EOF) or an OK or error packet;
/// the status flags of the closing EOF or OK say whether another result follows.
///
/// Contract: feed it the packets after the query in order with `receive`; it returns the
/// results once the last one is complete, nil while more are needed, and throws on a packet
/// that does not fit.
struct MySQLResultSetParser {
    enum Outcome: Equatable {
        case resultSet(MySQLResultSet)
        /// A statement that returns no rows.
        case ok
        case error(code: Int, message: String)
    }

    private enum State {
        case start
        case columns(remaining: Int, names: [String])
        case columnsEOF([String])
        case rows(MySQLResultSet)
    }

    private static let moreResultsExist: UInt64 = 0x0008
    private var state = State.start
    private(set) var outcomes: [Outcome] = []

    mutating func receive(_ packet: MySQLPacket) throws(MySQLProtocolError) -> [Outcome]? {
        switch state {
        case .start:
            if packet.isError {
                // An error ends the whole answer: later statements do not run.
                let error = packet.error ?? (0, "")
                outcomes.append(.error(code: error.code, message: error.message))
                return outcomes
            }
            var reader = MySQLPayloadReader(packet.payload)
            if packet.isOK {
                _ = try reader.byte("OK header")
                _ = try reader.lengthEncoded("affected rows")
                _ = try reader.lengthEncoded("last insert id")
                let status = try reader.integer(2, "status flags")
                outcomes.append(.ok)
                return status & Self.moreResultsExist != 0 ? nil : outcomes
            }
            guard let count = try reader.lengthEncoded("column count"), count > 0, count < 4096 else {
                throw MySQLProtocolError("a result set with an invalid column count")
            }
            state = .columns(remaining: Int(count), names: [])
        case .columns(let remaining, var names):
            var reader = MySQLPayloadReader(packet.payload)
            for field in ["catalog", "schema", "table", "original table"] { _ = try reader.lengthEncodedString(field) }
            names.append(try reader.lengthEncodedString("column name") ?? "")
            state = remaining > 1 ? .columns(remaining: remaining - 1, names: names) : .columnsEOF(names)
        case .columnsEOF(let names):
            guard packet.isEOF else { throw MySQLProtocolError("no EOF after the column definitions") }
            state = .rows(MySQLResultSet(columns: names, rows: []))
        case .rows(var resultSet):
            if packet.isEOF {
                var reader = MySQLPayloadReader(packet.payload, offset: 1)
                _ = try reader.integer(2, "warnings")
                let status = try reader.integer(2, "status flags")
                outcomes.append(.resultSet(resultSet))
                state = .start
                return status & Self.moreResultsExist != 0 ? nil : outcomes
            }
            if packet.isError {
                let error = packet.error ?? (0, "")
                outcomes.append(.error(code: error.code, message: error.message))
                return outcomes
            }
            var reader = MySQLPayloadReader(packet.payload)
            var row: [String?] = []
            for index in resultSet.columns.indices { row.append(try reader.lengthEncodedString("value of \(resultSet.columns[index])")) }
            resultSet.rows.append(row)
            state = .rows(resultSet)
        }
        return nil
    }
}
