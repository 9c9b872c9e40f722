/// The metadata keys the gateway uses to tell a backend who is calling.
///
/// Backends trust these only from authenticated internal callers (the gateway); a call without them
/// is an internal call and is recorded as made by "system".
public enum PrincipalMetadata {
    /// The acting member's id.
    public static let memberID = "x-portal-member-id"
    /// The acting member's display name, for audit records.
    public static let displayName = "x-portal-display-name"

    /// Metadata naming `memberID` and `displayName` as the caller.
    public static func metadata(memberID: String, displayName: String) -> Metadata {
        var metadata = Metadata()
        metadata.addString(memberID, forKey: Self.memberID)
        metadata.addString(displayName, forKey: Self.displayName)
        return metadata
    }
}
