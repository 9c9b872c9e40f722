/// A request field longer than the limit its proto comment documents ("At most 254 characters.").
public struct FieldLimitViolation: Sendable, Equatable {
    /// The field's path in the request, for example `events[3].message`.
    public var field: String
    /// What the limit is, for example `must be at most 254 characters`.
    public var problem: String

    /// Creates a violation.
    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }

    /// The same violation seen from the message that holds the field (`product` + `name` → `product.name`).
    public func nested(in parent: String) -> FieldLimitViolation {
        FieldLimitViolation(field: "\(parent).\(field)", problem: problem)
    }

    /// `INVALID_ARGUMENT` naming the field and its limit.
    public var error: RPCError { .invalidArgument(field: field, problem) }
}

/// The length checks generated code runs on every decoded request, before any handler sees it.
///
/// Characters are Unicode scalars, so a long run of combining marks cannot pass as one character.
public enum FieldLimit {
    /// A string of more than `limit` Unicode scalars.
    public static func characters(
        _ value: String, _ limit: Int, _ field: @autoclosure () -> String
    ) -> FieldLimitViolation? {
        // UTF-8 never takes fewer bytes than scalars, so most strings are cleared without counting.
        guard value.utf8.count > limit else { return nil }
        var count = 0
        for _ in value.unicodeScalars {
            count += 1
            if count > limit {
                return FieldLimitViolation(field: field(), problem: "must be at most \(limit) characters")
            }
        }
        return nil
    }

    /// A string of more than `limit` UTF-8 bytes.
    public static func bytes(_ value: String, _ limit: Int, _ field: @autoclosure () -> String) -> FieldLimitViolation?
    {
        value.utf8.count > limit ? FieldLimitViolation(field: field(), problem: "must be at most \(limit) bytes") : nil
    }

    /// A bytes field of more than `limit` bytes.
    public static func bytes(_ value: [UInt8], _ limit: Int, _ field: @autoclosure () -> String) -> FieldLimitViolation?
    {
        value.count > limit ? FieldLimitViolation(field: field(), problem: "must be at most \(limit) bytes") : nil
    }

    /// A repeated field of more than `limit` items.
    public static func items<Element>(
        _ values: [Element], _ limit: Int, _ field: @autoclosure () -> String
    ) -> FieldLimitViolation? {
        values.count > limit
            ? FieldLimitViolation(field: field(), problem: "must hold at most \(limit) items, got \(values.count)")
            : nil
    }
}

extension RPCMessage {
    /// No documented limits: every length passes.
    public func fieldLimitViolation() -> FieldLimitViolation? { nil }
}
