import NIOCore
import PostgresNIO
import SQLKit

/// Rows in the text format of PostgreSQL's `COPY … FROM STDIN`, written field by field.
///
/// A part of a row (its leading fields) can be built apart and spliced into rows later, so work that
/// does not depend on the rest is done before a transaction starts.
public struct CopyRows: Sendable {
    private(set) var bytes: [UInt8] = []
    private var rowStarted = false

    /// Empty rows, with room for about `capacity` bytes.
    public init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    /// The number of bytes written so far.
    public var count: Int { bytes.count }

    /// Appends a text field, escaping what the format reserves (backslash, tab, newline, carriage return).
    public mutating func append(_ text: String) {
        separate()
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): escape(UInt8(ascii: "\\"))
            case UInt8(ascii: "\t"): escape(UInt8(ascii: "t"))
            case UInt8(ascii: "\n"): escape(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): escape(UInt8(ascii: "r"))
            default: bytes.append(byte)
            }
        }
    }

    /// Appends an integer field.
    public mutating func append(_ integer: Int64) {
        separate()
        bytes += integer.description.utf8
    }

    /// Appends a `bytea` field (hexadecimal, its backslash escaped).
    public mutating func append(bytes value: [UInt8]) {
        separate()
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        escape(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "x"))
        for byte in value {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
    }

    /// Appends the fields of `part`, a row begun elsewhere and not ended.
    public mutating func append(fieldsOf part: CopyRows) {
        guard !part.bytes.isEmpty else { return }
        separate()
        bytes += part.bytes
    }

    /// Ends the current row.
    public mutating func endRow() {
        bytes.append(UInt8(ascii: "\n"))
        rowStarted = false
    }

    private mutating func escape(_ byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(byte)
    }

    private mutating func separate() {
        if rowStarted { bytes.append(UInt8(ascii: "\t")) }
        rowStarted = true
    }
}

extension SQLDatabase {
    /// Writes `rows` into `columns` of `table` with one `COPY … FROM STDIN` (PostgreSQL only): the rows
    /// stream as data, without a statement to plan or arrays to unpack. `table` and `columns` are SQL
    /// names written by the caller, never input.
    public func copy(_ rows: CopyRows, into table: String, columns: [String]) async throws {
        guard let postgres = self as? PostgresSQLDatabase else {
            throw DatabaseError(description: "COPY is PostgreSQL's: \(dialect.name) cannot run it")
        }
        let connection = postgres.connection
        guard !connection.isClosed else { throw PostgresConnection.closedError }
        try await connection.copyFrom(table: table, columns: columns, logger: connection.logger) { writer in
            var start = 0
            while start < rows.bytes.count {  // CopyData messages of at most 64 KiB
                let end = min(start + 65_536, rows.bytes.count)
                try await writer.write(ByteBuffer(bytes: rows.bytes[start..<end]))
                start = end
            }
        }
    }
}
