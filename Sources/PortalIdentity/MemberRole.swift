import PortalAPI

/// A member's role as stored: `ADMIN` or `VIEWER`.
enum MemberRole: String, Sendable {
    case admin = "ADMIN"
    case viewer = "VIEWER"

    /// The API enum.
    var api: Portal_Identity_V1_Role { self == .admin ? .admin : .viewer }

    /// "Admin" or "Viewer", for messages.
    var title: String { self == .admin ? "Admin" : "Viewer" }

    /// The stored text, or nil for a value this version does not know.
    init?(stored: String) { self.init(rawValue: stored) }
}
