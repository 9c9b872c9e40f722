@testable import PortalStorage

/// Page-token decoding: any text as a token is refused or read, never a crash; and a token made
/// for a value and id taken from the input reads back to them, and to nothing with another scope.
enum PageTokenDecoding {

    static let keys = try! PageTokenKeys(current: String(repeating: "fuzz", count: 8), clock: { 1_700_000_000_000 })
    static let columns = [SortColumn("name", isText: true), SortColumn("time", isText: false)]

    static func paging(_ token: String, order: String, scope: [UInt8]) throws -> ListPaging {
        try ListPaging(
            pageSize: 10, pageToken: token, orderBy: order, columns: columns, defaultOrder: "name asc",
            scope: PageTokenScope(keys, list: "fuzz", request: scope))
    }

    static func run(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        _ = try? paging(text, order: "name asc", scope: [])
        _ = try? paging(text, order: "time desc", scope: [])

        let split = input.firstIndex(of: 0) ?? input.count
        let value = String(decoding: input[..<split], as: UTF8.self)
        let id = String(decoding: input[min(split + 1, input.count)...], as: UTF8.self)
        guard let first = try? paging("", order: "name asc", scope: input) else {
            fatalError("a first page was refused")
        }
        let token = first.token(after: .text(value), id: id)
        guard let next = try? paging(token, order: "name asc", scope: input) else {
            fatalError("a token it issued was refused")
        }
        require(next.after?.value == .text(value) && next.after?.id == id, "a token read back other values")
        require(
            (try? paging(token, order: "name asc", scope: input + [1])) == nil, "a token was accepted in another scope")
    }
}
