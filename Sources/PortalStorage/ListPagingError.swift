/// Why a list request's paging was refused: the request field at fault and what is wrong with it.
public enum ListPagingError: Error, Equatable, CustomStringConvertible {
    case negativePageSize
    case pageSizeAbove(Int)
    case unknownOrder(String, sortable: [String])
    case unknownDirection(String)
    case malformedToken
    case foreignToken
    case expiredToken
    case tokenForAnotherOrder

    /// The request field at fault.
    public var field: String {
        switch self {
        case .negativePageSize, .pageSizeAbove: "page_size"
        case .unknownOrder, .unknownDirection: "order_by"
        case .malformedToken, .foreignToken, .expiredToken, .tokenForAnotherOrder: "page_token"
        }
    }

    /// What is wrong, for the caller.
    public var problem: String {
        switch self {
        case .negativePageSize: "must not be negative"
        case .pageSizeAbove(let maximum): "must be at most \(maximum)"
        case .unknownOrder(let order, let sortable):
            "unknown column \(Self.quote(order)); sortable: \(sortable.joined(separator: ", "))"
        case .unknownDirection(let direction): "direction must be asc or desc, not \(Self.quote(direction))"
        case .malformedToken: "malformed token"
        case .foreignToken:
            "the token was not issued for this list with these filters and order; start again from the first page"
        case .expiredToken: "the token has expired; start again from the first page"
        case .tokenForAnotherOrder: "the token was issued for a different order_by"
        }
    }

    /// `field: problem`.
    public var description: String { "\(field): \(problem)" }

    /// A caller's value quoted, cut after 64 characters, so a message never grows with its input.
    private static func quote(_ value: String) -> String {
        let scalars = value.unicodeScalars
        guard scalars.count > 64 else { return "\"\(value)\"" }
        return "\"\(String(String.UnicodeScalarView(scalars.prefix(64))))…\""
    }
}
