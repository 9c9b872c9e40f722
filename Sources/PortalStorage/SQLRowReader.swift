import SQLKit
import SQLiteKit

/// Reads a row's columns the fast way where the engine allows: SQLite's values directly (exports
/// read a million rows, and going through `Decodable` for each column costs more than the query),
/// other engines' through `Decodable`. Services decode their rows with it and never see the engine.
public struct SQLRowReader {
    private let row: any SQLRow
    private let sqlite: SQLiteRow?

    /// A reader of `row`.
    public init(_ row: any SQLRow) {
        self.row = row
        sqlite = row as? SQLiteRow
    }

    /// The text in `column`.
    public func string(_ column: String) throws -> String {
        if let sqlite, case .text(let value)? = sqlite.column(column) { return value }
        return try row.decode(column: column, as: String.self)
    }

    /// The integer in `column`.
    public func integer(_ column: String) throws -> Int64 {
        if let sqlite, case .integer(let value)? = sqlite.column(column) { return Int64(value) }
        return try row.decode(column: column, as: Int64.self)
    }
}
