import SQLKit
import SQLiteKit

/// Reads a row's columns the fast way: SQLite's values directly, PostgreSQL's through PostgresNIO's
/// typed decoding (exports read a million rows, and going through `Decodable` for each column costs
/// more than the query); any other row through `Decodable`. Services decode their rows with it and
/// never see the engine.
public struct SQLRowReader {
    private let row: any SQLRow
    private let sqlite: SQLiteRow?
    private let postgres: PostgresSQLRow?

    /// A reader of `row`.
    public init(_ row: any SQLRow) {
        self.row = row
        postgres = row as? PostgresSQLRow  // a class: the cheaper test, made first
        sqlite = postgres == nil ? row as? SQLiteRow : nil
    }

    /// The text in `column`.
    public func string(_ column: String) throws -> String {
        if let sqlite, case .text(let value)? = sqlite.column(column) { return value }
        if let postgres { return try postgres.string(column) }
        return try row.decode(column: column, as: String.self)
    }

    /// The integer in `column`.
    public func integer(_ column: String) throws -> Int64 {
        if let sqlite, case .integer(let value)? = sqlite.column(column) { return Int64(value) }
        if let postgres { return try postgres.integer(column) }
        return try row.decode(column: column, as: Int64.self)
    }

    /// The text in the statement's column number `index` (from 0), for rows read by the million
    /// (no lookup by name).
    public func string(at index: Int) throws -> String {
        if let postgres { return try postgres.string(at: index) }
        return try string(row.allColumns[index])
    }

    /// The integer in the statement's column number `index` (from 0).
    public func integer(at index: Int) throws -> Int64 {
        if let postgres { return try postgres.integer(at: index) }
        return try integer(row.allColumns[index])
    }
}
