import Logging
import NIOCore
import PostgresKit
import PostgresNIO
import SQLKit

/// SQLKit over one PostgresNIO connection, reading rows through PostgresNIO's typed decoding.
///
/// PostgresKit's own `SQLDatabase` decodes every column through its generic translation (a column
/// lookup table copied, a coding path built and a `Decodable` dispatch per value), which costs more
/// than the query when an export reads a million rows. Here binds are encoded as PostgresNIO values
/// and rows arrive as `PostgresSQLRow`, whose columns `SQLRowReader` reads directly. A statement with
/// a bind PostgresNIO cannot encode by itself runs through PostgresKit unchanged.
struct PostgresSQLDatabase: SQLDatabase {
    let connection: PostgresConnection

    var logger: Logger { connection.logger }
    var eventLoop: any EventLoop { connection.eventLoop }
    var dialect: any SQLDialect { PostgresDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(
        sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void
    ) -> EventLoopFuture<Void> {
        guard !connection.isClosed else { return eventLoop.makeFailedFuture(PostgresConnection.closedError) }
        let (sql, binds) = serialize(query)
        guard let bindings = Self.bindings(binds) else {
            return connection.sql(queryLogLevel: nil).execute(sql: query, onRow)
        }
        let columns = ColumnIndex()
        return connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: connection.logger) { row in
            onRow(PostgresSQLRow(row, columns: columns))
        }.map { _ in }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await execute(sql: query, onRow).get()
    }

    /// Runs `query` and returns its rows as a sequence that reads ahead only as far as it is consumed.
    func query(_ query: any SQLExpression) async throws -> PostgresRowSequence {
        let (sql, binds) = serialize(query)
        guard let bindings = Self.bindings(binds) else {
            throw DatabaseError(description: "a value of this statement cannot be sent to PostgreSQL as it is")
        }
        return try await connection.run(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: connection.logger)
    }

    /// The binds as PostgresNIO encodes them, or nil when one is of a type only PostgresKit's generic
    /// encoder handles.
    private static func bindings(_ binds: [any Encodable & Sendable]) -> PostgresBindings? {
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            if Self.isNil(bind) {
                bindings.appendNull()
            } else if let value = bind as? any PostgresThrowingDynamicTypeEncodable {
                guard (try? bindings.append(value)) != nil else { return nil }
            } else {
                return nil
            }
        }
        return bindings
    }

    /// Whether `value` is an optional holding nothing (binds arrive boxed as `Encodable`).
    private static func isNil(_ value: Any) -> Bool {
        guard let optional = value as? any AnyOptional else { return false }
        return optional.isNone
    }
}

/// An optional of any wrapped type, to recognise a boxed `nil`.
private protocol AnyOptional {
    var isNone: Bool { get }
}

extension Optional: AnyOptional {
    var isNone: Bool { self == nil }
}

extension PostgresConnection {
    /// What a statement on a connection the server closed fails with.
    static let closedError = DatabaseUnavailableError(description: "PostgreSQL closed the connection")

    /// Runs `query`, failing at once when the server has closed the connection: PostgresNIO would
    /// send it into the closed channel and wait for an answer that never comes.
    @discardableResult
    func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        guard !isClosed else { throw Self.closedError }
        return try await self.query(query, logger: logger)
    }
}

/// The positions of a statement's columns by name, found once from its first row and shared by
/// all of them (the rows of one statement arrive one at a time, on one event loop).
final class ColumnIndex: @unchecked Sendable {
    private var positions: [String: Int]?

    /// The positions of `row`'s columns.
    func positions(of row: PostgresRow) -> [String: Int] {
        if let positions { return positions }
        var found: [String: Int] = [:]
        for (position, cell) in row.enumerated() where found[cell.columnName] == nil {
            found[cell.columnName] = position
        }
        positions = found
        return found
    }
}

/// A PostgreSQL row as SQLKit sees it. Its text and integer cells are decoded once, in order, as the
/// row arrives (on the connection's event loop, while the caller works on the rows before); other
/// cells are decoded on demand by PostgresNIO (`PostgresDecodable`). A class, so passing a row
/// around copies one reference.
final class PostgresSQLRow: SQLRow, Sendable {
    /// A cell's value: text and integers decoded, anything else (nulls included) kept as the cell.
    private enum Value: Sendable {
        case text(String)
        case integer(Int64)
        case cell(PostgresCell)
    }

    private let original: PostgresRow
    private let values: [Value]
    private let positions: [String: Int]

    init(_ row: PostgresRow, columns: ColumnIndex) {
        original = row
        positions = columns.positions(of: row)
        var values: [Value] = []
        values.reserveCapacity(positions.count)
        for cell in row {
            guard cell.bytes != nil else {
                values.append(.cell(cell))
                continue
            }
            switch cell.dataType {
            case .text, .varchar, .name, .bpchar:
                values.append((try? cell.decode(String.self, context: .default)).map(Value.text) ?? .cell(cell))
            case .int8, .int4, .int2:
                values.append((try? cell.decode(Int64.self, context: .default)).map(Value.integer) ?? .cell(cell))
            default:
                values.append(.cell(cell))
            }
        }
        self.values = values
    }

    var allColumns: [String] { original.map(\.columnName) }

    func contains(column: String) -> Bool { positions[column] != nil }

    func decodeNil(column: String) throws -> Bool {
        guard let position = positions[column] else { return true }
        if case .cell(let cell) = values[position] { return cell.bytes == nil }
        return false
    }

    func decode<T: Decodable>(column: String, as type: T.Type) throws -> T {
        guard let position = positions[column] else { throw MissingColumn(column: column) }
        return try decode(at: position, as: T.self)
    }

    /// The text in `column`, without going through `Decodable`.
    func string(_ column: String) throws -> String {
        guard let position = positions[column] else { throw MissingColumn(column: column) }
        return try string(at: position)
    }

    /// The integer in `column`, without going through `Decodable`.
    func integer(_ column: String) throws -> Int64 {
        guard let position = positions[column] else { throw MissingColumn(column: column) }
        return try integer(at: position)
    }

    /// The text in column number `index`.
    func string(at index: Int) throws -> String {
        if case .text(let text) = values[index] { return text }
        return try decode(at: index, as: String.self)
    }

    /// The integer in column number `index`.
    func integer(at index: Int) throws -> Int64 {
        if case .integer(let number) = values[index] { return number }
        return try decode(at: index, as: Int64.self)
    }

    /// Column number `index` as `T`: a decoded value when it is one (`String`, `Int64`, or an
    /// optional of them), else decoded from the cell by PostgresNIO, or for types it does not decode
    /// by PostgresKit.
    private func decode<T: Decodable>(at index: Int, as type: T.Type) throws -> T {
        let cell: PostgresCell
        switch values[index] {
        case .text(let text):
            if let value = text as? T { return value }
            cell = original.makeRandomAccess()[index]
        case .integer(let number):
            if let value = number as? T { return value }
            if T.self == Int.self { return Int(number) as! T }
            cell = original.makeRandomAccess()[index]
        case .cell(let stored):
            cell = stored
        }
        guard let decodable = T.self as? any PostgresDecodable.Type else {
            return try original.sql().decode(column: cell.columnName, as: T.self)
        }
        return try Self.decode(cell, as: decodable) as! T
    }

    private static func decode<Value: PostgresDecodable>(_ cell: PostgresCell, as type: Value.Type) throws -> Value {
        try cell.decode(Value.self, context: .default)
    }

    /// A column the query did not select.
    struct MissingColumn: Error, CustomStringConvertible {
        let column: String
        var description: String { "the row has no column \(column)" }
    }
}
