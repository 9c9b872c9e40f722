import Foundation
import PortalCrypto
import SQLKit

/// A column a list may be sorted by: its `order_by` name and the portable SQL that sorts it.
public struct SortColumn: Sendable {
    /// The name clients use in `order_by`, for example `last_name`.
    public let name: String
    /// The SQL expression sorted on, for example `lower(last_name)`; from a fixed allow-list.
    public let expression: String
    /// Whether the expression is text (else a 64-bit integer).
    public let isText: Bool

    /// Creates a column.
    public init(_ name: String, expression: String? = nil, isText: Bool) {
        self.name = name
        self.expression = expression ?? name
        self.isText = isText
    }
}

/// A sort key value of one row.
public enum SortValue: Sendable, Equatable, Codable {
    case text(String)
    case integer(Int64)
}

/// The paging part of an AIP-style list request, validated: page size, order and keyset position.
///
/// Pages are keyset-based: a token records the sort value and id of the last row served, so pages
/// stay correct while rows are added. Ties are broken by the row id. Tokens are signed for their
/// scope (see `PageTokenKeys`), so an edited, foreign or expired token is refused.
public struct ListPaging: Sendable {
    /// Default and largest page sizes.
    public static let defaultPageSize = 50, maxPageSize = 500

    /// Rows per page.
    public let pageSize: Int
    /// The sort column.
    public let column: SortColumn
    /// Whether the order is descending.
    public let descending: Bool
    /// The last row of the previous page, if this is not the first page.
    public let after: (value: SortValue, id: String)?
    /// What the tokens this paging reads and issues are bound to.
    private let scope: PageTokenScope

    private struct Token: Codable {
        var c: String
        var d: Bool
        var v: SortValue
        var i: String
    }

    /// Validates `page_size`, `page_token` and `order_by` against the list's sortable `columns`.
    public init(
        pageSize: Int32, pageToken: String, orderBy: String, columns: [SortColumn], defaultOrder: String,
        maxPageSize: Int = ListPaging.maxPageSize,
        scope: PageTokenScope
    ) throws {
        self.scope = scope
        guard pageSize >= 0 else { throw ListPagingError.negativePageSize }
        guard pageSize <= maxPageSize else { throw ListPagingError.pageSizeAbove(maxPageSize) }
        self.pageSize = pageSize == 0 ? Self.defaultPageSize : Int(pageSize)

        let words = (orderBy.isEmpty ? defaultOrder : orderBy).split(separator: " ").map { $0.lowercased() }
        guard (1...2).contains(words.count), let column = columns.first(where: { $0.name == words[0] }) else {
            throw ListPagingError.unknownOrder(orderBy, sortable: columns.map(\.name))
        }
        guard words.count == 1 || words[1] == "asc" || words[1] == "desc" else {
            throw ListPagingError.unknownDirection(String(words[1]))
        }
        self.column = column
        descending = words.count == 2 && words[1] == "desc"

        if pageToken.isEmpty {
            after = nil
        } else {
            let payload = try scope.keys.open(pageToken, scope: scope.binding)
            guard let token = try? JSONDecoder().decode(Token.self, from: Data(payload)) else {
                throw ListPagingError.malformedToken
            }
            guard token.c == column.name, token.d == descending else { throw ListPagingError.tokenForAnotherOrder }
            switch token.v {
            case .text: guard column.isText else { throw ListPagingError.malformedToken }
            case .integer: guard !column.isText else { throw ListPagingError.malformedToken }
            }
            after = (token.v, token.i)
        }
    }

    /// The keyset condition (`WHERE` part) selecting rows after the previous page, or nil on the first page.
    public func keysetCondition(idColumn: String) -> SQLQueryString? {
        guard let after else { return nil }
        let comparison = descending ? "<" : ">"
        let value: any Encodable & Sendable =
            switch after.value {
            case .text(let text): text
            case .integer(let number): number
            }
        // Written as a range plus a residual test (not "a > v OR (a = v AND id > x)") so the database
        // can seek the index to the previous page's end instead of rescanning from the start.
        let bound = descending ? "<=" : ">="
        return """
            (\(unsafeRaw: column.expression) \(unsafeRaw: bound) \(bind: value) AND (\(unsafeRaw: column.expression) \(unsafeRaw: comparison) \(bind: value) \
            OR \(unsafeRaw: idColumn) \(unsafeRaw: comparison) \(bind: after.id)))
            """
    }

    /// `ORDER BY ...` alone, for reading every row in the list's order (an export).
    public func order(idColumn: String) -> SQLQueryString {
        let direction = descending ? "DESC" : "ASC"
        return
            "ORDER BY \(unsafeRaw: column.expression) \(unsafeRaw: direction), \(unsafeRaw: idColumn) \(unsafeRaw: direction)"
    }

    /// `ORDER BY ... LIMIT ...`, fetching one extra row to know whether another page follows.
    public func orderAndLimit(idColumn: String) -> SQLQueryString {
        "\(order(idColumn: idColumn)) LIMIT \(unsafeRaw: String(pageSize + 1))"
    }

    /// The token for the page after a row with this sort value and id.
    public func token(after value: SortValue, id: String) -> String {
        let data = (try? JSONEncoder().encode(Token(c: column.name, d: descending, v: value, i: id))) ?? Data()
        return scope.keys.seal(Array(data), scope: scope.binding)
    }

    /// The sort expression selected as `sort_key`, so tokens carry exactly the value the database
    /// compares (its `lower()` is not Swift's `lowercased()` beyond ASCII).
    public var sortKeyColumn: SQLQueryString {
        "\(unsafeRaw: column.expression) AS sort_key"
    }

    /// Splits fetched rows (selected with `sortKeyColumn`) into this page and the next page token.
    public func page(_ rows: [any SQLRow], idColumn: String) throws -> (rows: [any SQLRow], nextPageToken: String) {
        guard rows.count > pageSize else { return (rows, "") }
        let page = Array(rows.prefix(pageSize))
        let last = page[page.count - 1]
        let value: SortValue =
            column.isText
            ? .text(try last.decode(column: "sort_key", as: String?.self) ?? "")
            : .integer(try last.decode(column: "sort_key", as: Int64?.self) ?? 0)
        return (page, token(after: value, id: try last.decode(column: idColumn, as: String.self)))
    }

    /// Splits fetched rows into this page and the next page token (empty on the last page).
    public func page<Row>(_ rows: [Row], key: (Row) -> (SortValue, String)) -> (rows: [Row], nextPageToken: String) {
        guard rows.count > pageSize else { return (rows, "") }
        let page = Array(rows.prefix(pageSize))
        let (value, id) = key(page[page.count - 1])
        return (page, token(after: value, id: id))
    }
}

/// An FTS5 string: `text` quoted, quotes doubled, so a `MATCH` takes it as written (no operators).
public func ftsString(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Builds a case-insensitive `LIKE` pattern that matches `text` anywhere, escaping wildcards.
public func containsPattern(_ text: String) -> String {
    var escaped = ""
    for character in text.lowercased() {
        if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
        escaped.append(character)
    }
    return "%" + escaped + "%"
}

/// `columns` ("a, b, c") with each name prefixed by `table.`, for queries that join another table.
public func qualified(_ columns: String, table: String) -> String {
    columns.split(separator: ",").map { "\(table)." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
}
