import PortalRPC
import PortalStorageRPC
import Synchronization
import Testing

@testable import PortalStorage

/// A request-like message for token scopes: its bytes are its text.
private struct Filters: RPCMessage {
    var text: String
    init(_ text: String) { self.text = text }
    init(rpcBytes: [UInt8]) throws { text = String(decoding: rpcBytes, as: UTF8.self) }
    func rpcBytes() -> [UInt8] { Array(text.utf8) }
}

@Suite("Page tokens")
struct PageTokenKeysTests {
    static let columns = [SortColumn("time", isText: false)]
    static let key = String(repeating: "k", count: 32)

    static func paging(
        _ keys: PageTokenKeys, token: String = "", filters: String = "org-1|search=a", list: String = "events"
    ) throws -> ListPaging {
        try ListPaging(
            pageSize: 10, pageToken: token, orderBy: "", columns: columns, defaultOrder: "time desc",
            scope: PageTokenScope(keys, list: list, request: Filters(filters)))
    }

    static func message(_ body: () throws -> ListPaging) -> String? {
        do {
            _ = try body()
            return nil
        } catch let error as RPCError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func aTokenReadsBackWithinItsScopeAndNowhereElse() throws {
        let keys = try PageTokenKeys(current: Self.key)
        let token = try Self.paging(keys).token(after: .integer(42), id: "ev_1")
        let next = try Self.paging(keys, token: token)
        #expect(next.after?.value == .integer(42) && next.after?.id == "ev_1")
        #expect(
            Self.message { try Self.paging(keys, token: token, filters: "org-2|search=a") }?.hasPrefix(
                "page_token: the token was not issued") == true)
        #expect(
            Self.message { try Self.paging(keys, token: token, list: "activations") }?.hasPrefix(
                "page_token: the token was not issued") == true)
        #expect(Self.message { try Self.paging(keys, token: "abc") } == "page_token: malformed token")
    }

    @Test func aTokenExpiresAfterADay() throws {
        let now = Mutex<Int64>(1_000_000)
        let keys = try PageTokenKeys(current: Self.key, clock: { now.withLock { $0 } })
        let token = try Self.paging(keys).token(after: .integer(1), id: "ev_1")
        now.withLock { $0 += PageTokenKeys.lifetime - 1 }
        #expect(try Self.paging(keys, token: token).after?.id == "ev_1")
        now.withLock { $0 += 1 }
        #expect(
            Self.message { try Self.paging(keys, token: token) }
                == "page_token: the token has expired; start again from the first page")
    }

    @Test func aRotatedKeyStillReadsTheTokensOfThePreviousOne() throws {
        let old = try PageTokenKeys(current: Self.key)
        let token = try Self.paging(old).token(after: .integer(7), id: "ev_7")
        let rotated = try PageTokenKeys(current: String(repeating: "n", count: 32), previous: [Self.key])
        #expect(try Self.paging(rotated, token: token).after?.id == "ev_7")
        let unrelated = try PageTokenKeys(current: String(repeating: "u", count: 32))
        #expect(
            Self.message { try Self.paging(unrelated, token: token) }?.hasPrefix("page_token: the token was not issued")
                == true)
        #expect(throws: PageTokenKeyError.self) { try PageTokenKeys(current: "short") }
    }
}
