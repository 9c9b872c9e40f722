import PortalAPI
import PortalRPC

/// The authenticated member behind a portal call, as identity resolved their bearer token.
struct Caller: Sendable {
    /// The member, their organization and current role.
    let principal: Portal_Identity_V1_Principal
    /// When the token stops working.
    let expiresAt: Google_Protobuf_Timestamp?

    var organizationID: String { principal.organizationID }
    var isAdmin: Bool { principal.role == .admin }

    /// The metadata that tells a backend who acts, so its audit events name them.
    var backendMetadata: Metadata {
        PrincipalMetadata.metadata(
            memberID: principal.memberID, displayName: principal.displayName, organizationID: principal.organizationID)
    }
}

/// What a portal caller may do: the role table of the product.
enum Capability: Sendable {
    /// Dashboard figures, licensing overview, activations and audit logs.
    case viewPortal
    /// The dashboard's member count.
    case seeMemberCount
    /// Activating licenses.
    case activate
    /// CSV exports of activations and audit events.
    case exportCSV
    /// Members and invites: list, invite, resend, revoke, edit, delete.
    case manageMembers
    /// The live event stream, for integrations.
    case watchEvents
    /// Webhooks: register, change, delete, see and repeat deliveries.
    case manageWebhooks

    /// What the refusal says the caller cannot do.
    var refusal: String {
        switch self {
        case .viewPortal: "use the portal"
        case .seeMemberCount: "see the member count"
        case .activate: "activate licenses"
        case .exportCSV: "export CSV files"
        case .manageMembers: "manage members and invites"
        case .watchEvents: "watch the event stream"
        case .manageWebhooks: "manage webhooks"
        }
    }
}

/// Which role holds which capability.
enum RoleTable {
    /// Whether `role` holds `capability`: Admins everything, Viewers only viewing.
    static func allows(_ role: Portal_Identity_V1_Role, _ capability: Capability) -> Bool {
        switch role {
        case .admin: true
        case .viewer: capability == .viewPortal
        default: false
        }
    }

    /// Throws `PERMISSION_DENIED` unless the caller's role holds `capability`.
    static func require(_ capability: Capability, of caller: Caller) throws {
        guard allows(caller.principal.role, capability) else {
            let role = caller.principal.role == .viewer ? "Viewer" : "this"
            throw RPCError(
                .permissionDenied, "the \(role) role cannot \(capability.refusal); an Admin of your organization can")
        }
    }
}
