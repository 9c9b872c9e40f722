/// The metadata keys the gateway uses to tell a backend who is calling.
///
/// Backends trust these only from authenticated internal callers (the gateway); a call without them
/// is an internal call and is recorded as made by "system".
public enum PrincipalMetadata {
    /// The acting member's id.
    public static let memberID = "x-portal-member-id"
    /// The acting member's display name, for audit records.
    public static let displayName = "x-portal-display-name"
    /// The acting member's organization, for logs (backends scope data by the request's own field).
    public static let organizationID = "x-portal-organization-id"
    /// The address of the person's client as the gateway saw it, so identity's sign-in limits count
    /// each client on its own rather than everyone behind one gateway together.
    public static let clientAddress = "x-portal-client-address"

    /// The keys a backend believes only from the gateway (see the caller-metadata policies).
    public static let vouchedKeys = [memberID, displayName, organizationID, clientAddress]

    /// Metadata naming `memberID` and `displayName` (of `organizationID`, when given) as the caller.
    public static func metadata(memberID: String, displayName: String, organizationID: String? = nil) -> Metadata {
        var metadata = Metadata()
        metadata.addString(memberID, forKey: Self.memberID)
        metadata.addString(displayName, forKey: Self.displayName)
        if let organizationID { metadata.addString(organizationID, forKey: Self.organizationID) }
        return metadata
    }
}
